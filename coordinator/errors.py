"""One table from the coordinator's errors to gRPC status codes.

Anything not in the table becomes INTERNAL with a generic message; its
detail goes to the log, never to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from beacon.jobspec import JobSpecError
from coordinator.jobs import (
    BadPageToken,
    CoordinatorStopping,
    JobConflict,
    JobNotFound,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_OF: dict[type[Exception], grpc.StatusCode] = {
    JobSpecError: grpc.StatusCode.INVALID_ARGUMENT,
    JobNotFound: grpc.StatusCode.NOT_FOUND,
    JobConflict: grpc.StatusCode.ALREADY_EXISTS,
    BadPageToken: grpc.StatusCode.INVALID_ARGUMENT,
    CoordinatorStopping: grpc.StatusCode.UNAVAILABLE,
}


class InvalidRequest(ValueError):
    """A request field other than the spec that cannot be used."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


STATUS_OF[InvalidRequest] = grpc.StatusCode.INVALID_ARGUMENT


def _bad_request_status(exc: JobSpecError | InvalidRequest) -> status_pb2.Status:
    detail = error_details_pb2.BadRequest()
    if isinstance(exc, JobSpecError):
        for violation in exc.violations:
            detail.field_violations.add(
                field=violation.field, description=violation.description
            )
    else:
        detail.field_violations.add(field=exc.field, description=exc.description)
    packed = any_pb2.Any()
    packed.Pack(detail)
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=str(exc), details=[packed]
    )


async def abort_for(
    exc: Exception, context: grpc.aio.ServicerContext, method: str
) -> NoReturn:
    if isinstance(exc, JobSpecError | InvalidRequest):
        logger.info("[%s] rejected: %s", method, exc)
        await context.abort_with_status(rpc_status.to_status(_bad_request_status(exc)))
    code = STATUS_OF.get(type(exc))
    if code is not None:
        logger.info("[%s] %s: %s", method, code.name, exc)
        await context.abort(code, str(exc))
    logger.exception("[%s] failed", method, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, "internal error in the coordinator; see its log"
    )
    raise AssertionError("ServicerContext.abort returned instead of raising")


async def guarded(
    method: str, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]
) -> T:
    try:
        return await call()
    except Exception as exc:
        await abort_for(exc, context, method)


async def guarded_stream(
    method: str, context: grpc.aio.ServicerContext, events: AsyncIterator[T]
) -> AsyncIterator[T]:
    try:
        async for event in events:
            yield event
    except Exception as exc:
        await abort_for(exc, context, method)
