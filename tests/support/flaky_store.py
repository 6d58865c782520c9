"""A job store that fails chosen writes, to test what the coordinator does
when its store does (a full disk, a locked database)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from coordinator.sqlite_store import SqliteJobStore


class StoreFault(OSError):
    pass


class FlakyStore:
    """Delegates to a real store; the next `failures[name]` calls of a method
    fail, and every call of a method in `delays` first waits that long.
    `most_at_once[name]` is the most calls of a method that were under way
    together."""

    def __init__(
        self,
        inner: SqliteJobStore,
        delays: dict[str, float] | None = None,
        **failures: int,
    ) -> None:
        self._inner = inner
        self.failures = Counter(failures)
        self.failed = Counter[str]()
        self._delays = delays or {}
        self._under_way = Counter[str]()
        self.most_at_once = Counter[str]()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._under_way[name] += 1
            self.most_at_once[name] = max(
                self.most_at_once[name], self._under_way[name]
            )
            try:
                if name in self._delays:
                    await asyncio.sleep(self._delays[name])
                if self.failures[name] > 0:
                    self.failures[name] -= 1
                    self.failed[name] += 1
                    raise StoreFault(f"injected failure of {name}")
                return await method(*args, **kwargs)
            finally:
                self._under_way[name] -= 1

        return call
