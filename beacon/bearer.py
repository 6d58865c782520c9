"""Client channels that send a bearer token with every call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


def _with_token(
    details: grpc.aio.ClientCallDetails, token: str
) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add("authorization", f"Bearer {token}")
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        details.wait_for_ready,
    )


class _Bearer:
    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"

    async def _call(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_with_token(details, self._token), request)


# grpc files each interceptor under the first call kind it implements, so
# every kind needs its own object.
class _UnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    intercept_unary_unary = _Bearer._call


class _UnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    intercept_unary_stream = _Bearer._call


class _StreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    intercept_stream_unary = _Bearer._call


class _StreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    intercept_stream_stream = _Bearer._call


def bearer_interceptors(token: str) -> list[_Bearer]:
    """Interceptors adding `authorization: Bearer TOKEN` to every call."""
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    return [kind(token) for kind in kinds]
