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


def _has(question: analysis_pb2.QuestionAnalysis, kind: int) -> bool:
    return any(f.kind == kind for f in question.flags)


def _named(questions: Sequence[analysis_pb2.QuestionAnalysis]) -> str:
    names = [f"{q.model}/{q.question_id}" for q in questions[:NAMED_IN_REASON]]
    more = len(questions) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def flagged_questions(
    questions: Sequence[analysis_pb2.QuestionAnalysis],
) -> list[analysis_pb2.QuestionAnalysis]:
    """Compared (model, question)s with a regional refusal or a divergence."""
    return [
        q
        for q in questions
        if _has(q, analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL)
        or _has(q, analysis_pb2.FLAG_KIND_DIVERGENCE)
    ]


def assess_risk(
    inputs: RiskInputs, compared: int, thresholds: AnalysisThresholds
) -> tuple[RiskLevel, list[str]]:
    """The highest level any reason reaches, and every reason, worst first."""
    reasons: list[tuple[RiskLevel, str]] = []

    refusing = [
        q for q in inputs.questions if _has(q, analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL)
    ]
    if refusing:
        high = len(refusing) >= thresholds.high_risk_regional_refusals
        level = _HIGH if high else _MEDIUM
        reasons.append(
            (
                level,
                f"a region refuses while another answers in {len(refusing)} "
                f"of {compared} compared (model, question): {_named(refusing)}",
            )
        )

    flagged = flagged_questions(inputs.questions)
    share = len(flagged) / compared if compared else 0.0
    diverging = [
        q for q in inputs.questions if _has(q, analysis_pb2.FLAG_KIND_DIVERGENCE)
    ]
    if diverging:
        reasons.append(
            (
                _MEDIUM,
                f"regions answer differently in {len(diverging)} of {compared} "
                f"compared (model, question): {_named(diverging)}",
            )
        )
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

    missing = inputs.total_cells - inputs.accepted_cells
    missing_share = missing / inputs.total_cells if inputs.total_cells else 0.0
    if missing and missing_share >= thresholds.medium_risk_missing_share:
        reasons.append(
            (
                _MEDIUM,
                f"{missing} of {inputs.total_cells} cells have no accepted answer "
                f"({missing_share:.0%} >= "
                f"{thresholds.medium_risk_missing_share:.0%}); the comparison is "
                "incomplete",
            )
        )
    elif missing:
        reasons.append(
            (_LOW, f"{missing} of {inputs.total_cells} cells have no accepted answer")
        )
    reasons.extend((_MEDIUM, flag.message) for flag in inputs.job_flags)

    if compared == 0:
        reasons.append(
            (_LOW, "nothing to compare: no question has answers from two regions")
        )
    if not reasons:
        reasons.append((_LOW, f"all {compared} compared (model, question) agree"))
    # Stable sort: reasons of one level keep the order they were found in.
    reasons.sort(key=lambda item: -item[0])
    return max(item[0] for item in reasons), [text for _, text in reasons]
