"""Starting a gRPC server the same way for every Beacon service.

Every server gets standard health checking and reflection (so `grpcurl`
works without proto files), the shared channel settings, a ready file that
names its bound address, and a graceful stop on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from beacon.channels import server_options
from beacon.decoding import RequestDecoding

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 10.0


class ServingServer:
    """A grpc.aio server with health, reflection and a known address."""

    def __init__(
        self,
        service_names: Sequence[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self.server = grpc.aio.server(
            options=server_options(),
            interceptors=[*interceptors, RequestDecoding()],
        )
        self.health = health.aio.HealthServicer()
        self._service_names = list(service_names)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME],
            self.server,
        )
        self.address = ""
        # SERVING needs all three: started, not stopping, and nothing the
        # service depends on (a file it must write) out of order.
        self._started = False
        self._stopping = False
        self._available = True
        self._health_updates: set[asyncio.Task[None]] = set()

    def bind(
        self, listen: str, credentials: grpc.ServerCredentials | None = None
    ) -> str:
        """Bind `host:port` (port 0 picks a free one), over TLS when
        `credentials` are given; returns the address.

        Raises OSError when the address is taken or invalid.
        """
        host, _, _ = listen.rpartition(":")
        try:
            if credentials is None:
                port = self.server.add_insecure_port(listen)
            else:
                port = self.server.add_secure_port(listen, credentials)
        except RuntimeError:
            # grpc reports every bind failure this way, with no detail.
            port = 0
        if port == 0:
            raise OSError(
                f"cannot listen on {listen!r}: the address is in use or not "
                "HOST:PORT on this machine"
            )
        self.address = f"{host}:{port}"
        return self.address

    async def start(self) -> None:
        await self.server.start()
        self._started = True
        await self._show_health()

    async def mark_not_serving(self) -> None:
        """For good: the server is stopping."""
        self._stopping = True
        await self._show_health()

    def set_available(self, available: bool) -> None:
        """NOT_SERVING while the service cannot do its work, SERVING again
        once it can (unless stopping); callable from a synchronous callback."""
        self._available = available
        update = asyncio.ensure_future(self._show_health())
        self._health_updates.add(update)
        update.add_done_callback(self._health_updates.discard)

    async def _show_health(self) -> None:
        serving = self._started and not self._stopping and self._available
        await self._set_health(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        await self.mark_not_serving()
        await self.server.stop(grace)

    async def _set_health(self, status: int) -> None:
        for name in ("", *self._service_names):
            await self.health.set(name, status)


def write_ready_file(path: Path | None, address: str) -> None:
    """Atomically write `address` so a reader never sees half of it."""
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(address + "\n", encoding="utf-8")
    os.replace(tmp, path)


async def serve_until_signalled(
    serving: ServingServer,
    *,
    label: str,
    ready_file: Path | None,
    drain: Callable[[], Awaitable[None]] | None = None,
    cleanup: Callable[[], Awaitable[None]] | None = None,
    grace: float = DEFAULT_GRACE_SECONDS,
) -> None:
    """Start, announce the address, wait for SIGTERM/SIGINT, stop gracefully.

    On a signal: health turns NOT_SERVING, `drain` stops taking new work,
    calls in flight get `grace` seconds, then `cleanup` releases what they
    used (a router client, a store).
    """
    await serving.start()
    # What starting made (modules, configuration, clients) lives as long as
    # the process. Frozen, it is left out of every full collection, which on
    # a busy agent stalled the event loop for some 60 ms each time.
    gc.freeze()
    print(f"{label} listening on {serving.address}", flush=True)
    write_ready_file(ready_file, serving.address)
    logger.info("started %s address=%s", label, serving.address)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    # A stopping server is not ready: nothing waiting for the file may
    # take the old address for a live one.
    if ready_file is not None:
        await asyncio.to_thread(ready_file.unlink, missing_ok=True)
    logger.info("stopping %s grace=%.1fs", label, grace)
    await serving.mark_not_serving()
    if drain is not None:
        await drain()
    await serving.stop(grace)
    if cleanup is not None:
        await cleanup()
    logger.info("stopped %s", label)
