"""Dependencies whose absence costs more than a missing feature."""

from __future__ import annotations

import sys

import httpcore._synchronization as synchronization
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from local_router.server import uvicorn_config


async def test_the_http_client_finds_sniffio_instead_of_failing_on_every_call() -> None:
    """httpcore imports sniffio each time it makes a lock or an event; a
    failed import is not cached, so without sniffio every router call of an
    agent searched the import path several times."""
    assert synchronization.current_async_library() == "asyncio"

    assert "sniffio" in sys.modules


def test_the_local_router_parses_http_in_c() -> None:
    """uvicorn falls back to h11, in pure Python, where httptools is missing;
    the router would then spend a third more of its time on every call."""
    config = uvicorn_config(FastAPI(), keep_alive_seconds=5, shutdown_seconds=1)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
