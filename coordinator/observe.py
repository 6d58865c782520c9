"""What the coordinator reports about the cells of a job: log lines and metrics."""

from __future__ import annotations

import logging

from beacon.cells import Cell
from beacon.v1 import job_pb2, receipt_pb2
from coordinator import metrics
from coordinator.outcomes import Verdict

logger = logging.getLogger(__name__)


def outcome_name(status: job_pb2.CellStatus.ValueType) -> str:
    return job_pb2.CellStatus.Name(status).removeprefix("CELL_STATUS_").lower()


def cell_final(cell: Cell, verdict: Verdict) -> None:
    outcome = outcome_name(verdict.status)
    metrics.CELLS.labels(cell.region, cell.model, outcome).inc()
    logger.debug(
        "cell final cell_id=%s region=%s model=%s question=%s outcome=%s",
        cell.cell_id,
        cell.region,
        cell.model,
        cell.question_id,
        outcome,
    )


def retry(cell: Cell, failure: receipt_pb2.Failure) -> None:
    metrics.RETRIES.labels(cell.region, failure.code or "UNKNOWN").inc()


def receipt_rejected(region: str, reason: str) -> None:
    metrics.RECEIPTS_REJECTED.labels(region, reason).inc()
