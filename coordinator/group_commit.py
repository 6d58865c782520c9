"""Group commit: small writes that arrive while a commit is under way share
the next transaction, and so its one fsync.

With synchronous=FULL every commit waits for the disk; committing each
receipt on its own made that wait, not the work, the coordinator's limit.
Each write still runs in a savepoint of its own, so one that fails is undone
alone and only its caller sees the error. A caller's await returns only once
the COMMIT holding its write is done: nothing is reported before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Queued(Generic[T]):
    write: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


# A write, then what it returned or the error it raised.
_Outcome = tuple[_Queued[Any], object, Exception | None]


class GroupCommit:
    """Runs writes on the store's one thread, as many per transaction as are
    waiting when the thread gets to them."""

    def __init__(
        self,
        submit: Callable[[Callable[[], None]], object],
        connection: Callable[[], sqlite3.Connection],
    ) -> None:
        # Queues a function on the one thread that uses `connection`.
        self._submit = submit
        self._connection = connection
        self._lock = threading.Lock()
        self._queued: list[_Queued[Any]] = []
        # Transactions committed so far; writes / commits is the batching.
        self.commits = 0

    async def write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """Run `write` in a transaction; returns its value once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queued.append(_Queued(write, future, loop))
            first = len(self._queued) == 1
        if first:
            # Later writes join this one until the thread takes the queue.
            try:
                self._submit(self._commit_queued)
            except RuntimeError as exc:
                # The store is closing: whatever is queued fails now.
                self._fail_queued(exc)
        return await future

    def _fail_queued(self, error: Exception) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
        _deliver([(item, None, error) for item in batch])

    def _commit_queued(self) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
        try:
            outcomes = self._commit(batch)
        except Exception as exc:
            # Each caller gets the error and reports it; a full disk fails
            # every commit, which is no reason for a line each.
            logger.debug("group commit of %d writes failed: %s", len(batch), exc)
            outcomes = [(item, None, exc) for item in batch]
        _deliver(outcomes)

    def _commit(self, batch: list[_Queued[Any]]) -> list[_Outcome]:
        db = self._connection()
        outcomes: list[_Outcome] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in batch:
                db.execute("SAVEPOINT one_write")
                try:
                    value = item.write(db)
                except Exception as exc:
                    if not db.in_transaction:
                        # SQLite rolled the whole transaction back (it may
                        # on a full disk): every write in it is undone, and
                        # this error, not a missing savepoint, says why.
                        raise
                    db.execute("ROLLBACK TO one_write")
                    outcomes.append((item, None, exc))
                else:
                    outcomes.append((item, value, None))
                db.execute("RELEASE one_write")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.commits += 1
        return outcomes


def _deliver(outcomes: list[_Outcome]) -> None:
    """Hand each write's result to its caller's loop: one wake-up per loop
    for the whole batch, not one per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:
            logger.debug("event loop closed before write results were delivered")


def _settle(outcomes: list[_Outcome]) -> None:
    for item, value, error in outcomes:
        # The caller may have been cancelled; its write stands regardless.
        if item.future.done():
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(value)
