"""Signed receipts kept on disk, so an agent that restarts still answers a
repeated attempt with the receipt it signed instead of calling the router.

A receipt is written before it is sent. The file is in WAL mode with
synchronous=NORMAL: a write survives the agent's process being killed, which
is what this is for; an operating-system crash may lose the last writes, and
then those attempts are executed again, as they would be without the file.
Receipts signed at the same time share a transaction (group commit).

Nearly every attempt is new, so the file is read only for attempts whose key
it may hold: the store keeps the hash of every key written, and a lookup
whose hash is not among them needs no trip to the disk thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from beacon.group_commit import GroupCommit
from beacon.sqlite_worker import SqliteWorker
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


def _set_up(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class ReceiptStore:
    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, "receipts file", "NORMAL", _set_up)
        self._writes = GroupCommit(self._worker.submit, lambda: self._worker.db)
        # hash() of every key in the file: a hit may be a collision and is
        # read to be sure; a miss is certain.
        self._maybe_kept: set[int] = set()

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
            return dropped

        dropped = await store._worker.run_blocking(clean_and_index)
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
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?)",
                (*key, receipt, time.time()),
            )

        # Counted as kept before the write lands, so a repeat arriving
        # meanwhile reads the file (the book makes it wait for this one).
        self._maybe_kept.add(hash(key))
        await self._writes.write(write)

    async def close(self) -> None:
        await self._worker.close()
