"""Rebuilding a gRPC method handler around new behaviour.

Server interceptors that refuse a call, or check a request before the
servicer sees it, return a handler of the same kind (unary or streaming on
each side) with the same serializers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[..., Any]
# Health checking and reflection answer anyone: probes and grpcurl need them.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
# What a server interceptor calls to get the next handler.
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class HandlerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor that may replace the handler of a known method."""

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.handler_for(handler, handler_call_details)

    def handler_for(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        raise NotImplementedError


def replace_behaviour(
    handler: grpc.RpcMethodHandler,
    wrap: Callable[[Behaviour, bool, bool], Behaviour],
    request_deserializer: Callable[[bytes], Any] | None,
) -> grpc.RpcMethodHandler:
    """`wrap(behaviour, request_streaming, response_streaming)` for each kind."""
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary, False, False),
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, False, True),
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary, True, False),
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_stream_rpc_method_handler(
        wrap(handler.stream_stream, True, True),
        request_deserializer=request_deserializer,
        response_serializer=handler.response_serializer,
    )


def refusing(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler that ends every call with `code` without reading the request."""

    def wrap(_: Behaviour, __: bool, response_streaming: bool) -> Behaviour:
        async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(code, message)

        async def refuse_stream(
            _request: Any, context: grpc.aio.ServicerContext
        ) -> Any:
            await context.abort(code, message)
            yield  # pragma: no cover - abort raises

        return refuse_stream if response_streaming else refuse

    return replace_behaviour(handler, wrap, None)
