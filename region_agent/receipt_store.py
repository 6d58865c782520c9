"""Signed receipts kept on disk, so an agent that restarts still answers a
repeated attempt with the receipt it signed instead of calling the router.

A receipt is written before it is sent. The file is in WAL mode with
synchronous=NORMAL: a write survives the agent's process being killed, which
is what this is for; an operating-system crash may lose the last writes, and
then those attempts are executed again, as they would be without the file.

Receipts are written on the event loop, all those signed in one turn of it
in one transaction: a commit without fsync is one write to the WAL, cheaper
than handing the receipt to a thread and waiting for that thread to get the
interpreter lock on a busy agent. What may block (reads, and checkpoints,
which fsync) runs on the store's thread, over a connection of its own.
A checkpoint runs in two steps. The first copies the WAL into the file
while receipts go on being written; it takes milliseconds (it fsyncs), and
a receipt held back for it would be sent that much later. The second copies
what was written meanwhile, with writes paused (receipts put meanwhile wait
and then share one commit): a checkpoint that ends with no write since its
start is what lets the WAL start over, instead of growing for as long as
receipts keep coming.

A write that fails (a full disk, most often) fails the receipts it held:
their cells get a retryable failure instead of an answer nobody could
replay. The file is then tried again, with a write of its own and growing
waits, until a write succeeds, so that it recovers without any traffic.

Nearly every attempt is new, so the file is read only for attempts whose key
it may hold: the store keeps the hash of every key written, and a lookup
whose hash is not among them needs no trip to the disk thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from beacon.sqlite_worker import SqliteWorker
from beacon.write_outage import WriteOutage
from region_agent import metrics
from region_agent.receipts import AttemptKey

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    job_id TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    shape TEXT NOT NULL,
    receipt BLOB NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (job_id, cell_id, attempt, shape)
);
CREATE INDEX IF NOT EXISTS receipts_by_age ON receipts (stored_at);
"""
INSERT = "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?)"
# A WAL this large is checkpointed into the file (SQLite's own default is
# 1,000 pages of 4 KiB).
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
# Checkpoints keep the WAL near CHECKPOINT_WAL_BYTES; one this large (then
# twice as large, and so on) is held by a reader and is worth a warning.
HELD_WAL_WARNING_BYTES = 4 * CHECKPOINT_WAL_BYTES
# The write that tells whether the file takes receipts again: about the size
# of a large receipt, added and removed in one commit.
PROBE_BYTES = 64 * 1024
PROBE = "INSERT INTO receipts VALUES ('', '', -1, 'probe', zeroblob(?), 0)"
UNPROBE = "DELETE FROM receipts WHERE job_id = '' AND attempt = -1"

Row = tuple[str, str, int, str, bytes, float]


def _set_up(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def _writer_for(path: Path) -> sqlite3.Connection:
    """The event loop's connection, for writes only."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints fsync: the store's thread runs them, not the loop.
    writer.execute("PRAGMA wal_autocheckpoint=0")
    # SQLite reuses a checkpointed WAL from its start but leaves the file
    # at its largest size; cut back at each restart, the file's size
    # stays what has been written since the last checkpoint.
    writer.execute("PRAGMA journal_size_limit=0")
    return writer


def _in_one_transaction(
    writer: sqlite3.Connection, work: Callable[[sqlite3.Connection], object]
) -> None:
    writer.execute("BEGIN")
    try:
        work(writer)
        writer.execute("COMMIT")
    except BaseException:
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        raise


def _probe(writer: sqlite3.Connection) -> None:
    writer.execute(PROBE, (PROBE_BYTES,))
    writer.execute(UNPROBE)


class ReceiptStore:
    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, "receipts file", "NORMAL", _set_up)
        # The event loop's own connection, for writes only; opened in open().
        self._writer: sqlite3.Connection | None = None
        self._batch: list[tuple[Row, asyncio.Future[None]]] = []
        self._wal = path.with_name(path.name + "-wal")
        self._checkpointing = False
        self._writes_paused = False
        self.checkpoints = 0
        self._warn_at_wal_bytes = HELD_WAL_WARNING_BYTES
        # hash() of every key in the file: a hit may be a collision and is
        # read to be sure; a miss is certain.
        self._maybe_kept: set[int] = set()
        self.outage = WriteOutage(
            "receipts file",
            path,
            "cells get a retryable failure and this agent reports NOT_SERVING "
            "and takes no new cells until receipts can be kept",
        )
        self._probing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, retention_seconds: float) -> ReceiptStore:
        """Open (creating if needed) and drop receipts past their retention."""
        store = cls(path)
        await store._worker.start()
        cutoff = time.time() - retention_seconds

        def clean_and_index() -> int:
            db = store._worker.db
            dropped = db.execute(
                "DELETE FROM receipts WHERE stored_at < ?", (cutoff,)
            ).rowcount
            rows = db.execute("SELECT job_id, cell_id, attempt, shape FROM receipts")
            store._maybe_kept.update(hash(tuple(row)) for row in rows)
            # A WAL left by a killed agent, or grown by the cleanup, would
            # otherwise keep its size on disk until the next checkpoint.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return dropped

        try:
            dropped = await store._worker.run_blocking(clean_and_index)
            store._writer = _writer_for(path)
        except sqlite3.Error as exc:
            # A file that opens but cannot be written (read-only, say).
            await store._worker.close()
            raise OSError(f"cannot open the receipts file {path}: {exc}") from exc
        logger.info(
            "dropped %d receipts kept longer than their retention; %d kept",
            dropped,
            len(store._maybe_kept),
        )
        return store

    async def get(self, key: AttemptKey) -> bytes | None:
        if hash(key) not in self._maybe_kept:
            return None

        def read() -> bytes | None:
            row = self._worker.db.execute(
                "SELECT receipt FROM receipts WHERE job_id = ? AND cell_id = ? "
                "AND attempt = ? AND shape = ?",
                key,
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._worker.run_blocking(read)

    async def put(self, key: AttemptKey, receipt: bytes) -> None:
        """Returns once the receipt is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._batch.append(((*key, receipt, time.time()), done))
        if len(self._batch) == 1:
            # Receipts put in this turn of the loop join this commit.
            loop.call_soon(self._commit_batch)
        # Counted as kept before the write lands, so a repeat arriving
        # meanwhile reads the file (the book makes it wait for this one).
        self._maybe_kept.add(hash(key))
        await done

    def _commit_batch(self) -> None:
        if self._writes_paused or not self._batch:
            # Committed once the checkpoint is done.
            return
        batch, self._batch = self._batch, []
        error: Exception | None = None
        try:
            self._write([row for row, _ in batch])
        except sqlite3.Error as exc:
            error = exc
            metrics.RECEIPTS_NOT_KEPT.inc(len(batch))
            self.outage.failed(exc, len(batch))
            if self._probing is None or self._probing.done():
                self._probing = asyncio.ensure_future(self._probe_until_writable())
        else:
            self.outage.succeeded()
        for _, done in batch:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _write(self, rows: list[Row]) -> None:
        writer = self._writer
        if writer is None:
            raise sqlite3.ProgrammingError("the receipts file is closed")
        _in_one_transaction(writer, lambda db: db.executemany(INSERT, rows))
        try:
            wal_bytes = self._wal.stat().st_size
        except OSError:
            return
        if wal_bytes >= self._warn_at_wal_bytes:
            self._warn_held_wal(wal_bytes)
        elif wal_bytes < CHECKPOINT_WAL_BYTES:
            self._warn_at_wal_bytes = HELD_WAL_WARNING_BYTES
        if wal_bytes >= CHECKPOINT_WAL_BYTES and not self._checkpointing:
            self._start_checkpoint()

    def _warn_held_wal(self, wal_bytes: int) -> None:
        """A checkpoint cannot restart the WAL past a reader's snapshot, so
        while another process reads the file the WAL only grows."""
        logger.warning(
            "the receipts file's write-ahead log %s is %d MiB and cannot be "
            "emptied while another process reads the file (a sqlite3 shell, a "
            "backup?); it shrinks once that process closes the file",
            self._wal,
            wal_bytes // (1024 * 1024),
        )
        while self._warn_at_wal_bytes <= wal_bytes:
            self._warn_at_wal_bytes *= 2

    async def _probe_until_writable(self) -> None:
        """Try the file, with growing waits, until a write succeeds: a
        NOT_SERVING agent gets no cells whose receipts would show it."""
        while not self.outage.writable:
            await asyncio.sleep(self.outage.retry_in())
            writer = self._writer
            if writer is None or self.outage.writable:
                return
            if self._writes_paused:
                continue
            try:
                _in_one_transaction(writer, _probe)
            except sqlite3.Error as exc:
                self.outage.failed(exc, writes=0)
            else:
                self.outage.succeeded()

    def _start_checkpoint(self) -> None:
        self._checkpointing = True
        self.checkpoints += 1
        running = asyncio.ensure_future(self._worker.run_blocking(self._checkpoint))
        running.add_done_callback(self._copied_while_writing)

    def _checkpoint(self) -> None:
        self._worker.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _copied_while_writing(self, running: asyncio.Future[None]) -> None:
        if self._failed(running) or self._writer is None:
            self._checkpointing = False
            return
        self._writes_paused = True
        finishing = asyncio.ensure_future(self._worker.run_blocking(self._checkpoint))
        finishing.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, finishing: asyncio.Future[None]) -> None:
        self._failed(finishing)
        self._checkpointing = False
        self._writes_paused = False
        self._commit_batch()

    @staticmethod
    def _failed(step: asyncio.Future[None]) -> bool:
        if step.cancelled():
            return True
        if step.exception() is not None:
            # The next checkpoint tries again; the receipts are in the WAL.
            logger.warning("receipts file checkpoint failed: %r", step.exception())
            return True
        return False

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
        self._writes_paused = False
        self._commit_batch()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        await self._worker.close()
