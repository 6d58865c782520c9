"""The analysis of a whole JobResult, from its accepted outcomes only."""

from __future__ import annotations

import logging
from collections import defaultdict

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis.classes import ACCEPTED, PENDING, answer_class
from coordinator.analysis.question import QuestionCells, analyze_question
from coordinator.analysis.risk import RiskInputs, assess_risk, flagged_questions
from coordinator.analysis.similarity import METHOD, mean
from coordinator.analysis.stats import region_model_stats
from coordinator.analysis.thresholds import AnalysisThresholds

logger = logging.getLogger(__name__)

DIGITS = 4


def _ordered(declared: list[str], seen: set[str]) -> list[str]:
    """The job's order, then anything only the outcomes name, sorted."""
    return [*declared, *sorted(seen - set(declared))]


def job_regions(result: job_pb2.JobResult) -> list[str]:
    return _ordered(list(result.spec.regions), {o.region for o in result.outcomes})


def job_models(result: job_pb2.JobResult) -> list[str]:
    return _ordered(list(result.spec.models), {o.model for o in result.outcomes})


def job_question_ids(result: job_pb2.JobResult) -> list[str]:
    return _ordered(
        [q.id for q in result.spec.questions],
        {o.question_id for o in result.outcomes},
    )


def _job_flags(
    result: job_pb2.JobResult, regions: list[str], models: list[str]
) -> list[analysis_pb2.Flag]:
    accepted = [o for o in result.outcomes if answer_class(o) in ACCEPTED]
    finished = all(o.status != job_pb2.CELL_STATUS_OPEN for o in result.outcomes)
    if not result.outcomes or not finished:
        return []
    models_answered = {o.model for o in accepted}
    regions_answered = {o.region for o in accepted}
    flags = [
        analysis_pb2.Flag(
            kind=analysis_pb2.FLAG_KIND_MODEL_FAILED,
            model=model,
            message=f"model {model} has no accepted answer in any region",
        )
        for model in models
        if model not in models_answered
    ]
    flags += [
        analysis_pb2.Flag(
            kind=analysis_pb2.FLAG_KIND_REGION_FAILED,
            regions=[region],
            message=f"region {region} has no accepted answer for any model",
        )
        for region in regions
        if region not in regions_answered
    ]
    return flags


def analyze_result(
    result: job_pb2.JobResult, thresholds: AnalysisThresholds
) -> analysis_pb2.JobAnalysis:
    """Compare regions per (model, question); identical inputs, identical output."""
    grouped: dict[tuple[str, str], dict[str, list[job_pb2.CellOutcome]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for outcome in result.outcomes:
        grouped[(outcome.model, outcome.question_id)][outcome.region].append(outcome)
    regions = job_regions(result)
    models = job_models(result)
    question_ids = job_question_ids(result)
    samples = max(result.spec.samples, 1)

    analysis = analysis_pb2.JobAnalysis(
        thresholds=thresholds.to_proto(),
        similarity_method=METHOD,
        total_cells=len(result.outcomes),
        accepted_cells=sum(answer_class(o) in ACCEPTED for o in result.outcomes),
        pending_cells=sum(answer_class(o) == PENDING for o in result.outcomes),
    )
    for model in models:
        for question_id in question_ids:
            cells = QuestionCells(
                model=model,
                question_id=question_id,
                regions=regions,
                samples=samples,
                outcomes=grouped.get((model, question_id), {}),
            )
            analysis.questions.append(analyze_question(cells, thresholds))
    analysis.region_models.extend(
        region_model_stats(analysis.questions, regions, models)
    )
    analysis.flags.extend(_job_flags(result, regions, models))

    compared = [
        q for q in analysis.questions if q.HasField("between_region_similarity")
    ]
    analysis.compared_questions = len(compared)
    consistency = mean(q.between_region_similarity for q in compared)
    if consistency is not None:
        analysis.consistency = round(consistency, DIGITS)
        analysis.between_region_variation = round(1 - consistency, DIGITS)
    within = mean(
        q.within_region_similarity
        for q in analysis.questions
        if q.HasField("within_region_similarity")
    )
    if within is not None:
        analysis.within_region_variation = round(1 - within, DIGITS)
    if compared:
        flagged = flagged_questions(analysis.questions)
        analysis.divergence = round(len(flagged) / len(compared), DIGITS)
    level, reasons = assess_risk(
        RiskInputs(
            analysis.questions,
            analysis.flags,
            analysis.accepted_cells,
            analysis.total_cells,
            analysis.pending_cells,
        ),
        len(compared),
        thresholds,
    )
    analysis.risk = level
    analysis.risk_reasons.extend(reasons)
    logger.debug(
        "analysed job_id=%s questions=%d risk=%s",
        result.job_id,
        len(analysis.questions),
        analysis_pb2.RiskLevel.Name(level),
    )
    return analysis
