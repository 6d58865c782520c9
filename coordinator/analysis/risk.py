"""From flags and gaps to one risk level, with the reasons that produced it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from beacon.v1 import analysis_pb2
from coordinator.analysis.thresholds import AnalysisThresholds

# How many (model, question)s a reason names before it says "and N more".
NAMED_IN_REASON = 5

RiskLevel: TypeAlias = analysis_pb2.RiskLevel.ValueType

_LOW: RiskLevel = analysis_pb2.RISK_LEVEL_LOW
_MEDIUM: RiskLevel = analysis_pb2.RISK_LEVEL_MEDIUM
_HIGH: RiskLevel = analysis_pb2.RISK_LEVEL_HIGH


@dataclass(frozen=True)
class RiskInputs:
    questions: Sequence[analysis_pb2.QuestionAnalysis]
    job_flags: Sequence[analysis_pb2.Flag]
    accepted_cells: int
    total_cells: int
    pending_cells: int


def _has(question: analysis_pb2.QuestionAnalysis, kind: int) -> bool:
    return any(f.kind == kind for f in question.flags)


def _with(
    questions: Sequence[analysis_pb2.QuestionAnalysis], kind: int
) -> list[analysis_pb2.QuestionAnalysis]:
    return [q for q in questions if _has(q, kind)]


def _named(questions: Sequence[analysis_pb2.QuestionAnalysis]) -> str:
    names = [f"{q.model}/{q.question_id}" for q in questions[:NAMED_IN_REASON]]
    more = len(questions) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def flagged_questions(
    questions: Sequence[analysis_pb2.QuestionAnalysis],
) -> list[analysis_pb2.QuestionAnalysis]:
    """Compared (model, question)s where a region refuses or returns nothing
    while another answers, or where answers diverge."""
    return [q for q in questions if any(_has(q, kind) for kind in _REGIONAL_KINDS)]


_REGIONAL_KINDS = (
    analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL,
    analysis_pb2.FLAG_KIND_REGIONAL_EMPTY,
    analysis_pb2.FLAG_KIND_DIVERGENCE,
)


def _all_refuse(question: analysis_pb2.QuestionAnalysis) -> bool:
    accepted = [r for r in question.regions if r.answer_class in _ACCEPTED]
    return len(accepted) >= 2 and all(
        r.answer_class == analysis_pb2.ANSWER_CLASS_REFUSAL for r in accepted
    )


_ACCEPTED = (
    analysis_pb2.ANSWER_CLASS_SUBSTANTIVE,
    analysis_pb2.ANSWER_CLASS_REFUSAL,
    analysis_pb2.ANSWER_CLASS_EMPTY,
)


def _within_noise(
    questions: Sequence[analysis_pb2.QuestionAnalysis], threshold: float
) -> bool:
    """Some pair is below the divergence threshold but within sample noise."""
    return any(
        p.similarity < threshold and not p.divergent and not p.compared_by_class
        for q in questions
        for p in q.pairs
    )


def assess_risk(
    inputs: RiskInputs, compared: int, thresholds: AnalysisThresholds
) -> tuple[RiskLevel, list[str]]:
    """The highest level any reason reaches, and every reason, worst first."""
    reasons: list[tuple[RiskLevel, str]] = []

    refusing = _with(inputs.questions, analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL)
    high = len(refusing) >= thresholds.high_risk_regional_refusals
    situations = (
        (
            refusing,
            _HIGH if high else _MEDIUM,
            "a region refuses while another answers",
        ),
        (
            _with(inputs.questions, analysis_pb2.FLAG_KIND_REGIONAL_EMPTY),
            _MEDIUM,
            "a region returns an empty answer while another answers",
        ),
        (
            _with(inputs.questions, analysis_pb2.FLAG_KIND_DIVERGENCE),
            _MEDIUM,
            "regions answer differently",
        ),
    )
    for questions, level, what in situations:
        if questions:
            reasons.append(
                (
                    level,
                    f"{what} in {len(questions)} of {compared} compared "
                    f"(model, question): {_named(questions)}",
                )
            )

    flagged = flagged_questions(inputs.questions)
    share = len(flagged) / compared if compared else 0.0
    if share >= thresholds.high_risk_flagged_share and flagged:
        reasons.append(
            (
                _HIGH,
                f"{len(flagged)} of {compared} compared (model, question) are "
                f"flagged ({share:.0%} >= {thresholds.high_risk_flagged_share:.0%})",
            )
        )
    elif share >= thresholds.medium_risk_flagged_share and flagged:
        reasons.append(
            (
                _MEDIUM,
                f"{len(flagged)} of {compared} compared (model, question) are "
                f"flagged ({share:.0%} >= {thresholds.medium_risk_flagged_share:.0%})",
            )
        )

    reasons += _answer_reasons(inputs.questions)
    reasons += _coverage_reasons(inputs, compared, thresholds)
    reasons.extend((_MEDIUM, flag.message) for flag in inputs.job_flags)
    if not any(level > _LOW for level, _ in reasons) and compared:
        agree = (
            f"no region differs beyond sample noise in the {compared} compared "
            "(model, question)"
            if _within_noise(inputs.questions, thresholds.divergence_similarity)
            else f"all {compared} compared (model, question) agree"
        )
        reasons.insert(0, (_LOW, agree))
    # Stable sort: reasons of one level keep the order they were found in.
    reasons.sort(key=lambda item: -item[0])
    level = max(item[0] for item in reasons)
    texts = [text for _, text in reasons]
    if inputs.pending_cells:
        texts.insert(
            0,
            f"provisional: {inputs.pending_cells} of {inputs.total_cells} cells "
            "have no final outcome yet; these numbers will change",
        )
    return level, texts


def _answer_reasons(
    questions: Sequence[analysis_pb2.QuestionAnalysis],
) -> list[tuple[RiskLevel, str]]:
    """(model, question)s where no region answers, or every region refuses."""
    reasons: list[tuple[RiskLevel, str]] = []
    unanswered = [q for q in questions if _has(q, analysis_pb2.FLAG_KIND_NO_ANSWER)]
    if unanswered:
        reasons.append(
            (
                _MEDIUM,
                f"no region answers in {len(unanswered)} (model, question), and "
                f"at least one returns nothing: {_named(unanswered)}; the "
                "comparison is inconclusive there",
            )
        )
    refusing = [q for q in questions if _all_refuse(q)]
    if refusing:
        reasons.append(
            (
                _LOW,
                f"every region refuses in {len(refusing)} (model, question): "
                f"{_named(refusing)}",
            )
        )
    return reasons


def _coverage_reasons(
    inputs: RiskInputs, compared: int, thresholds: AnalysisThresholds
) -> list[tuple[RiskLevel, str]]:
    """Cells without an accepted answer, and a job with nothing to compare."""
    reasons: list[tuple[RiskLevel, str]] = []
    total = inputs.total_cells
    # Pending cells are not missing: the provisional reason covers them.
    missing = total - inputs.accepted_cells - inputs.pending_cells
    missing_share = missing / total if total else 0.0
    if missing and missing_share >= thresholds.medium_risk_missing_share:
        reasons.append(
            (
                _MEDIUM,
                f"{missing} of {total} cells have no accepted answer "
                f"({missing_share:.0%} >= "
                f"{thresholds.medium_risk_missing_share:.0%}); the comparison is "
                "incomplete",
            )
        )
    elif missing:
        reasons.append((_LOW, f"{missing} of {total} cells have no accepted answer"))
    if compared:
        return reasons
    if not total:
        reasons.append((_MEDIUM, "inconclusive: the result has no cells"))
    elif not inputs.accepted_cells and not inputs.pending_cells:
        reasons.append(
            (_MEDIUM, "inconclusive: no cell has an accepted answer to compare")
        )
    else:
        reasons.append(
            (_LOW, "nothing to compare: no question has answers from two regions")
        )
    return reasons
