"""Job counts and summaries, derived from stored cell outcomes only."""

from __future__ import annotations

from collections.abc import Iterable

from beacon.statuses import CellStatus, Classification
from beacon.v1 import job_pb2, receipt_pb2

_STATUS_FIELD = {
    job_pb2.CELL_STATUS_OPEN: "open",
    job_pb2.CELL_STATUS_COMPLETED: "completed",
    job_pb2.CELL_STATUS_FAILED: "failed",
    job_pb2.CELL_STATUS_REGION_MISMATCH: "region_mismatch",
    job_pb2.CELL_STATUS_MODEL_MISMATCH: "model_mismatch",
    job_pb2.CELL_STATUS_TIMED_OUT: "timed_out",
    job_pb2.CELL_STATUS_CANCELLED: "cancelled",
    job_pb2.CELL_STATUS_NOT_RUN: "not_run",
}

_CLASSIFICATION_FIELD = {
    receipt_pb2.CLASSIFICATION_ANSWERED: "answered",
    receipt_pb2.CLASSIFICATION_REFUSED: "refused",
    receipt_pb2.CLASSIFICATION_EMPTY: "empty",
}


def add_to_counts(
    counts: job_pb2.JobCounts,
    status: CellStatus,
    classification: Classification,
    delta: int = 1,
) -> None:
    name = _STATUS_FIELD[status]
    setattr(counts, name, getattr(counts, name) + delta)
    if (
        status == job_pb2.CELL_STATUS_COMPLETED
        and classification in _CLASSIFICATION_FIELD
    ):
        field = _CLASSIFICATION_FIELD[classification]
        setattr(counts, field, getattr(counts, field) + delta)


def counts_of(
    outcomes: Iterable[tuple[CellStatus, Classification]],
) -> job_pb2.JobCounts:
    """Counts from (status, classification) pairs."""
    return counts_of_tally(
        (status, classification, 1) for status, classification in outcomes
    )


def counts_of_tally(
    tally: Iterable[tuple[CellStatus, Classification, int]],
) -> job_pb2.JobCounts:
    """Counts from (status, classification, number of cells) rows."""
    counts = job_pb2.JobCounts()
    for status, classification, cells in tally:
        counts.total += cells
        add_to_counts(counts, status, classification, cells)
    return counts


def finish(
    counts: job_pb2.JobCounts,
    old: CellStatus,
    new: CellStatus,
    classification: Classification,
) -> None:
    """Move one cell from status `old` to its final status `new`."""
    add_to_counts(counts, old, receipt_pb2.CLASSIFICATION_UNSPECIFIED, -1)
    add_to_counts(counts, new, classification)
