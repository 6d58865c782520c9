"""Assembling a JobResult from the store, and only from the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from beacon.signing import PublicKey
from beacon.timestamps import timestamp
from beacon.v1 import job_pb2, receipt_pb2
from coordinator.counts import counts_of, counts_of_tally
from coordinator.store import AttemptRecord, JobRecord, JobStore


def summary_of(job: JobRecord, counts: job_pb2.JobCounts) -> job_pb2.JobSummary:
    summary = job_pb2.JobSummary(
        job_id=job.job_id,
        title=job.spec.title,
        status=job.status,
        created_at=timestamp(job.created_at),
    )
    if job.finished_at is not None:
        summary.finished_at.CopyFrom(timestamp(job.finished_at))
    summary.counts.CopyFrom(counts)
    return summary


async def job_summary(store: JobStore, job: JobRecord) -> job_pb2.JobSummary:
    return summary_of(job, counts_of_tally(await store.outcome_tally(job.job_id)))


def _attempt_message(record: AttemptRecord) -> job_pb2.Attempt:
    attempt = job_pb2.Attempt(
        attempt=record.attempt,
        agent_address=record.agent_address,
        sent_at=timestamp(record.sent_at),
    )
    if record.finished_at is not None:
        attempt.finished_at.CopyFrom(timestamp(record.finished_at))
    if record.receipt is not None:
        attempt.receipt.ParseFromString(record.receipt)
    if record.failure is not None:
        attempt.failure.ParseFromString(record.failure)
    return attempt


async def assemble_result(
    store: JobStore, job: JobRecord, public_keys: Mapping[str, PublicKey]
) -> job_pb2.JobResult:
    cells = await store.cells(job.job_id)
    attempts: dict[str, list[AttemptRecord]] = defaultdict(list)
    for record in await store.attempts(job.job_id):
        attempts[record.cell_id].append(record)

    result = job_pb2.JobResult(
        job_id=job.job_id,
        spec=job.spec,
        status=job.status,
        created_at=timestamp(job.created_at),
    )
    if job.finished_at is not None:
        result.finished_at.CopyFrom(timestamp(job.finished_at))
    # The key each receipt was verified with; the configured keys fill in for
    # rows stored before keys were kept with attempts.
    used_keys: dict[str, bytes] = {}
    for cell in cells:
        outcome = result.outcomes.add(
            cell_id=cell.cell_id,
            region=cell.region,
            model=cell.model,
            question_id=cell.question_id,
            sample=cell.sample,
            status=cell.status,
            classification=cell.classification,
            reason=cell.reason,
        )
        for record in attempts.get(cell.cell_id, ()):
            message = _attempt_message(record)
            key_id = message.receipt.key_id
            if record.public_key:
                used_keys[key_id] = record.public_key
            elif key_id in public_keys:
                used_keys.setdefault(key_id, public_keys[key_id].raw)
            if record.accepted and record.attempt == cell.final_attempt:
                # The final receipt is carried once, on the outcome.
                outcome.receipt.CopyFrom(message.receipt)
                message.ClearField("receipt")
                if cell.status == job_pb2.CELL_STATUS_COMPLETED:
                    # A mismatch keeps its receipt (and output) for audit, but
                    # another region's or model's text is never this cell's answer.
                    body = receipt_pb2.ReceiptBody()
                    body.ParseFromString(outcome.receipt.body)
                    outcome.answer = body.output
            outcome.attempts.append(message)
    counts = counts_of((c.status, c.classification) for c in cells)
    result.counts.CopyFrom(counts)
    result.partial = counts.completed != counts.total
    for key_id in sorted(used_keys):
        result.public_keys[key_id] = used_keys[key_id]
    return result
