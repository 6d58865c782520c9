"""A stand-in OpenTelemetry collector: takes OTLP/HTTP trace exports."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.threaded_app import ThreadedApp


class OtlpReceiver:
    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self._app = ThreadedApp(
            Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        )
        self.url = self._app.base_url + "/v1/traces"

    def start(self) -> None:
        self._app.start()

    def stop(self) -> None:
        self._app.stop()

    def spans(self) -> list[tuple[str, Span]]:
        """(service name, span) of everything received."""
        found = []
        for export in self.exports:
            for resource_spans in export.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    found += [(service, span) for span in scope_spans.spans]
        return found

    async def _traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.exports.append(export)
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )
