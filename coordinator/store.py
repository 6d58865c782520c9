"""The job store interface: the only source of truth for what is done.

The coordinator talks to this interface only, so a shared database can take
SQLite's place when several coordinators serve one deployment. Recovery
reads it and nothing ever deletes from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from beacon.cells import Cell
from beacon.statuses import CellStatus, Classification, JobStatus
from beacon.v1 import job_pb2


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    spec: job_pb2.JobSpec
    spec_sha256: str
    # Random, given when the job was stored; receipts must carry it.
    token: str
    status: JobStatus
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class CellRecord:
    cell_id: str
    region: str
    model: str
    question_id: str
    sample: int
    status: CellStatus
    classification: Classification
    reason: str
    final_attempt: int
    # The highest attempt number sent, and whether it still has no result.
    last_attempt: int
    last_attempt_open: bool


@dataclass(frozen=True)
class ResumePoints:
    """Where a job's cells stand, with only what (re)starting it needs."""

    # How many cells have each (status, classification).
    tally: list[tuple[CellStatus, Classification, int]]
    # Cells no longer open.
    ended: frozenset[str]
    # The next attempt of each open cell that has had one; every other open
    # cell starts at attempt 1. An attempt sent and never answered is sent
    # again under its own number, so the agent can replay its receipt.
    next_attempts: dict[str, int]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    cell_id: str
    attempt: int
    agent_address: str
    sent_at: float
    finished_at: float | None
    # A serialized Receipt envelope, exactly as received.
    receipt: bytes | None
    # A serialized Failure, when the attempt failed or its receipt was refused.
    failure: bytes | None
    accepted: bool
    # The raw public key the receipt was verified with, kept so results stay
    # checkable after a key is rotated.
    public_key: bytes | None


@dataclass(frozen=True)
class AttemptEnd:
    """How one attempt ended, written together with the cell's final outcome."""

    cell_id: str
    attempt: int
    finished_at: float
    receipt: bytes | None
    failure: bytes | None
    accepted: bool
    public_key: bytes | None = None


@dataclass(frozen=True)
class CellFinal:
    cell_id: str
    status: CellStatus
    classification: Classification
    reason: str
    final_attempt: int


class JobStore(Protocol):
    async def create_job(
        self,
        spec: job_pb2.JobSpec,
        spec_sha256: str,
        token: str,
        cells: Sequence[Cell],
        now: float,
    ) -> tuple[JobRecord, bool]:
        """Store a new job and its open cells; an existing id returns that job."""

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def list_jobs(self, after: str, limit: int) -> list[JobRecord]:
        """Newest first, starting after the job `after` (or at the newest)."""

    async def unfinished_jobs(self) -> list[JobRecord]: ...

    async def set_job_status(
        self, job_id: str, status: JobStatus, finished_at: float | None
    ) -> None:
        """Set the status of an unfinished job; a finished one keeps its own."""

    async def cells(self, job_id: str) -> list[CellRecord]: ...

    async def attempts(self, job_id: str) -> list[AttemptRecord]: ...

    async def outcome_tally(
        self, job_id: str
    ) -> list[tuple[CellStatus, Classification, int]]:
        """How many cells have each (status, classification)."""

    async def resume_points(self, job_id: str) -> ResumePoints:
        """What running the job needs from the store: of a new job, nothing
        per cell; of one resumed, only the cells that have moved."""

    async def record_attempt_sent(
        self, job_id: str, cell_id: str, attempt: int, agent_address: str, now: float
    ) -> None: ...

    async def record_attempt_end(
        self, job_id: str, end: AttemptEnd, final: CellFinal | None
    ) -> bool:
        """Durably record an attempt's end and, if given, the cell's outcome.

        Returns False when the attempt had already ended or, with a final
        outcome, when the cell was no longer open (another outcome won).
        """

    async def finish_open_cells(
        self,
        job_id: str,
        status: CellStatus,
        reason: str,
        region: str | None = None,
        *,
        unsent_only: bool = False,
    ) -> list[str]:
        """Give every still-open cell (of `region`, if given; never sent to
        an agent, if `unsent_only`) this final status; returns their ids."""

    async def close(self) -> None: ...
