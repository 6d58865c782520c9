"""What changed between two runs of the same questions, cell by cell.

Cells are matched by (region, model, question id, sample); classes are the
analysis' reading of each outcome, so "refusal" means the same here as in the
report.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from beacon.export_rows import class_name
from beacon.v1 import job_pb2
from coordinator.analysis.classes import ACCEPTED, REFUSAL, answer_class
from coordinator.analysis.similarity import cosine, word_counts

logger = logging.getLogger(__name__)

CellKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class CellChange:
    region: str
    model: str
    question_id: str
    sample: int
    before: str
    after: str
    # Similarity of the two answers, when both runs have one.
    similarity: float | None = None

    def where(self) -> str:
        return f"{self.region} {self.model} {self.question_id} #{self.sample}"


@dataclass
class ResultDiff:
    job_a: str
    job_b: str
    in_both: int = 0
    new_refusals: list[CellChange] = field(default_factory=list)
    refusals_gone: list[CellChange] = field(default_factory=list)
    changed_answers: list[CellChange] = field(default_factory=list)
    other_class_changes: list[CellChange] = field(default_factory=list)
    only_in_a: list[CellChange] = field(default_factory=list)
    only_in_b: list[CellChange] = field(default_factory=list)
    # Question ids asked with different texts in the two runs.
    question_text_changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sections(self) -> list[tuple[str, list[CellChange]]]:
        return [
            ("new refusals", self.new_refusals),
            ("refusals gone", self.refusals_gone),
            ("changed answers", self.changed_answers),
            ("other class changes", self.other_class_changes),
            (f"only in {self.job_a}", self.only_in_a),
            (f"only in {self.job_b}", self.only_in_b),
        ]


def _cells(result: job_pb2.JobResult) -> dict[CellKey, job_pb2.CellOutcome]:
    return {(o.region, o.model, o.question_id, o.sample): o for o in result.outcomes}


def _change(key: CellKey, before: str, after: str, **extra: Any) -> CellChange:
    return CellChange(*key, before=before, after=after, **extra)


def _compare_cell(
    diff: ResultDiff, key: CellKey, a: job_pb2.CellOutcome, b: job_pb2.CellOutcome
) -> None:
    class_a, class_b = answer_class(a), answer_class(b)
    name_a, name_b = class_name(class_a), class_name(class_b)
    if class_b == REFUSAL and class_a != REFUSAL:
        diff.new_refusals.append(_change(key, name_a, name_b))
    elif class_a == REFUSAL and class_b != REFUSAL:
        diff.refusals_gone.append(_change(key, name_a, name_b))
    elif class_a != class_b:
        diff.other_class_changes.append(_change(key, name_a, name_b))
    elif class_a in ACCEPTED and a.answer != b.answer:
        similarity = cosine(word_counts(a.answer), word_counts(b.answer))
        diff.changed_answers.append(
            _change(key, name_a, name_b, similarity=round(similarity, 4))
        )


def diff_results(a: job_pb2.JobResult, b: job_pb2.JobResult) -> ResultDiff:
    diff = ResultDiff(a.job_id, b.job_id)
    texts_a = {q.id: q.text for q in a.spec.questions}
    diff.question_text_changed = [
        q.id for q in b.spec.questions if q.id in texts_a and texts_a[q.id] != q.text
    ]
    cells_a, cells_b = _cells(a), _cells(b)
    for key, outcome in cells_a.items():
        if key not in cells_b:
            name = class_name(answer_class(outcome))
            diff.only_in_a.append(_change(key, name, "absent"))
            continue
        diff.in_both += 1
        _compare_cell(diff, key, outcome, cells_b[key])
    for key, outcome in cells_b.items():
        if key not in cells_a:
            diff.only_in_b.append(
                _change(key, "absent", class_name(answer_class(outcome)))
            )
    return diff


def diff_lines(diff: ResultDiff) -> list[str]:
    """The diff as text, one change per line under a heading per kind."""
    lines = [
        f"{diff.job_a} -> {diff.job_b}: {diff.in_both} cells in both, "
        f"{len(diff.only_in_a)} only in {diff.job_a}, "
        f"{len(diff.only_in_b)} only in {diff.job_b}"
    ]
    if diff.question_text_changed:
        lines.append(
            "question texts differ for: " + ", ".join(diff.question_text_changed)
        )
    for title, changes in diff.sections:
        lines.append(f"{title} ({len(changes)})")
        for change in changes:
            line = f"  {change.where()}: {change.before} -> {change.after}"
            if change.similarity is not None:
                line += f" (similarity {change.similarity:.2f})"
            lines.append(line)
    return lines
