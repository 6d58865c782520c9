"""Running the router app under uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from beacon.metrics_http import start_metrics
from local_router.app import create_app
from local_router.config import RouterConfig
from local_router.metrics import REGISTRY

logger = logging.getLogger(__name__)

ANNOUNCEMENT = "beacon-router listening on"
# Start-up only runs the app's lifespan, so this bounds a hang, not real work.
STARTUP_TIMEOUT_SECONDS = 30.0
_STARTUP_POLL_SECONDS = 0.01


class RouterStartupError(RuntimeError):
    """The router could not start listening or announce itself."""


async def serve(config: RouterConfig) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly and return."""
    app = create_app(config)
    sock = await _bind(config.host, config.port)
    url = _url_of(sock)
    try:
        exporter = start_metrics(config.metrics_listen, REGISTRY, "beacon-router")
    except OSError as exc:
        sock.close()
        raise RouterStartupError(str(exc)) from exc
    server = uvicorn.Server(
        uvicorn_config(
            app,
            keep_alive_seconds=config.keep_alive_seconds,
            shutdown_seconds=config.shutdown_timeout_seconds,
        )
    )
    with _stop_on_signals(server):
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            if await _wait_until_started(server, task):
                await _announce(url, config.ready_file)
            await task
        finally:
            if not task.done():
                server.should_exit = True
                await task
            sock.close()
            if exporter is not None:
                exporter.stop()
            if config.ready_file is not None:
                await asyncio.to_thread(config.ready_file.unlink, missing_ok=True)
    logger.info("beacon-router at %s stopped", url)


async def _bind(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise RouterStartupError(f"cannot resolve {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RouterStartupError(f"cannot listen on {host}:{port}: {exc}") from exc
    return sock


def _url_of(sock: socket.socket) -> str:
    # The bound address, so port 0 is reported as the port actually picked.
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def uvicorn_config(
    app: FastAPI,
    keep_alive_seconds: int,
    shutdown_seconds: int,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # Leave logging to the caller's configuration, on stderr.
        log_config=None,
        access_log=False,
        lifespan="on",
        # Parsing in C; h11, the fallback, is pure Python.
        http="httptools",
        timeout_keep_alive=keep_alive_seconds,
        timeout_graceful_shutdown=shutdown_seconds,
    )


async def _wait_until_started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if task.done():
            return False
        if asyncio.get_running_loop().time() > deadline:
            raise RouterStartupError(
                f"router did not start within {STARTUP_TIMEOUT_SECONDS:g} s"
            )
        await asyncio.sleep(_STARTUP_POLL_SECONDS)
    return True


async def _announce(url: str, ready_file: Path | None) -> None:
    # Stdout first: once the ready file exists, the line has been printed.
    print(f"{ANNOUNCEMENT} {url}", flush=True)
    logger.info("%s %s", ANNOUNCEMENT, url)
    if ready_file is not None:
        try:
            await asyncio.to_thread(_write_atomically, ready_file, url + "\n")
        except OSError as exc:
            raise RouterStartupError(
                f"cannot write ready file {ready_file}: {exc}"
            ) from exc


def _write_atomically(path: Path, text: str) -> None:
    # Rename is atomic, so readers see no file or the whole file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _stop_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a clean stop, also before and after uvicorn's own
    handlers are installed (uvicorn re-raises the signal once it has stopped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not server.should_exit:
            logger.info("received %s, stopping", signal.Signals(signum).name)
        server.should_exit = True

    previous = {
        sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
