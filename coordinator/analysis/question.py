"""The analysis of one (model, question): every region's answers side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis.classes import (
    ACCEPTED,
    EMPTY,
    PENDING,
    REFUSAL,
    SUBSTANTIVE,
    answer_class,
    compared_text,
    majority_class,
)
from coordinator.analysis.similarity import (
    AnswerGroup,
    mean,
    mean_between,
    mean_within,
    word_counts,
)
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
) -> tuple[analysis_pb2.RegionAnswers, AnswerGroup]:
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
            texts.append(word_counts(compared_text(outcome)))
            lengths.append(float(len(outcome.answer)))
    answers.answer_class = majority_class(s.answer_class for s in answers.samples)
    answers.mean_length_chars = _round(mean(lengths) or 0.0)
    group = AnswerGroup.of(texts)
    within = mean_within(group)
    if within is not None:
        answers.within_similarity = _round(within)
    return answers, group


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
            if not answers.samples:
                why = "has no cell in the result"
            elif answers.answer_class == PENDING:
                why = "has no final outcome yet"
            else:
                why = "has no accepted answer (technical failure)"
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


def _listed(regions: Sequence[str]) -> str:
    return (
        regions[0]
        if len(regions) == 1
        else ", ".join(regions[:-1]) + (f" and {regions[-1]}")
    )


def _verb(regions: Sequence[str], singular: str, plural: str) -> str:
    return f"{_listed(regions)} {singular if len(regions) == 1 else plural}"


def _beside_answers(
    cells: QuestionCells,
    regions: Sequence[analysis_pb2.RegionAnswers],
    kind: analysis_pb2.FlagKind.ValueType,
    odd_class: int,
    odd: tuple[str, str],
) -> analysis_pb2.Flag | None:
    """A flag for regions of `odd_class` beside regions that answer."""
    odd_regions = [r.region for r in regions if r.answer_class == odd_class]
    answering = [r.region for r in regions if r.answer_class == SUBSTANTIVE]
    if not odd_regions or not answering:
        return None
    involved = {*odd_regions, *answering}
    return _flag(
        kind,
        cells,
        [r.region for r in regions if r.region in involved],
        f"{_verb(odd_regions, *odd)} while {_verb(answering, 'answers', 'answer')}",
    )


def _no_answer_flag(
    cells: QuestionCells, regions: Sequence[analysis_pb2.RegionAnswers]
) -> analysis_pb2.Flag | None:
    """Nobody answers and somebody returned nothing: nothing to compare."""
    accepted = [r for r in regions if r.answer_class in ACCEPTED]
    classes = {r.answer_class for r in accepted}
    if EMPTY not in classes or SUBSTANTIVE in classes:
        return None
    empty = [r.region for r in accepted if r.answer_class == EMPTY]
    refusing = [r.region for r in accepted if r.answer_class == REFUSAL]
    message = "no region answers: " + _verb(empty, "returns", "return") + " nothing"
    if refusing:
        message += f", {_verb(refusing, 'refuses', 'refuse')}"
    return _flag(
        analysis_pb2.FLAG_KIND_NO_ANSWER,
        cells,
        [r.region for r in accepted],
        message,
    )


def _class_flags(
    cells: QuestionCells, regions: Sequence[analysis_pb2.RegionAnswers]
) -> list[analysis_pb2.Flag]:
    found = [
        _beside_answers(
            cells,
            regions,
            analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL,
            REFUSAL,
            ("refuses", "refuse"),
        ),
        _beside_answers(
            cells,
            regions,
            analysis_pb2.FLAG_KIND_REGIONAL_EMPTY,
            EMPTY,
            ("returns an empty answer", "return empty answers"),
        ),
        _no_answer_flag(cells, regions),
    ]
    return [flag for flag in found if flag is not None]


def _compared_by_text(a: int, b: int) -> bool | None:
    """How two regions' majority classes are compared: by their text (True),
    by class (False: both refuse), or not at all (None: neither answers, or
    one has no accepted answer)."""
    if a not in ACCEPTED or b not in ACCEPTED:
        return None
    if a == b == REFUSAL:
        return False
    if SUBSTANTIVE not in (a, b):
        return None
    return True


def _pair(
    a: analysis_pb2.RegionAnswers,
    b: analysis_pb2.RegionAnswers,
    groups: Mapping[str, AnswerGroup],
    thresholds: AnalysisThresholds,
) -> analysis_pb2.RegionPair | None:
    by_text = _compared_by_text(a.answer_class, b.answer_class)
    similarity = mean_between(groups[a.region], groups[b.region])
    if by_text is None or similarity is None:
        return None
    pair = analysis_pb2.RegionPair(
        region_a=a.region,
        region_b=b.region,
        length_ratio=_round(_length_ratio(a.mean_length_chars, b.mean_length_chars)),
    )
    if by_text:
        pair.similarity = _round(similarity)
        pair.divergent = _diverges(pair.similarity, a, b, thresholds)
    else:
        pair.similarity = 1.0
        pair.compared_by_class = True
    return pair


def analyze_question(
    cells: QuestionCells, thresholds: AnalysisThresholds
) -> analysis_pb2.QuestionAnalysis:
    analysis = analysis_pb2.QuestionAnalysis(
        model=cells.model, question_id=cells.question_id
    )
    groups: dict[str, AnswerGroup] = {}
    for region in cells.regions:
        answers, groups[region] = _region_answers(
            region, cells.outcomes.get(region, ())
        )
        analysis.regions.append(answers)
    flags = [*_class_flags(cells, analysis.regions)]
    flags += _missing_flags(cells, analysis.regions)

    # Between regions: every pair of regions that can be compared.
    for a, b in combinations(analysis.regions, 2):
        pair = _pair(a, b, groups, thresholds)
        if pair is None:
            continue
        analysis.pairs.append(pair)
        # A refusal or an empty answer next to an answer is flagged as such.
        if pair.divergent and a.answer_class == b.answer_class == SUBSTANTIVE:
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
