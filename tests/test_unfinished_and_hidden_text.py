"""Reports of a job that has not finished say so, and untrusted text cannot
reorder or hide what a report shows."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from beacon.export import export
from beacon.render import print_result
from beacon.v1 import job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from tests.support.commands import beacon
from tests.support.html_dom import elements
from tests.support.results import Cell, make_result

US, EU = "us-east", "eu-west"
LLAMA = "llama3.2-1b"
RLO = "\u202e"
WARNING = (
    "WARNING: job job-1 is running, not finished: 1 of 2 cells have no final "
    "outcome yet, so its counts and analysis are provisional"
)


def running() -> job_pb2.JobResult:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell("Paris."),
            (EU, LLAMA, "q1", 0): Cell(status=job_pb2.CELL_STATUS_OPEN),
        },
        regions=(US, EU),
    )
    result.status = job_pb2.JOB_STATUS_RUNNING
    result.analysis.CopyFrom(analyze_result(result, AnalysisThresholds()))
    return result


def printed(result: job_pb2.JobResult) -> str:
    out = io.StringIO()
    print_result(Console(file=out, width=200), result, None)
    return out.getvalue()


def test_show_of_a_running_job_warns_and_a_finished_one_does_not() -> None:
    result = running()
    assert WARNING in printed(result)

    result.status = job_pb2.JOB_STATUS_COMPLETED
    assert "WARNING" not in printed(result)


def test_export_of_a_running_job_warns_on_standard_error(tmp_path: Path) -> None:
    saved = tmp_path / "running.json"
    saved.write_text(export(running(), "json"), encoding="utf-8")

    done = beacon("export", "--input", str(saved), "--format", "csv")

    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == WARNING
    assert "WARNING" not in done.stdout


def test_the_html_report_of_a_running_job_has_a_banner() -> None:
    page = export(running(), "html")

    (banner,) = [e for e in elements(page) if e.attrs.get("id") == "unfinished-note"]
    assert "".join(banner.text) == WARNING


def test_bidi_controls_are_shown_as_markers_in_html_and_terminal() -> None:
    result = running()
    result.spec.title = f"audit {RLO}gnp.exe"
    result.job_id = f"job{RLO}1"
    result.spec.questions[0].text = f"What {RLO}is this?"
    result.outcomes[0].answer = f"Paris {RLO}reversed"
    result.outcomes[1].status = job_pb2.CELL_STATUS_FAILED
    result.outcomes[1].reason = f"router said {RLO}no\x1b[2J"

    page = export(result, "html")
    terminal = printed(result)

    assert RLO not in page and RLO not in terminal and "\x1b" not in terminal
    assert "<title>Beacon job job&lt;U+202E&gt;1</title>" in page
    assert "Paris &lt;U+202E&gt;reversed" in page
    assert "router said <U+202E>no<U+001B>[2J" in terminal


def test_cells_outside_the_spec_are_still_in_the_html_matrix() -> None:
    """A crafted result cannot hide a cell by naming a model or question the
    spec does not list."""
    result = running()
    result.outcomes.add(
        cell_id="extra-cell",
        region=US,
        model="hidden-model",
        question_id="hidden-q",
        status=job_pb2.CELL_STATUS_COMPLETED,
        answer="hidden answer",
    )
    result.analysis.CopyFrom(analyze_result(result, AnalysisThresholds()))

    page = export(result, "html")

    assert 'data-cell-id="extra-cell"' in page
    assert "hidden answer" in page and "(not in the job&#39;s spec)" in page


def test_an_open_cell_reads_as_not_final_yet_never_with_a_blank_reason() -> None:
    result = running()
    result.outcomes.add(
        cell_id="no-reason",
        region=US,
        model=LLAMA,
        question_id="q1",
        sample=1,
        status=job_pb2.CELL_STATUS_FAILED,
    )

    terminal = printed(result)
    page = export(result, "html")

    assert "eu-west / llama3.2-1b / q1: open: not final yet" in terminal
    assert "us-east / llama3.2-1b / q1: FAILED: no reason recorded" in terminal
    assert "open: not final yet" in page
    assert "failed: no reason recorded" in page
    assert ": \n" not in terminal and not terminal.rstrip().endswith(":")
