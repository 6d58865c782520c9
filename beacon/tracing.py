"""OpenTelemetry traces: job -> region stream -> cell attempt -> router call.

Off by default. When on, each server exports its spans (to the console as
one JSON object per line, or over OTLP/HTTP), and the W3C trace context
travels with the work: in gRPC metadata when the coordinator opens an
Execute stream, in each ExecuteRequest for the cell attempt it carries, and
in the `traceparent` header of the agent's router call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from typing import Any, Literal, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

TraceExporter = Literal["none", "console", "otlp"]
TRACE_EXPORTERS: tuple[TraceExporter, ...] = ("none", "console", "otlp")
TRACEPARENT = "traceparent"

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("beacon")
# Whether `configure` installed a provider. While off, every helper here
# returns at once: even OpenTelemetry's no-op spans cost a few microseconds
# per cell, which the agent pays on every router call.
_on = False


def configure(
    service_name: str, exporter: TraceExporter, otlp_endpoint: str | None
) -> Callable[[], None]:
    """Install this process's tracer provider; returns what flushes it at exit."""
    if exporter == "none":
        return lambda: None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "console":
        # Exported as each span ends, one line each, beside the log on stderr.
        provider.add_span_processor(SimpleSpanProcessor(_console_exporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint))
        )
    trace.set_tracer_provider(provider)
    global _on
    _on = True
    logger.info("tracing on exporter=%s service=%s", exporter, service_name)
    return provider.shutdown


def enabled() -> bool:
    """Whether `configure` turned tracing on in this process."""
    return _on


def _console_exporter() -> SpanExporter:
    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    return ConsoleSpanExporter(out=sys.stderr, formatter=one_line)


def task_in_span(
    name: str,
    coro: Coroutine[Any, Any, T],
    *,
    attributes: Mapping[str, str | int],
    task_name: str,
    context: contextvars.Context | None = None,
) -> asyncio.Task[T]:
    """Run `coro` as a task inside a new span that ends with the task."""
    if not _on:
        return asyncio.create_task(coro, name=task_name, context=context)
    span = _tracer.start_span(name, attributes=dict(attributes))
    task_context = context if context is not None else contextvars.copy_context()
    task_context.run(otel_context.attach, trace.set_span_in_context(span))
    task = asyncio.create_task(coro, name=task_name, context=task_context)
    task.add_done_callback(lambda _: span.end())
    return task


def start_span(name: str, attributes: Mapping[str, str | int]) -> trace.Span:
    """A span under the current one, ended by the caller."""
    if not _on:
        return trace.INVALID_SPAN
    return _tracer.start_span(name, attributes=dict(attributes))


def traceparent_of(span: trace.Span) -> str:
    """The W3C traceparent naming `span`, or "" when tracing is off."""
    if not _on:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT, "")


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying the current trace context (empty when off)."""
    if not _on:
        return ()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return tuple(carrier.items())


def outgoing_headers() -> dict[str, str]:
    """HTTP headers carrying the current trace context (empty when off)."""
    if not _on:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def adopt_incoming(metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
    """Make the trace context of an incoming call current for the rest of
    this task (a gRPC handler runs in a task of its own)."""
    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    if TRACEPARENT in carrier:
        otel_context.attach(_PROPAGATOR.extract(carrier))


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, str | int], traceparent: str = ""
) -> Iterator[trace.Span]:
    """A current span for the block; its parent is `traceparent` when one is
    given, else the current span."""
    if not _on:
        yield trace.INVALID_SPAN
        return
    parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None
    with _tracer.start_as_current_span(
        name, context=parent, attributes=dict(attributes)
    ) as current:
        yield current
