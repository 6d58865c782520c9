"""Dependencies whose absence costs more than a missing feature."""

from __future__ import annotations

import sys

import httpcore._synchronization as synchronization


async def test_the_http_client_finds_sniffio_instead_of_failing_on_every_call() -> None:
    """httpcore imports sniffio each time it makes a lock or an event; a
    failed import is not cached, so without sniffio every router call of an
    agent searched the import path several times."""
    assert synchronization.current_async_library() == "asyncio"

    assert "sniffio" in sys.modules
