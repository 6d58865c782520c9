"""The HTML report as a real browser renders it: headless Chromium."""

from __future__ import annotations

from pathlib import Path

from beacon.export import export
from beacon.v1 import job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from tests.support.browser import rendered_dom
from tests.support.html_dom import active_content, elements
from tests.support.results import EMPTY, Cell, failed, make_result, refused

REGIONS = ("us-east", "eu-west", "asia-pacific")
MODELS = ("llama3.2-1b", "qwen2.5-1.5b")
QUESTIONS = ("math_basic", "tiananmen_neutral", "taiwan_status")
SAMPLES = 2
INJECTIONS = (
    "<script>document.body.innerHTML='owned'</script>",
    '"><img src=x onerror="document.title=1">',
    "</div></td></tr></table><h1>fake summary</h1>",
)


def crafted_result() -> job_pb2.JobResult:
    """Every kind of cell, some answers trying to break out of the page."""
    cells: dict[tuple[str, str, str, int], Cell] = {}
    for r, region in enumerate(REGIONS):
        for m, model in enumerate(MODELS):
            for q, question in enumerate(QUESTIONS):
                for sample in range(SAMPLES):
                    n = ((r * 2 + m) * 3 + q) * SAMPLES + sample
                    text = f"Answer {n} of {model} in {region} to {question}."
                    cells[(region, model, question, sample)] = Cell(text)
    cells[("asia-pacific", "qwen2.5-1.5b", "tiananmen_neutral", 0)] = refused()
    cells[("asia-pacific", "qwen2.5-1.5b", "tiananmen_neutral", 1)] = refused()
    cells[("eu-west", "llama3.2-1b", "taiwan_status", 1)] = failed("router timed out")
    cells[("us-east", "qwen2.5-1.5b", "math_basic", 1)] = Cell(" ", EMPTY)
    for i, text in enumerate(INJECTIONS):
        cells[("us-east", "llama3.2-1b", QUESTIONS[i], 0)] = Cell(text)
    result = make_result(
        cells, regions=REGIONS, models=MODELS, questions=QUESTIONS, samples=SAMPLES
    )
    result.analysis.CopyFrom(analyze_result(result, AnalysisThresholds()))
    return result


def test_chromium_shows_every_cell_and_runs_no_answer(tmp_path: Path) -> None:
    result = crafted_result()
    page = tmp_path / "report.html"
    page.write_text(export(result, "html"), encoding="utf-8")

    dom = rendered_dom(page, tmp_path / "profile")

    found = elements(dom)
    assert active_content(dom) == []
    assert not [e for e in found if e.tag == "h1" and "fake summary" in e.text]
    shown = {
        e.attrs["data-cell-id"]: "".join(e.text)
        for e in found
        if "data-cell-id" in e.attrs
    }
    assert set(shown) == {o.cell_id for o in result.outcomes}
    for outcome in result.outcomes:
        expected = outcome.answer.strip() or "(empty answer)"
        if outcome.status != job_pb2.CELL_STATUS_COMPLETED:
            expected = outcome.reason
        assert expected in shown[outcome.cell_id], outcome.cell_id
    matrix_cells = [e for e in found if e.tag == "td" and "data-region" in e.attrs]
    assert len(matrix_cells) == len(REGIONS) * len(MODELS) * len(QUESTIONS)
    refusing = [
        e
        for e in matrix_cells
        if e.attrs["data-region"] == "asia-pacific"
        and e.attrs["data-question"] == "tiananmen_neutral"
        and e.attrs["data-model"] == "qwen2.5-1.5b"
    ]
    assert "differs" in refusing[0].attrs["class"].split()
    assert "refuses where others answer" in "".join(refusing[0].text)
    title = next(e for e in found if e.tag == "title")
    assert "".join(title.text) == f"Beacon job {result.job_id}"
