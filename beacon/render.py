"""Showing jobs to a person: progress, the outcome matrix, a summary."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from beacon.analysis_summary import analysis_lines
from beacon.display_text import shown
from beacon.statuses import FINISHED_JOBS, CellStatus, Classification, JobStatus
from beacon.v1 import job_pb2, receipt_pb2

STATUS_LABEL = {
    job_pb2.CELL_STATUS_OPEN: ("open", "dim"),
    job_pb2.CELL_STATUS_FAILED: ("FAILED", "bold red"),
    job_pb2.CELL_STATUS_REGION_MISMATCH: ("REGION MISMATCH", "bold magenta"),
    job_pb2.CELL_STATUS_MODEL_MISMATCH: ("MODEL MISMATCH", "bold magenta"),
    job_pb2.CELL_STATUS_TIMED_OUT: ("TIMED OUT", "bold red"),
    job_pb2.CELL_STATUS_CANCELLED: ("cancelled", "yellow"),
    job_pb2.CELL_STATUS_NOT_RUN: ("not run", "yellow"),
}
CLASSIFICATION_LABEL = {
    receipt_pb2.CLASSIFICATION_ANSWERED: ("answered", "green"),
    receipt_pb2.CLASSIFICATION_REFUSED: ("refused", "bold yellow"),
    receipt_pb2.CLASSIFICATION_EMPTY: ("empty", "yellow"),
}


def job_status_name(status: JobStatus) -> str:
    return job_pb2.JobStatus.Name(status).removeprefix("JOB_STATUS_").lower()


def unfinished_warning(result: job_pb2.JobResult) -> str | None:
    """A warning for a result read before its job finished, else None."""
    if result.status in FINISHED_JOBS:
        return None
    pending = sum(o.status == job_pb2.CELL_STATUS_OPEN for o in result.outcomes)
    return (
        f"WARNING: job {shown(result.job_id)} is {job_status_name(result.status)}, "
        f"not finished: {pending} of {len(result.outcomes)} cells have no final "
        "outcome yet, so its counts and analysis are provisional"
    )


def outcome_label(
    status: CellStatus, classification: Classification
) -> tuple[str, str]:
    if status == job_pb2.CELL_STATUS_COMPLETED:
        return CLASSIFICATION_LABEL.get(classification, ("completed", "green"))
    return STATUS_LABEL.get(status, ("unknown", "red"))


def reason_text(status: CellStatus, reason: str) -> str:
    """A cell's reason as shown; never blank, as an empty one reads as lost."""
    if reason.strip():
        return reason
    if status == job_pb2.CELL_STATUS_OPEN:
        return "not final yet"
    return "no reason recorded"


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def outcome_tables(result: job_pb2.JobResult) -> list[Table]:
    """One table per region: questions down, models across."""
    cells: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    styles: dict[tuple[str, str, str], str] = {}
    for outcome in result.outcomes:
        label, style = outcome_label(outcome.status, outcome.classification)
        key = (outcome.region, outcome.model, outcome.question_id)
        cells[key].append(label)
        styles.setdefault(key, style)
    tables = []
    for region in result.spec.regions:
        table = Table(title=f"region {shown(region)}", title_justify="left")
        table.add_column("question", style="bold")
        for model in result.spec.models:
            table.add_column(shown(model))
        for question in result.spec.questions:
            row = [shown(question.id)]
            for model in result.spec.models:
                key = (region, model, question.id)
                labels = Counter(cells.get(key, ["missing"]))
                text = ", ".join(
                    label if n == 1 else f"{label} x{n}" for label, n in labels.items()
                )
                row.append(f"[{styles.get(key, 'red')}]{text}[/]")
            table.add_row(*row)
        tables.append(table)
    return tables


def summary_lines(
    result: job_pb2.JobResult, elapsed_seconds: float | None
) -> list[str]:
    c = result.counts
    lines = [
        f"job {result.job_id}: {job_status_name(result.status)}"
        + (" (partial)" if result.partial else ""),
        f"cells {c.total}: completed {c.completed} (answered {c.answered}, "
        f"refused {c.refused}, empty {c.empty}), failed {c.failed}, "
        f"region mismatch {c.region_mismatch}, model mismatch {c.model_mismatch}, "
        f"timed out {c.timed_out}, cancelled {c.cancelled}, not run {c.not_run}",
    ]
    attempts = sum(len(o.attempts) for o in result.outcomes)
    signed = sum(1 for o in result.outcomes if o.receipt.signature)
    lines.append(f"attempts {attempts}, signed receipts behind outcomes {signed}")
    offline = 0
    for outcome in result.outcomes:
        if outcome.receipt.body:
            body = receipt_pb2.ReceiptBody()
            body.ParseFromString(outcome.receipt.body)
            offline += body.router.offline
    if offline:
        lines.append(
            f"NOTE: {offline} answers came from the OFFLINE provider; they are "
            "labelled test output, not model answers"
        )
    if elapsed_seconds is not None:
        lines.append(f"took {elapsed_seconds:.1f}s")
    return lines


MAX_LISTED_PROBLEMS = 20


def problem_lines(result: job_pb2.JobResult) -> list[str]:
    """Why each cell without a completed outcome ended as it did."""
    problems = [o for o in result.outcomes if o.status != job_pb2.CELL_STATUS_COMPLETED]
    lines = [
        f"  {o.region} / {o.model} / {o.question_id}"
        + (f" / sample {o.sample}" if result.spec.samples > 1 else "")
        + f": {outcome_label(o.status, o.classification)[0]}: "
        + reason_text(o.status, o.reason)
        for o in problems[:MAX_LISTED_PROBLEMS]
    ]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(
            f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more "
            "(`beacon show JOB_ID --format json` has every reason)"
        )
    return ["cells without an answer:", *lines] if lines else []


def print_result(
    console: Console, result: job_pb2.JobResult, elapsed: float | None
) -> None:
    for table in outcome_tables(result):
        console.print(table)
    warning = unfinished_warning(result)
    lines = [
        *problem_lines(result),
        *summary_lines(result, elapsed),
        *analysis_lines(result),
        *([warning] if warning else []),
    ]
    for line in lines:
        console.print(shown(line), markup=False, highlight=False)
