"""What changed between two runs of the same questions, cell by cell.

Cells are matched by (region, model, question id, sample); classes are the
analysis' reading of each outcome, so "refusal" means the same here as in the
report. Only cells with an accepted answer in both runs are compared as
answers: a refusal that became pending, failed or cancelled is not a refusal
gone, and a cell whose question was asked in other words is listed apart.
Different settings (system prompt, generation parameters, samples,
attempts) are named above the changes, since they alone can change answers.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from beacon.display_text import shown
from beacon.export_rows import class_name
from beacon.v1 import job_pb2
from coordinator.analysis.classes import ACCEPTED, REFUSAL, answer_class, compared_text
from coordinator.analysis.similarity import cosine, word_counts

logger = logging.getLogger(__name__)

CellKey = tuple[str, str, str, int]

# How much of a changed setting's value a diff line quotes.
QUOTED_CHARS: Final = 60


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
    # One run has no accepted answer (pending, failed, cancelled, ...).
    without_answer: list[CellChange] = field(default_factory=list)
    # The question's text differs, so the answers are not comparable.
    asked_differently: list[CellChange] = field(default_factory=list)
    only_in_a: list[CellChange] = field(default_factory=list)
    only_in_b: list[CellChange] = field(default_factory=list)
    # Question ids asked with different texts in the two runs.
    question_text_changed: list[str] = field(default_factory=list)
    # Settings of the two specs that differ, as "name: before -> after".
    settings_changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sections(self) -> list[tuple[str, list[CellChange]]]:
        return [
            ("new refusals", self.new_refusals),
            ("refusals gone", self.refusals_gone),
            ("changed answers", self.changed_answers),
            ("other class changes", self.other_class_changes),
            ("no accepted answer in one run", self.without_answer),
            ("question asked differently (not comparable)", self.asked_differently),
            (f"only in A ({self.job_a})", self.only_in_a),
            (f"only in B ({self.job_b})", self.only_in_b),
        ]


def _cells(result: job_pb2.JobResult) -> dict[CellKey, job_pb2.CellOutcome]:
    return {(o.region, o.model, o.question_id, o.sample): o for o in result.outcomes}


def _change(key: CellKey, before: str, after: str, **extra: Any) -> CellChange:
    return CellChange(*key, before=before, after=after, **extra)


def _similarity(a: job_pb2.CellOutcome, b: job_pb2.CellOutcome) -> float:
    counts = word_counts(compared_text(a)), word_counts(compared_text(b))
    return round(cosine(*counts), 4)


def _compare_cell(
    diff: ResultDiff,
    key: CellKey,
    pair: tuple[job_pb2.CellOutcome, job_pb2.CellOutcome],
    asked_differently: bool,
) -> None:
    a, b = pair
    class_a, class_b = answer_class(a), answer_class(b)
    change = _change(key, class_name(class_a), class_name(class_b))
    both_accepted = class_a in ACCEPTED and class_b in ACCEPTED
    if asked_differently:
        similarity = _similarity(a, b) if both_accepted else None
        diff.asked_differently.append(
            _change(key, change.before, change.after, similarity=similarity)
        )
    elif not both_accepted:
        if class_a != class_b:
            diff.without_answer.append(change)
    elif class_b == REFUSAL and class_a != REFUSAL:
        diff.new_refusals.append(change)
    elif class_a == REFUSAL and class_b != REFUSAL:
        diff.refusals_gone.append(change)
    elif class_a != class_b:
        diff.other_class_changes.append(change)
    elif a.answer != b.answer:
        diff.changed_answers.append(
            _change(key, change.before, change.after, similarity=_similarity(a, b))
        )


def _quoted(value: str) -> str:
    if len(value) <= QUOTED_CHARS:
        return repr(value)
    return repr(value[:QUOTED_CHARS]) + f"... ({len(value)} characters)"


def _temperature(spec: job_pb2.JobSpec) -> str:
    if spec.generation.HasField("temperature"):
        return str(spec.generation.temperature)
    return "default"


def settings_changed(a: job_pb2.JobSpec, b: job_pb2.JobSpec) -> list[str]:
    """The spec settings besides the questions that differ between two runs."""
    settings = (
        ("system_prompt", _quoted(a.system_prompt), _quoted(b.system_prompt)),
        ("temperature", _temperature(a), _temperature(b)),
        ("max_tokens", str(a.generation.max_tokens), str(b.generation.max_tokens)),
        ("samples", str(a.samples), str(b.samples)),
        ("max_attempts", str(a.max_attempts), str(b.max_attempts)),
    )
    return [f"{name}: {old} -> {new}" for name, old, new in settings if old != new]


def diff_results(a: job_pb2.JobResult, b: job_pb2.JobResult) -> ResultDiff:
    diff = ResultDiff(a.job_id, b.job_id)
    texts_a = {q.id: q.text for q in a.spec.questions}
    diff.question_text_changed = [
        q.id for q in b.spec.questions if q.id in texts_a and texts_a[q.id] != q.text
    ]
    diff.settings_changed = settings_changed(a.spec, b.spec)
    reworded = set(diff.question_text_changed)
    cells_a, cells_b = _cells(a), _cells(b)
    for key, outcome in cells_a.items():
        if key not in cells_b:
            name = class_name(answer_class(outcome))
            diff.only_in_a.append(_change(key, name, "absent"))
            continue
        diff.in_both += 1
        _compare_cell(diff, key, (outcome, cells_b[key]), key[2] in reworded)
    for key, outcome in cells_b.items():
        if key not in cells_a:
            diff.only_in_b.append(
                _change(key, "absent", class_name(answer_class(outcome)))
            )
    return diff


def diff_lines(diff: ResultDiff) -> list[str]:
    """The diff as text, one change per line under a heading per kind."""
    lines = [
        f"A ({diff.job_a}) -> B ({diff.job_b}): {diff.in_both} cells in both, "
        f"{len(diff.only_in_a)} only in A, {len(diff.only_in_b)} only in B"
    ]
    if diff.settings_changed:
        lines.append(
            "settings differ, which alone can change answers: "
            + "; ".join(diff.settings_changed)
        )
    if diff.question_text_changed:
        lines.append(
            "question texts differ for: "
            + ", ".join(diff.question_text_changed)
            + " (their cells are not compared)"
        )
    for title, changes in diff.sections:
        lines.append(f"{title} ({len(changes)})")
        for change in changes:
            line = f"  {change.where()}: {change.before} -> {change.after}"
            if change.similarity is not None:
                line += f" (similarity {change.similarity:.2f})"
            lines.append(line)
    return [shown(line) for line in lines]
