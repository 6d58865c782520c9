"""HTTP clients of one keep-alive connection each, lent out a call at a time.

httpx keeps a client's connections in one pool and, on every request and
every response closed, checks each connection in it for expiry: a socket
poll and a getpeername() per connection. With 16 or more calls in flight
that check cost more than the rest of the call. A client per call in flight
has one connection to check, and calls still reuse their connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import httpx

logger = logging.getLogger(__name__)


class ConnectionLanes:
    """At most `limit` calls at once, each on a client of its own; clients
    are made as needed and reused, most recently used first."""

    def __init__(
        self, make_client: Callable[[], httpx.AsyncClient], limit: int
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1: {limit}")
        self._make_client = make_client
        self._free = asyncio.Semaphore(limit)
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client no other call is using, until the block ends."""
        async with self._free:
            if self._idle:
                client = self._idle.pop()
            else:
                client = self._make_client()
                self._all.append(client)
            try:
                yield client
            finally:
                self._idle.append(client)

    @property
    def clients(self) -> int:
        """How many clients (and so at most connections) have been made."""
        return len(self._all)

    async def aclose(self) -> None:
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.aclose()
