"""The HTML report: one self-contained file an auditor can open anywhere.

Inline CSS only, no scripts and no external resources; a Content Security
Policy forbids both in case a viewer is lenient. Every value, above all the
answers (untrusted model output), goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from beacon.display_text import shown
from beacon.export_rows import AnalysisIndex, cell_rows, class_name, status_name
from beacon.render import reason_text, unfinished_warning
from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis.build import job_models, job_question_ids, job_regions

logger = logging.getLogger(__name__)

TEMPLATE: Final = "report.html.j2"

_ENV: Final = Environment(
    loader=PackageLoader("beacon", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # Every value shown: a bidi control in untrusted text becomes a visible
    # marker instead of reordering the rest of the line (or the title).
    finalize=lambda value: shown(value) if type(value) is str else value,
)


@dataclass
class SampleView:
    cell_id: str
    sample: int
    status: str
    answer_class: str
    answer: str
    reason: str


@dataclass
class CellView:
    region: str
    answer_class: str
    css: str
    similarity: float | None
    markers: list[str] = field(default_factory=list)
    samples: list[SampleView] = field(default_factory=list)


@dataclass
class RowView:
    model: str
    cells: list[CellView]
    flags: list[str]
    between: float | None
    within: float | None


@dataclass
class QuestionView:
    id: str
    text: str
    group: str
    rows: list[RowView]


def _css(answer_class: str) -> str:
    return "c-" + answer_class.replace(" ", "-")


def _optional(message: Message, name: str) -> float | None:
    return float(getattr(message, name)) if message.HasField(name) else None


def _markers(question: analysis_pb2.QuestionAnalysis | None, region: str) -> list[str]:
    """What the cell's flags say about this region, to show in the cell."""
    if question is None:
        return []
    markers = []
    differs_from = [
        other
        for flag in question.flags
        if flag.kind == analysis_pb2.FLAG_KIND_DIVERGENCE and region in flag.regions
        for other in flag.regions
        if other != region
    ]
    if differs_from:
        markers.append(f"differs from {', '.join(differs_from)}")
    refusing = [
        f
        for f in question.flags
        if f.kind == analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL and region in f.regions
    ]
    answers = {r.region: r.answer_class for r in question.regions}
    if refusing and answers.get(region) == analysis_pb2.ANSWER_CLASS_REFUSAL:
        markers.append("refuses where others answer")
    return markers


def _questions(result: job_pb2.JobResult) -> list[job_pb2.Question]:
    """The spec's questions, then any only the outcomes name: a crafted
    result cannot hide a cell by naming something outside its spec."""
    declared = list(result.spec.questions)
    extra = [
        job_pb2.Question(id=qid, text="(not in the job's spec)")
        for qid in job_question_ids(result)[len(declared) :]
    ]
    return declared + extra


def _matrix(result: job_pb2.JobResult, index: AnalysisIndex) -> list[QuestionView]:
    outcomes: dict[tuple[str, str, str], list[job_pb2.CellOutcome]] = {}
    for outcome in result.outcomes:
        key = (outcome.region, outcome.model, outcome.question_id)
        outcomes.setdefault(key, []).append(outcome)
    regions = job_regions(result)
    views = []
    for question in _questions(result):
        rows = []
        for model in job_models(result):
            analysis = index.question(model, question.id)
            answers = {r.region: r for r in analysis.regions} if analysis else {}
            cells = []
            for region in regions:
                region_answers = answers.get(region)
                label = class_name(
                    region_answers.answer_class
                    if region_answers
                    else analysis_pb2.ANSWER_CLASS_UNSPECIFIED
                )
                cell = CellView(
                    region=region,
                    answer_class=label,
                    css=_css(label),
                    similarity=index.similarity(model, question.id, region),
                    markers=_markers(analysis, region),
                )
                for outcome in sorted(
                    outcomes.get((region, model, question.id), []),
                    key=lambda o: o.sample,
                ):
                    cell.samples.append(
                        SampleView(
                            cell_id=outcome.cell_id,
                            sample=outcome.sample,
                            status=status_name(outcome.status),
                            answer_class=class_name(
                                index.answer_class(outcome.cell_id)
                            ),
                            answer=outcome.answer,
                            reason=reason_text(outcome.status, outcome.reason),
                        )
                    )
                cells.append(cell)
            rows.append(
                RowView(
                    model=model,
                    cells=cells,
                    flags=[f.message for f in analysis.flags] if analysis else [],
                    between=_optional(analysis, "between_region_similarity")
                    if analysis
                    else None,
                    within=_optional(analysis, "within_region_similarity")
                    if analysis
                    else None,
                )
            )
        views.append(QuestionView(question.id, question.text, question.group, rows))
    return views


def render_html(result: job_pb2.JobResult) -> str:
    analysis = result.analysis
    index = AnalysisIndex(analysis)
    risk = analysis_pb2.RiskLevel.Name(analysis.risk).removeprefix("RISK_LEVEL_")
    return _ENV.get_template(TEMPLATE).render(
        result=result,
        job_status=job_pb2.JobStatus.Name(result.status).removeprefix("JOB_STATUS_"),
        analysis=analysis,
        risk=risk.lower(),
        consistency=_optional(analysis, "consistency"),
        within_variation=_optional(analysis, "within_region_variation"),
        between_variation=_optional(analysis, "between_region_variation"),
        samples=max(result.spec.samples, 1),
        regions=job_regions(result),
        matrix=_matrix(result, index),
        offline_answers=sum(row.offline for row in cell_rows(result)),
        unfinished=unfinished_warning(result),
        thresholds=json_format.MessageToDict(
            analysis.thresholds,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        ),
    )
