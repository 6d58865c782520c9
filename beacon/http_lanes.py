"""HTTP transports (or clients) of one keep-alive connection each, lent out
a call at a time, and the JSON request an agent sends over one.

httpx keeps a client's connections in one pool and, on every request and
every response closed, checks each connection in it for expiry: a socket
poll and a getpeername() per connection. With 16 or more calls in flight
that check cost more than the rest of the call. A transport (or client) per
call in flight has one connection to check, and calls still reuse their
connections.

An agent's router calls go straight to a transport: of what an
httpx.AsyncClient adds on top (cookies, auth, redirects, proxies from the
environment, a base URL) a router call needs nothing, and it cost some 100 us
of CPU per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import httpx

logger = logging.getLogger(__name__)

# No socket timeouts: the caller's overall deadline bounds each call, and a
# read timeout would only cut a legitimate cold start short.
NO_SOCKET_TIMEOUTS: dict[str, float | None] = httpx.Timeout(None).as_dict()
# Except for setting up a connection (TCP and the TLS handshake), which no
# cold start makes slow: a peer that never answers a handshake (a plain
# HTTP port reached over https://) would otherwise hold each call to its
# whole deadline.
CONNECT_SECONDS = 10.0


def connect_only_timeouts(connect_seconds: float) -> dict[str, float | None]:
    return httpx.Timeout(None, connect=connect_seconds).as_dict()


class Closable(Protocol):
    async def aclose(self) -> None: ...


Lane = TypeVar("Lane", bound=Closable)


class ConnectionLanes(Generic[Lane]):
    """At most `limit` calls at once, each on a lane (a transport or client)
    of its own; lanes are made as needed and reused, most recently used
    first."""

    def __init__(self, make_lane: Callable[[], Lane], limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1: {limit}")
        self._make_lane = make_lane
        self._free = asyncio.Semaphore(limit)
        self._idle: list[Lane] = []
        self._all: list[Lane] = []

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[Lane]:
        """A lane no other call is using, until the block ends."""
        async with self._free:
            if self._idle:
                lane = self._idle.pop()
            else:
                lane = self._make_lane()
                self._all.append(lane)
            try:
                yield lane
            except BaseException:
                # A call cut short (an error, or a cancel: the caller's
                # deadline) may leave the connection where httpcore never
                # lends it again (encode/httpcore#1115), and with one
                # connection the lane would never make another call. A lane
                # that did not end its call cleanly is closed, not reused.
                self._all.remove(lane)
                await asyncio.shield(_close(lane))
                raise
            self._idle.append(lane)

    @property
    def lanes(self) -> int:
        """How many lanes (and so at most connections) have been made."""
        return len(self._all)

    async def aclose(self) -> None:
        lanes, self._all, self._idle = self._all, [], []
        for lane in lanes:
            await lane.aclose()


async def _close(lane: Closable) -> None:
    try:
        await lane.aclose()
    except Exception:
        logger.debug("closing a dropped lane failed", exc_info=True)


def one_connection_transport(
    tls_context: ssl.SSLContext, keepalive_seconds: float | None = 5.0
) -> httpx.AsyncHTTPTransport:
    """A transport that keeps one connection, and takes no proxy from the
    environment: the configured URL is where calls go."""
    return httpx.AsyncHTTPTransport(
        verify=tls_context,
        limits=httpx.Limits(
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=keepalive_seconds,
        ),
        trust_env=False,
    )


def json_post(
    url: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    timeouts: Mapping[str, float | None] = NO_SOCKET_TIMEOUTS,
) -> httpx.Request:
    """A POST of `payload` as JSON, encoded as httpx.AsyncClient would."""
    body = json.dumps(
        payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
    return httpx.Request(
        "POST",
        url,
        content=body,
        headers={"content-type": "application/json", **(headers or {})},
        extensions={"timeout": timeouts},
    )


async def send(
    transport: httpx.AsyncBaseTransport, request: httpx.Request
) -> httpx.Response:
    """The response to `request`, its body still to be read (then closed)."""
    response = await transport.handle_async_request(request)
    response.request = request
    return response
