"""Hand-built JobResults for tests of what reads them (analysis, exports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from beacon.v1 import job_pb2, receipt_pb2

REFUSED = receipt_pb2.CLASSIFICATION_REFUSED
ANSWERED = receipt_pb2.CLASSIFICATION_ANSWERED
EMPTY = receipt_pb2.CLASSIFICATION_EMPTY


@dataclass(frozen=True)
class Cell:
    """A cell's final state: an answer (with its class) or a non-completed status."""

    answer: str = ""
    classification: int = ANSWERED
    status: int = job_pb2.CELL_STATUS_COMPLETED
    reason: str = ""


def failed(reason: str = "router unavailable") -> Cell:
    return Cell(status=job_pb2.CELL_STATUS_FAILED, reason=reason)


def refused(text: str = "I'm sorry, but I can't discuss that topic.") -> Cell:
    return Cell(text, REFUSED)


def make_result(
    cells: Mapping[tuple[str, str, str, int], Cell],
    *,
    regions: Sequence[str] = ("us-east", "eu-west", "asia-pacific"),
    models: Sequence[str] = ("llama3.2-1b",),
    questions: Sequence[str] = ("q1",),
    samples: int = 1,
    job_id: str = "job-1",
) -> job_pb2.JobResult:
    """Every (region, model, question, sample) gets a cell; unnamed ones are
    NOT_RUN, as the coordinator would report a cell it never sent."""
    result = job_pb2.JobResult(job_id=job_id, status=job_pb2.JOB_STATUS_COMPLETED)
    result.spec.job_id = job_id
    result.spec.regions.extend(regions)
    result.spec.models.extend(models)
    result.spec.samples = samples
    for question in questions:
        result.spec.questions.add(id=question, text=f"Text of {question}?")
    for region in regions:
        for model in models:
            for question in questions:
                for sample in range(samples):
                    key = (region, model, question, sample)
                    cell = cells.get(
                        key, Cell(status=job_pb2.CELL_STATUS_NOT_RUN, reason="not sent")
                    )
                    outcome = result.outcomes.add(
                        cell_id=f"{region}/{model}/{question}/{sample}",
                        region=region,
                        model=model,
                        question_id=question,
                        sample=sample,
                        status=cell.status,
                        reason=cell.reason,
                    )
                    if cell.status == job_pb2.CELL_STATUS_COMPLETED:
                        outcome.classification = cell.classification
                        outcome.answer = cell.answer
    return result
