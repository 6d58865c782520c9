"""A small client for the CoordinatorService, used by the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from beacon.bearer import bearer_interceptors
from beacon.tls import client_channel
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2


class CoordinatorError(Exception):
    """A failed call, with the status and any field violations, readable."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.code = error.code()
        details = error.details() or ""
        lines = [f"{self.code.name}: {details}"]
        status = rpc_status.from_call(error)
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                lines += [
                    f"  {v.field}: {v.description}"
                    for v in bad.field_violations
                    if f"{v.field}: {v.description}" not in details
                ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Endpoint:
    """Where the coordinator is and the token to call it with."""

    address: str
    token: str = ""
    # TLS, trusting this CA, when set.
    ca_cert: Path | None = None

    def __repr__(self) -> str:
        # Never print the token, even in a traceback.
        return f"Endpoint(address={self.address!r})"


def open_channel(endpoint: Endpoint) -> grpc.aio.Channel:
    """A channel to the coordinator that sends the token with every call."""
    interceptors = bearer_interceptors(endpoint.token) if endpoint.token else []
    return client_channel(endpoint.address, endpoint.ca_cert, interceptors)


class CoordinatorClient:
    def __init__(self, endpoint: Endpoint) -> None:
        self._channel = open_channel(endpoint)
        self._stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(self._channel)

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._channel.close()

    async def submit(self, spec: job_pb2.JobSpec) -> pb.SubmitJobResponse:
        with _translated():
            reply: pb.SubmitJobResponse = await self._stub.SubmitJob(
                pb.SubmitJobRequest(spec=spec)
            )
        return reply

    async def run(self, spec: job_pb2.JobSpec) -> AsyncIterator[pb.JobEvent]:
        with _translated():
            async for event in self._stub.RunJob(pb.RunJobRequest(spec=spec)):
                yield event

    async def watch(self, job_id: str) -> AsyncIterator[pb.JobEvent]:
        with _translated():
            async for event in self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id)):
                yield event

    async def result(self, job_id: str) -> job_pb2.JobResult:
        with _translated():
            reply: pb.GetJobResultResponse = await self._stub.GetJobResult(
                pb.GetJobResultRequest(job_id=job_id)
            )
        return reply.result

    async def list_jobs(
        self, page_size: int = 50, page_token: str = ""
    ) -> pb.ListJobsResponse:
        with _translated():
            reply: pb.ListJobsResponse = await self._stub.ListJobs(
                pb.ListJobsRequest(page_size=page_size, page_token=page_token)
            )
        return reply

    async def cancel(self, job_id: str) -> job_pb2.JobSummary:
        with _translated():
            reply: pb.CancelJobResponse = await self._stub.CancelJob(
                pb.CancelJobRequest(job_id=job_id)
            )
        return reply.job


@contextmanager
def _translated() -> Iterator[None]:
    """Every failed call surfaces as one readable CoordinatorError."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise CoordinatorError(exc) from exc
