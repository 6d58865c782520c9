"""What the coordinator reports about the cells of a job: log lines and metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from opentelemetry import trace

from beacon import tracing
from beacon.cells import Cell
from beacon.statuses import JobStatus
from beacon.v1 import job_pb2, receipt_pb2
from coordinator import metrics
from coordinator.outcomes import Verdict

logger = logging.getLogger(__name__)


def outcome_name(status: job_pb2.CellStatus.ValueType) -> str:
    return job_pb2.CellStatus.Name(status).removeprefix("CELL_STATUS_").lower()


def cell_final(cell: Cell, verdict: Verdict) -> None:
    outcome = outcome_name(verdict.status)
    reads = receipt_pb2.Classification.Name(verdict.classification)
    classification = reads.removeprefix("CLASSIFICATION_").lower()
    if classification == "unspecified":
        classification = "none"
    metrics.CELLS.labels(cell.region, cell.model, outcome, classification).inc()
    logger.debug(
        "cell final cell_id=%s region=%s model=%s question=%s outcome=%s "
        "classification=%s",
        cell.cell_id,
        cell.region,
        cell.model,
        cell.question_id,
        outcome,
        classification,
    )


def retry(cell: Cell, failure: receipt_pb2.Failure) -> None:
    metrics.RETRIES.labels(cell.region, failure.code or "UNKNOWN").inc()


def receipt_rejected(region: str, reason: str) -> None:
    metrics.RECEIPTS_REJECTED.labels(region, reason).inc()


# Spans of attempts sent and not yet answered, by (job, cell, attempt).
_attempt_spans: dict[tuple[str, str, int], trace.Span] = {}


def attempt_sent(job_id: str, cell: Cell, attempt: int) -> str:
    """Opens the attempt's span (under the region stream's); returns the
    traceparent the agent continues it from, "" when tracing is off."""
    span = tracing.start_span(
        "cell attempt",
        {
            "beacon.job_id": job_id,
            "beacon.cell_id": cell.cell_id,
            "beacon.attempt": attempt,
            "beacon.region": cell.region,
            "beacon.model": cell.model,
            "beacon.question_id": cell.question_id,
        },
    )
    if not span.is_recording():
        return ""
    previous = _attempt_spans.pop((job_id, cell.cell_id, attempt), None)
    if previous is not None:
        previous.end()
    _attempt_spans[(job_id, cell.cell_id, attempt)] = span
    return tracing.traceparent_of(span)


def attempt_ended(job_id: str, cell_id: str, attempt: int, how: str) -> None:
    span = _attempt_spans.pop((job_id, cell_id, attempt), None)
    if span is not None:
        span.set_attribute("beacon.attempt_end", how)
        span.end()


def job_ended(job_id: str) -> None:
    """Ends the spans of attempts the job stopped waiting for."""
    for key in [key for key in _attempt_spans if key[0] == job_id]:
        attempt_ended(*key, "job ended")


async def run_job(job_id: str, run: Awaitable[JobStatus]) -> JobStatus:
    """The job's run, timed, with its open attempt spans closed at the end."""
    try:
        return await metrics.timed_job(run, job_pb2.JobStatus.Name)
    finally:
        job_ended(job_id)
