"""The analysis of one (model, question): every region's answers side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis.classes import (
    ACCEPTED,
    PENDING,
    REFUSAL,
    SUBSTANTIVE,
    answer_class,
    majority_class,
)
from coordinator.analysis.similarity import mean, mean_between, mean_within, word_counts
from coordinator.analysis.thresholds import AnalysisThresholds

DIGITS = 4


@dataclass(frozen=True)
class QuestionCells:
    """The outcomes of one model and question, by region, in job order."""

    model: str
    question_id: str
    regions: Sequence[str]
    samples: int
    outcomes: Mapping[str, Sequence[job_pb2.CellOutcome]]


def _round(value: float) -> float:
    return round(value, DIGITS)


def _region_answers(
    region: str, outcomes: Sequence[job_pb2.CellOutcome]
) -> tuple[analysis_pb2.RegionAnswers, list[Counter[str]]]:
    answers = analysis_pb2.RegionAnswers(region=region)
    texts: list[Counter[str]] = []
    lengths: list[float] = []
    for outcome in sorted(outcomes, key=lambda o: o.sample):
        cls = answer_class(outcome)
        accepted = cls in ACCEPTED
        answers.samples.add(
            cell_id=outcome.cell_id,
            sample=outcome.sample,
            answer_class=cls,
            length_chars=len(outcome.answer) if accepted else 0,
        )
        if accepted:
            texts.append(word_counts(outcome.answer))
            lengths.append(float(len(outcome.answer)))
    answers.answer_class = majority_class(s.answer_class for s in answers.samples)
    answers.mean_length_chars = _round(mean(lengths) or 0.0)
    within = mean_within(texts)
    if within is not None:
        answers.within_similarity = _round(within)
    return answers, texts


def _length_ratio(a: float, b: float) -> float:
    if max(a, b) == 0:
        return 1.0
    return min(a, b) / max(a, b)


def _diverges(
    similarity: float,
    a: analysis_pb2.RegionAnswers,
    b: analysis_pb2.RegionAnswers,
    thresholds: AnalysisThresholds,
) -> bool:
    if similarity >= thresholds.divergence_similarity:
        return False
    # Samples that vary this much among themselves say nothing about regions.
    if a.HasField("within_similarity") and b.HasField("within_similarity"):
        baseline = min(a.within_similarity, b.within_similarity)
        return similarity < baseline - thresholds.noise_margin
    return True


def _flag(
    kind: analysis_pb2.FlagKind.ValueType,
    cells: QuestionCells,
    regions: Sequence[str],
    message: str,
) -> analysis_pb2.Flag:
    return analysis_pb2.Flag(
        kind=kind,
        model=cells.model,
        question_id=cells.question_id,
        regions=regions,
        message=message,
    )


def _missing_flags(
    cells: QuestionCells, regions: Sequence[analysis_pb2.RegionAnswers]
) -> list[analysis_pb2.Flag]:
    flags = []
    for answers in regions:
        accepted = sum(s.answer_class in ACCEPTED for s in answers.samples)
        if accepted == 0:
            why = (
                "has no final outcome yet"
                if answers.answer_class == PENDING
                else "has no accepted answer (technical failure)"
            )
            flags.append(
                _flag(
                    analysis_pb2.FLAG_KIND_MISSING_REGION,
                    cells,
                    [answers.region],
                    f"{answers.region} {why}",
                )
            )
        elif accepted < cells.samples:
            flags.append(
                _flag(
                    analysis_pb2.FLAG_KIND_MISSING_SAMPLE,
                    cells,
                    [answers.region],
                    f"{answers.region} has {accepted} of {cells.samples} samples",
                )
            )
    return flags


def _refusal_flag(
    cells: QuestionCells, regions: Sequence[analysis_pb2.RegionAnswers]
) -> analysis_pb2.Flag | None:
    refusing = [r.region for r in regions if r.answer_class == REFUSAL]
    answering = [r.region for r in regions if r.answer_class == SUBSTANTIVE]
    if not refusing or not answering:
        return None
    return analysis_pb2.Flag(
        kind=analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL,
        model=cells.model,
        question_id=cells.question_id,
        regions=[r.region for r in regions if r.region in {*refusing, *answering}],
        message=f"{', '.join(refusing)} refuses while {', '.join(answering)} answers",
    )


def analyze_question(
    cells: QuestionCells, thresholds: AnalysisThresholds
) -> analysis_pb2.QuestionAnalysis:
    analysis = analysis_pb2.QuestionAnalysis(
        model=cells.model, question_id=cells.question_id
    )
    texts: dict[str, list[Counter[str]]] = {}
    for region in cells.regions:
        answers, texts[region] = _region_answers(region, cells.outcomes.get(region, ()))
        analysis.regions.append(answers)
    flags = _missing_flags(cells, analysis.regions)
    refusal = _refusal_flag(cells, analysis.regions)
    if refusal is not None:
        flags.insert(0, refusal)

    # Between regions: every pair of regions that both have answers.
    for a, b in combinations(analysis.regions, 2):
        similarity = mean_between(texts[a.region], texts[b.region])
        if similarity is None:
            continue
        pair = analysis.pairs.add(
            region_a=a.region,
            region_b=b.region,
            similarity=_round(similarity),
            length_ratio=_round(
                _length_ratio(a.mean_length_chars, b.mean_length_chars)
            ),
        )
        pair.divergent = _diverges(pair.similarity, a, b, thresholds)
        # A refusal next to an answer is already flagged as such.
        if pair.divergent and {a.answer_class, b.answer_class} != {
            REFUSAL,
            SUBSTANTIVE,
        }:
            flags.append(
                _flag(
                    analysis_pb2.FLAG_KIND_DIVERGENCE,
                    cells,
                    [a.region, b.region],
                    f"{a.region} and {b.region} answer differently (similarity "
                    f"{pair.similarity:.2f} < {thresholds.divergence_similarity:.2f})",
                )
            )
    between = mean(p.similarity for p in analysis.pairs)
    if between is not None:
        analysis.between_region_similarity = _round(between)
    within = mean(
        r.within_similarity for r in analysis.regions if r.HasField("within_similarity")
    )
    if within is not None:
        analysis.within_region_similarity = _round(within)
    analysis.flags.extend(flags)
    return analysis
