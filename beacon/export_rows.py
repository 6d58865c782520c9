"""One flat row per cell of a JobResult, with what its analysis says about it.

The rows feed the line-oriented exports (JSON Lines, CSV) and the HTML
report; the analysis itself is the coordinator's, read here, never redone.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from beacon.statuses import AnswerClass, CellStatus
from beacon.v1 import analysis_pb2, job_pb2, receipt_pb2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellRow:
    job_id: str
    cell_id: str
    region: str
    model: str
    question_id: str
    question_group: str
    question: str
    sample: int
    status: str
    answer_class: str
    refusal_rule: str
    # True when the router's offline provider, not a model, wrote the answer.
    offline: bool
    answer: str
    reason: str
    similarity_to_other_regions: float | None
    flags: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["flags"] = list(self.flags)
        return row


def status_name(status: CellStatus) -> str:
    return job_pb2.CellStatus.Name(status).removeprefix("CELL_STATUS_").lower()


def class_name(value: AnswerClass) -> str:
    """'substantive', 'refusal', 'technical failure', ..."""
    name = analysis_pb2.AnswerClass.Name(value).removeprefix("ANSWER_CLASS_")
    return name.lower().replace("_", " ")


class AnalysisIndex:
    """The analysis of a result, looked up by (model, question) and region."""

    def __init__(self, analysis: analysis_pb2.JobAnalysis) -> None:
        self.questions = {(q.model, q.question_id): q for q in analysis.questions}
        self.samples: dict[str, analysis_pb2.SampleAnalysis] = {
            s.cell_id: s
            for q in analysis.questions
            for r in q.regions
            for s in r.samples
        }

    def question(
        self, model: str, question_id: str
    ) -> analysis_pb2.QuestionAnalysis | None:
        return self.questions.get((model, question_id))

    def answer_class(self, cell_id: str) -> AnswerClass:
        sample = self.samples.get(cell_id)
        return sample.answer_class if sample else analysis_pb2.ANSWER_CLASS_UNSPECIFIED

    def similarity(self, model: str, question_id: str, region: str) -> float | None:
        question = self.question(model, question_id)
        values = [
            p.similarity
            for p in (question.pairs if question else ())
            if region in (p.region_a, p.region_b)
        ]
        return round(sum(values) / len(values), 4) if values else None

    def flags(self, model: str, question_id: str, region: str) -> list[str]:
        question = self.question(model, question_id)
        return [
            f.message
            for f in (question.flags if question else ())
            if region in f.regions
        ]


def _receipt_body(outcome: job_pb2.CellOutcome) -> receipt_pb2.ReceiptBody:
    body = receipt_pb2.ReceiptBody()
    if outcome.receipt.body:
        body.ParseFromString(outcome.receipt.body)
    return body


def cell_rows(result: job_pb2.JobResult) -> list[CellRow]:
    """Rows in the job's order: region, model, question, sample."""
    index = AnalysisIndex(result.analysis)
    questions = {q.id: q for q in result.spec.questions}
    rows = []
    for outcome in result.outcomes:
        question = questions.get(outcome.question_id, job_pb2.Question())
        key = (outcome.model, outcome.question_id, outcome.region)
        body = _receipt_body(outcome)
        rows.append(
            CellRow(
                job_id=result.job_id,
                cell_id=outcome.cell_id,
                region=outcome.region,
                model=outcome.model,
                question_id=outcome.question_id,
                question_group=question.group,
                question=question.text,
                sample=outcome.sample,
                status=status_name(outcome.status),
                answer_class=class_name(index.answer_class(outcome.cell_id)),
                refusal_rule=body.classification_rule,
                offline=body.router.offline,
                answer=outcome.answer,
                reason=outcome.reason,
                similarity_to_other_regions=index.similarity(*key),
                flags=tuple(index.flags(*key)),
            )
        )
    return rows
