"""Requests that do not decode are INVALID_ARGUMENT, not UNKNOWN.

grpc answers a request it cannot parse with UNKNOWN and the parser's
exception text. This interceptor parses the request itself and answers a
corrupt one (bad wire format, bad UTF-8 in a string) with a clear status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from beacon.handlers import Behaviour, HandlerInterceptor, replace_behaviour

logger = logging.getLogger(__name__)


class _Undecodable:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _message(method: str, request: _Undecodable) -> str:
    return (
        f"the request to {method} is not a valid protobuf message "
        f"({request.error}); send the message the method's proto declares"
    )


class RequestDecoding(HandlerInterceptor):
    def handler_for(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        deserialize = handler.request_deserializer
        if deserialize is None:
            return handler
        method = details.method

        def parse(data: bytes) -> Any:
            try:
                return deserialize(data)
            except Exception as exc:
                return _Undecodable(exc)

        async def reject(
            request: _Undecodable, context: grpc.aio.ServicerContext
        ) -> None:
            logger.info("[%s] undecodable request: %s", method, request.error)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, _message(method, request)
            )

        def wrap(
            behaviour: Behaviour, request_streaming: bool, response_streaming: bool
        ) -> Behaviour:
            if request_streaming:
                return _checked_stream(behaviour, reject, response_streaming)
            return _checked_unary(behaviour, reject, response_streaming)

        return replace_behaviour(handler, wrap, parse)


def _checked_unary(
    behaviour: Behaviour, reject: Behaviour, response_streaming: bool
) -> Behaviour:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            await reject(request, context)
        return await behaviour(request, context)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            await reject(request, context)
        async for response in behaviour(request, context):
            yield response

    return streaming if response_streaming else unary


class _UndecodableInStream(Exception):
    def __init__(self, request: _Undecodable) -> None:
        super().__init__(str(request.error))
        self.request = request


def _checked_stream(
    behaviour: Behaviour, reject: Behaviour, response_streaming: bool
) -> Behaviour:
    # A servicer may read requests in a task of its own while it writes
    # responses, so the read only raises; the call is ended here, once the
    # servicer has passed the error on.
    async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, _Undecodable):
                raise _UndecodableInStream(request)
            yield request

    async def unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behaviour(checked(requests), context)
        except _UndecodableInStream as exc:
            await reject(exc.request, context)

    async def streaming(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for response in behaviour(checked(requests), context):
                yield response
        except _UndecodableInStream as exc:
            await reject(exc.request, context)

    return streaming if response_streaming else unary
