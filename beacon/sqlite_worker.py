"""One SQLite connection, used from one worker thread only.

The event loop never waits on the disk, and writes are serialised without
locks: every statement runs on the worker's single thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SqliteWorker:
    def __init__(
        self,
        path: Path,
        what: str,
        synchronous: Literal["FULL", "NORMAL"],
        setup: Callable[[sqlite3.Connection], None],
    ) -> None:
        self._path = path
        self._what = what
        self._synchronous = synchronous
        self._setup = setup
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=what)
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        """Open (creating if needed) the file in WAL mode and run `setup`;
        OSError says why it cannot."""
        try:
            await self.run_blocking(self._connect)
        except (OSError, sqlite3.Error) as exc:
            self._pool.shutdown(wait=False)
            raise OSError(f"cannot open the {self._what} {self._path}: {exc}") from exc
        logger.info("opened %s path=%s", self._what, self._path)

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        self._setup(conn)
        self._conn = conn

    @property
    def db(self) -> sqlite3.Connection:
        """The connection; only for code running on the worker's thread."""
        if self._conn is None:
            raise RuntimeError(f"{self._what} is closed")
        return self._conn

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def submit(self, fn: Callable[[], None]) -> None:
        """Queue `fn` on the worker's thread without waiting for it; raises
        RuntimeError once the worker is closed."""
        self._pool.submit(fn)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self.run_blocking(close)
        await asyncio.to_thread(self._pool.shutdown, wait=True)
