"""JobStore on SQLite.

One connection, used only from one worker thread, keeps the event loop free
and writes serialised. Every write commits before it returns, with
synchronous=FULL, so an outcome is durable before anyone is told of it;
attempt writes made at the same time share a commit (group_commit).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from beacon.cells import Cell
from beacon.sqlite_worker import SqliteWorker
from beacon.statuses import CellStatus, Classification, JobStatus
from beacon.v1 import job_pb2
from coordinator import metrics
from coordinator.group_commit import GroupCommit
from coordinator.store import (
    AttemptEnd,
    AttemptRecord,
    CellFinal,
    CellRecord,
    JobRecord,
    ResumePoints,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    spec BLOB NOT NULL,
    spec_sha256 TEXT NOT NULL,
    token TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS cells (
    job_id TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    region TEXT NOT NULL,
    model TEXT NOT NULL,
    question_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    status INTEGER NOT NULL,
    classification INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    final_attempt INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, cell_id)
);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    agent_address TEXT NOT NULL,
    sent_at REAL NOT NULL,
    finished_at REAL,
    receipt BLOB,
    failure BLOB,
    accepted INTEGER NOT NULL DEFAULT 0,
    public_key BLOB,
    PRIMARY KEY (job_id, cell_id, attempt)
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at, job_id);
"""

# Columns added since the first schema; a store made before gets them.
ADDED_COLUMNS = (
    ("jobs", "token", "TEXT NOT NULL DEFAULT ''"),
    ("attempts", "public_key", "BLOB"),
)

JOB_COLUMNS = "job_id, spec, spec_sha256, token, status, created_at, finished_at"

OPEN = job_pb2.CELL_STATUS_OPEN


def _set_up(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    for table, column, definition in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, "job store", "FULL", _set_up)
        # Attempt writes, the many small ones, are committed in groups.
        self._writes = GroupCommit(self._worker.submit, lambda: self._worker.db)

    @classmethod
    async def open(cls, path: Path) -> SqliteJobStore:
        """Open (creating if needed) the store; OSError says why it cannot."""
        store = cls(path)
        await store._worker.start()
        return store

    async def _run(self, fn: Callable[[], T]) -> T:
        return await self._worker.run_blocking(fn)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._worker.db

    async def close(self) -> None:
        await self._worker.close()

    # Jobs

    @metrics.timed_write
    async def create_job(
        self,
        spec: job_pb2.JobSpec,
        spec_sha256: str,
        token: str,
        cells: Sequence[Cell],
        now: float,
    ) -> tuple[JobRecord, bool]:
        def create() -> tuple[JobRecord, bool]:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                existing = self._job_row(spec.job_id)
                if existing is not None:
                    db.execute("ROLLBACK")
                    return existing, False
                db.execute(
                    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (
                        spec.job_id,
                        spec.SerializeToString(deterministic=True),
                        spec_sha256,
                        token,
                        job_pb2.JOB_STATUS_PENDING,
                        now,
                    ),
                )
                db.executemany(
                    "INSERT INTO cells (job_id, cell_id, ordinal, region, model,"
                    " question_id, sample, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            c.job_id,
                            c.cell_id,
                            i,
                            c.region,
                            c.model,
                            c.question_id,
                            c.sample,
                            OPEN,
                        )
                        for i, c in enumerate(cells)
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            record = self._job_row(spec.job_id)
            assert record is not None
            return record, True

        return await self._run(create)

    def _job_row(self, job_id: str) -> JobRecord | None:
        row = self._db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?",
            (job_id,),
        ).fetchone()
        return None if row is None else _job_record(row)

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._run(lambda: self._job_row(job_id))

    async def list_jobs(self, after: str, limit: int) -> list[JobRecord]:
        def list_() -> list[JobRecord]:
            if after:
                rows = self._db.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE (created_at, job_id) <"
                    " (SELECT created_at, job_id FROM jobs WHERE job_id = ?)"
                    " ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (after, limit),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs"
                    " ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            return [_job_record(r) for r in rows]

        return await self._run(list_)

    async def unfinished_jobs(self) -> list[JobRecord]:
        def unfinished() -> list[JobRecord]:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN (?, ?)"
                " ORDER BY created_at",
                (job_pb2.JOB_STATUS_PENDING, job_pb2.JOB_STATUS_RUNNING),
            ).fetchall()
            return [_job_record(r) for r in rows]

        return await self._run(unfinished)

    @metrics.timed_write
    async def set_job_status(
        self, job_id: str, status: JobStatus, finished_at: float | None
    ) -> None:
        await self._run(
            lambda: self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE job_id = ?"
                " AND status IN (?, ?)",
                (
                    status,
                    finished_at,
                    job_id,
                    job_pb2.JOB_STATUS_PENDING,
                    job_pb2.JOB_STATUS_RUNNING,
                ),
            )
        )

    # Cells and attempts

    async def cells(self, job_id: str) -> list[CellRecord]:
        def cells() -> list[CellRecord]:
            rows = self._db.execute(
                "SELECT c.cell_id, c.region, c.model, c.question_id, c.sample,"
                " c.status, c.classification, c.reason, c.final_attempt,"
                " COALESCE(MAX(a.attempt), 0),"
                " COALESCE(SUM(a.finished_at IS NULL), 0)"
                " FROM cells c LEFT JOIN attempts a"
                " ON a.job_id = c.job_id AND a.cell_id = c.cell_id"
                " WHERE c.job_id = ? GROUP BY c.cell_id ORDER BY c.ordinal",
                (job_id,),
            )
            # Rows are read one at a time, and the few distinct region, model
            # and question ids shared, so a large job's cells take little room.
            return [
                CellRecord(
                    cell_id=r[0],
                    region=sys.intern(r[1]),
                    model=sys.intern(r[2]),
                    question_id=sys.intern(r[3]),
                    sample=r[4],
                    status=CellStatus(r[5]),
                    classification=Classification(r[6]),
                    reason=r[7],
                    final_attempt=r[8],
                    last_attempt=r[9],
                    last_attempt_open=r[10] > 0,
                )
                for r in rows
            ]

        return await self._run(cells)

    async def outcome_tally(
        self, job_id: str
    ) -> list[tuple[CellStatus, Classification, int]]:
        def tally() -> list[tuple[CellStatus, Classification, int]]:
            rows = self._db.execute(
                "SELECT status, classification, COUNT(*) FROM cells"
                " WHERE job_id = ? GROUP BY status, classification",
                (job_id,),
            ).fetchall()
            return [(CellStatus(r[0]), Classification(r[1]), r[2]) for r in rows]

        return await self._run(tally)

    async def resume_points(self, job_id: str) -> ResumePoints:
        def resume_points() -> ResumePoints:
            db = self._db
            # One read transaction: the three reads see the same moment.
            db.execute("BEGIN")
            try:
                tally = db.execute(
                    "SELECT status, classification, COUNT(*) FROM cells"
                    " WHERE job_id = ? GROUP BY status, classification",
                    (job_id,),
                ).fetchall()
                ended = db.execute(
                    "SELECT cell_id FROM cells WHERE job_id = ? AND status != ?",
                    (job_id, OPEN),
                )
                ended_ids = frozenset(row[0] for row in ended)
                moved = db.execute(
                    "SELECT a.cell_id, MAX(a.attempt),"
                    " SUM(a.finished_at IS NULL) > 0"
                    " FROM attempts a JOIN cells c"
                    " ON c.job_id = a.job_id AND c.cell_id = a.cell_id"
                    " WHERE a.job_id = ? AND c.status = ? GROUP BY a.cell_id",
                    (job_id, OPEN),
                )
                next_attempts = {
                    cell_id: max(last if unanswered else last + 1, 1)
                    for cell_id, last, unanswered in moved
                }
            finally:
                db.execute("COMMIT")
            return ResumePoints(
                [(CellStatus(r[0]), Classification(r[1]), r[2]) for r in tally],
                ended_ids,
                next_attempts,
            )

        return await self._run(resume_points)

    async def attempts(self, job_id: str) -> list[AttemptRecord]:
        def attempts() -> list[AttemptRecord]:
            rows = self._db.execute(
                "SELECT cell_id, attempt, agent_address, sent_at, finished_at,"
                " receipt, failure, accepted, public_key FROM attempts"
                " WHERE job_id = ?"
                " ORDER BY cell_id, attempt",
                (job_id,),
            ).fetchall()
            return [
                AttemptRecord(
                    cell_id=r[0],
                    attempt=r[1],
                    agent_address=r[2],
                    sent_at=r[3],
                    finished_at=r[4],
                    receipt=r[5],
                    failure=r[6],
                    accepted=bool(r[7]),
                    public_key=r[8],
                )
                for r in rows
            ]

        return await self._run(attempts)

    @metrics.timed_write
    async def record_attempt_sent(
        self, job_id: str, cell_id: str, attempt: int, agent_address: str, now: float
    ) -> None:
        def sent(db: sqlite3.Connection) -> None:
            # A re-send of the same attempt (after a reconnect) keeps its
            # first time but names the agent it went to last.
            db.execute(
                "INSERT INTO attempts (job_id, cell_id, attempt, agent_address,"
                " sent_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, cell_id, attempt) DO UPDATE"
                " SET agent_address = excluded.agent_address",
                (job_id, cell_id, attempt, agent_address, now),
            )

        await self._writes.write(sent)

    @metrics.timed_write
    async def record_attempt_end(
        self, job_id: str, end: AttemptEnd, final: CellFinal | None
    ) -> bool:
        def record(db: sqlite3.Connection) -> bool:
            ended = db.execute(
                "UPDATE attempts SET finished_at = ?, receipt = ?, failure = ?,"
                " accepted = ?, public_key = ?"
                " WHERE job_id = ? AND cell_id = ? AND attempt = ?"
                " AND finished_at IS NULL",
                (
                    end.finished_at,
                    end.receipt,
                    end.failure,
                    int(end.accepted),
                    end.public_key,
                    job_id,
                    end.cell_id,
                    end.attempt,
                ),
            ).rowcount
            # An outcome stands only on an attempt that ends here and now.
            if ended != 1:
                return False
            if final is None:
                return True
            return (
                db.execute(
                    "UPDATE cells SET status = ?, classification = ?,"
                    " reason = ?, final_attempt = ?"
                    " WHERE job_id = ? AND cell_id = ?"
                    " AND status = ?",
                    (
                        final.status,
                        final.classification,
                        final.reason,
                        final.final_attempt,
                        job_id,
                        final.cell_id,
                        OPEN,
                    ),
                ).rowcount
                == 1
            )

        # Both updates share one savepoint: the attempt's end and the
        # outcome it carries are stored together or not at all.
        return await self._writes.write(record)

    @metrics.timed_write
    async def finish_open_cells(
        self,
        job_id: str,
        status: CellStatus,
        reason: str,
        region: str | None = None,
        *,
        unsent_only: bool = False,
    ) -> list[str]:
        where = "job_id = ? AND status = ?" + (
            "" if region is None else " AND region = ?"
        )
        if unsent_only:
            where += (
                " AND NOT EXISTS (SELECT 1 FROM attempts a"
                " WHERE a.job_id = cells.job_id AND a.cell_id = cells.cell_id)"
            )
        params: tuple[object, ...] = (job_id, OPEN) + (
            () if region is None else (region,)
        )

        def finish() -> list[str]:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    r[0]
                    for r in db.execute(
                        f"SELECT cell_id FROM cells WHERE {where} ORDER BY ordinal",
                        params,
                    )
                ]
                db.execute(
                    f"UPDATE cells SET status = ?, reason = ? WHERE {where}",
                    (status, reason, *params),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ids

        return await self._run(finish)


def _job_record(row: tuple[object, ...]) -> JobRecord:
    spec = job_pb2.JobSpec()
    spec.ParseFromString(row[1])  # type: ignore[arg-type]
    return JobRecord(
        job_id=str(row[0]),
        spec=spec,
        spec_sha256=str(row[2]),
        token=str(row[3]),
        status=JobStatus(int(row[4])),  # type: ignore[call-overload]
        created_at=float(row[5]),  # type: ignore[arg-type]
        finished_at=None if row[6] is None else float(row[6]),  # type: ignore[arg-type]
    )
