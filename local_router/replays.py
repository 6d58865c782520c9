"""Answering a repeated call, named by its Idempotency-Key, without running
the model again.

A caller that lost a reply (its process was killed, its connection dropped)
asks again with the same key. If the first call succeeded, the router sends
the same reply back instead of executing the cell a second time; a failed or
abandoned first call is executed afresh. A repeat that arrives while the
first is still running waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from local_router.served import Served

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER: Final = "idempotency-key"
MAX_KEY_CHARS: Final = 200
DEFAULT_CAPACITY: Final = 200_000


class ReplayCache:
    """Successful replies by key, oldest forgotten first beyond `capacity`."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._done: OrderedDict[str, Served] = OrderedDict()
        self._running: dict[str, asyncio.Future[Served]] = {}

    async def run(
        self, key: str | None, produce: Callable[[], Awaitable[Served]]
    ) -> tuple[Served, bool]:
        """(reply, whether it is a replay) for the call named `key`."""
        if not key or len(key) > MAX_KEY_CHARS:
            return await produce(), False
        while True:
            stored = self._done.get(key)
            if stored is not None:
                logger.info("replayed the reply of idempotency key %s", key)
                return stored, True
            running = self._running.get(key)
            if running is None:
                break
            await asyncio.wait([running])

        future: asyncio.Future[Served] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            served = await produce()
            if served.success:
                self._remember(key, served)
            future.set_result(served)
            return served, False
        finally:
            if not future.done():
                future.cancel()
            del self._running[key]

    def _remember(self, key: str, served: Served) -> None:
        self._done[key] = served
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)
