"""A real HTTP server on loopback that answers like a hybrid router, on cue.

Tests set the reply for each call (status, body, delay, hang) per path, and
read back every request the server received. The server runs uvicorn in a
background thread with its own event loop, so it works from sync and async
tests alike and never shares a loop with the code under test.

    with serve_canned_router() as router:
        router.enqueue(CannedReply(status=503, body={"detail": "busy"}))
        ... call router.url + "/inference" ...
        assert router.requests[0].json()["region_preference"] == "eu-west"

Without a queued reply, POST /inference answers a success served by the
requested region and model, and GET /health answers healthy; other paths are
404 unless a test sets a reply for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

logger = logging.getLogger(__name__)

INFERENCE = "/inference"
HEALTH = "/health"
# A "hang" lasts until the server stops, but never longer than this.
MAX_HANG_SECONDS = 60.0
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class CannedReply:
    """One reply. `body` bytes are sent as they are, a str as UTF-8 text,
    anything else as JSON."""

    status: int = 200
    body: Any = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    hang: bool = False
    # Send the status, headers and half the body at once, the rest this late.
    body_delay_seconds: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    # host:port of the connection it came on.
    peer: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[RecordedRequest], CannedReply]


def echo_success(request: RecordedRequest) -> CannedReply:
    """A success served by exactly the requested region and model."""
    try:
        sent = request.json()
    except ValueError:
        sent = None
    if not isinstance(sent, dict):
        return CannedReply(422, {"detail": "request body is not a JSON object"})
    region = sent.get("region_preference") or "us-east"
    return CannedReply(
        body={
            "success": True,
            "response": f"canned answer to: {sent.get('prompt', '')}",
            "error": None,
            "error_code": None,
            "failure": None,
            "provider_used": f"canned-{region}",
            "inference_time": 0.01,
            "cost_estimate": 0.0,
            "metadata": {
                "provider_type": "canned",
                "region": region,
                "model": sent.get("model"),
            },
        }
    )


def _healthy(_: RecordedRequest) -> CannedReply:
    return CannedReply(body={"status": "healthy"})


_DEFAULTS: dict[str, Responder] = {INFERENCE: echo_success, HEALTH: _healthy}


class CannedRouter:
    """The scripted replies and the record of requests; thread-safe."""

    def __init__(self) -> None:
        self.url = ""
        self._lock = threading.Lock()
        self._queues: dict[str, deque[CannedReply]] = {}
        self._defaults: dict[str, Responder] = dict(_DEFAULTS)
        self._requests: list[RecordedRequest] = []
        # Set from the test thread, awaited in the server's loop.
        self._released = False
        self._release_event: asyncio.Event | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None

    def enqueue(self, *replies: CannedReply, path: str = INFERENCE) -> None:
        """Answer the next calls to `path` with these replies, in order."""
        with self._lock:
            self._queues.setdefault(path, deque()).extend(replies)

    def set_default(
        self, reply: CannedReply | Responder, *, path: str = INFERENCE
    ) -> None:
        """Answer calls to `path` with this once its queue is empty."""
        responder = reply if callable(reply) else (lambda _request: reply)
        with self._lock:
            self._defaults[path] = responder

    def reset(self) -> None:
        """Forget queued replies, custom defaults and recorded requests, so
        one server can serve many tests."""
        with self._lock:
            self._queues.clear()
            self._defaults = dict(_DEFAULTS)
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def release(self) -> None:
        """End every delay and hang now (used at shutdown)."""
        with self._lock:
            self._released = True
            loop, event = self._server_loop, self._release_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _next_reply(self, request: RecordedRequest) -> CannedReply:
        with self._lock:
            self._requests.append(request)
            queue = self._queues.get(request.path)
            if queue:
                return queue.popleft()
            responder = self._defaults.get(request.path)
        if responder is None:
            return CannedReply(status=404, body={"detail": "Not Found"})
        return responder(request)

    async def _wait(self, seconds: float) -> None:
        with self._lock:
            if self._released:
                return
            if self._release_event is None:
                self._server_loop = asyncio.get_running_loop()
                self._release_event = asyncio.Event()
            event = self._release_event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, MAX_HANG_SECONDS)):
                await event.wait()

    async def _handle(self, request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=dict(request.headers),
            body=await request.body(),
            peer=f"{request.client.host}:{request.client.port}"
            if request.client
            else "",
        )
        reply = self._next_reply(recorded)
        if reply.hang:
            await self._wait(MAX_HANG_SECONDS)
        elif reply.delay_seconds > 0:
            await self._wait(reply.delay_seconds)
        content, media_type = reply.encoded()
        if reply.body_delay_seconds > 0:
            return StreamingResponse(
                self._slow_body(content, reply.body_delay_seconds),
                status_code=reply.status,
                media_type=media_type,
                headers=reply.headers,
            )
        return Response(
            content=content,
            status_code=reply.status,
            media_type=media_type,
            headers=reply.headers,
        )

    async def _slow_body(self, content: bytes, seconds: float) -> AsyncIterator[bytes]:
        half = len(content) // 2
        yield content[:half]
        await self._wait(seconds)
        yield content[half:]

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])


@dataclass(frozen=True)
class ServerTls:
    """The certificate (PEM) the router serves HTTPS with, and its key."""

    cert: Path
    key: Path


@contextmanager
def serve_canned_router(tls: ServerTls | None = None) -> Iterator[CannedRouter]:
    """Run a CannedRouter on 127.0.0.1 (a free port) until the block ends,
    over HTTPS when given `tls`."""
    router = CannedRouter()
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it every reply waits ~40 ms for a
    # delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    router.url = f"{'https' if tls else 'http'}://{host}:{port}"
    config = uvicorn.Config(
        router.app(),
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
        ssl_certfile=tls.cert if tls else None,
        ssl_keyfile=tls.key if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="canned-router", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("canned router did not start")
            time.sleep(_POLL_SECONDS)
        logger.debug("canned router listening on %s", router.url)
        yield router
    finally:
        router.release()
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        sock.close()
