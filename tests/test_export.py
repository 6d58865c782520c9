"""Exports of a JobResult: JSON for machines and verifiers, JSON Lines and CSV
for spreadsheets, HTML for people; untrusted answers stay text in all of them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from beacon.export import export
from beacon.v1 import job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from tests.support.commands import beacon
from tests.support.html_dom import active_content, elements
from tests.support.results import EMPTY, Cell, failed, make_result, refused

US, EU, AP = "us-east", "eu-west", "asia-pacific"
LLAMA = "llama3.2-1b"
SCRIPT = "<script>alert('answer')</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://127.0.0.1/","click")'


def analysed(result: job_pb2.JobResult) -> job_pb2.JobResult:
    result.analysis.CopyFrom(analyze_result(result, AnalysisThresholds()))
    return result


@pytest.fixture
def result() -> job_pb2.JobResult:
    return analysed(
        make_result(
            {
                (US, LLAMA, "q1", 0): Cell(f"Paris is the capital. {SCRIPT}"),
                (EU, LLAMA, "q1", 0): Cell(f"The capital is Paris {IMG}"),
                (AP, LLAMA, "q1", 0): refused(),
                (US, LLAMA, "q2", 0): Cell(FORMULA),
                (EU, LLAMA, "q2", 0): Cell("   ", EMPTY),
                (AP, LLAMA, "q2", 0): failed("router unavailable <b>bold</b>"),
            },
            questions=("q1", "q2"),
        )
    )


def test_json_is_the_whole_result_in_the_protobuf_mapping(
    result: job_pb2.JobResult,
) -> None:
    text = export(result, "json")

    parsed = json_format.Parse(text, job_pb2.JobResult())
    assert parsed == result
    assert json.loads(text)["analysis"]["risk"] == "RISK_LEVEL_HIGH"


def test_jsonl_has_one_record_per_cell_with_its_flags(
    result: job_pb2.JobResult,
) -> None:
    records = [json.loads(line) for line in export(result, "jsonl").splitlines()]

    assert [(r["region"], r["question_id"]) for r in records] == [
        (o.region, o.question_id) for o in result.outcomes
    ]
    by_cell = {(r["region"], r["question_id"]): r for r in records}
    assert by_cell[(AP, "q1")]["answer_class"] == "refusal"
    assert by_cell[(AP, "q1")]["flags"] == [f"{AP} refuses while {US} and {EU} answer"]
    assert by_cell[(AP, "q2")]["answer_class"] == "technical failure"
    assert by_cell[(AP, "q2")]["reason"] == "router unavailable <b>bold</b>"
    assert by_cell[(EU, "q2")]["answer_class"] == "empty"
    assert by_cell[(US, "q1")]["answer"].endswith(SCRIPT)
    assert by_cell[(US, "q1")]["question"] == "Text of q1?"


def test_csv_has_a_row_per_cell_and_never_starts_a_formula(
    result: job_pb2.JobResult,
) -> None:
    rows = list(csv.DictReader(io.StringIO(export(result, "csv"))))

    assert len(rows) == len(result.outcomes)
    formula = next(r for r in rows if r["region"] == US and r["question_id"] == "q2")
    assert formula["answer"] == "'" + FORMULA
    refusal = next(r for r in rows if r["region"] == AP and r["question_id"] == "q1")
    assert refusal["answer_class"] == "refusal"
    assert refusal["flags"] == f"{AP} refuses while {US} and {EU} answer"


INJECTED = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"], ids=["cr", "crlf", "lf"])
@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t"])
def test_csv_keeps_a_multiline_answer_in_one_cell_with_no_formula_line(
    newline: str, start: str
) -> None:
    """A line break inside an answer never starts a record, nor a formula line."""
    answer = f"Here is the answer.{newline}{start}1+1{newline}{INJECTED}"
    result = analysed(make_result({(US, LLAMA, "q1", 0): Cell(answer)}, regions=(US,)))

    text = export(result, "csv")

    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 2
    cell = rows[1][[f for f in rows[0]].index("answer")]
    assert cell == (f"Here is the answer.{newline}'{start}1+1{newline}'{INJECTED}")
    for line in cell.splitlines():
        assert not line.startswith(("=", "+", "-", "@", "\t"))


@pytest.mark.parametrize(
    "answer",
    ["foo;=1+1", "foo\t=1+1", "a,b", 'say "hi"'],
    ids=["semicolon", "tab", "comma", "quote"],
)
def test_csv_quotes_every_field(answer: str) -> None:
    """A `;`-locale spreadsheet never splits an answer into a formula cell."""
    result = analysed(make_result({(US, LLAMA, "q1", 0): Cell(answer)}, regions=(US,)))

    _, row = export(result, "csv").splitlines()[:2]

    assert row.startswith('"') and row.endswith('"')
    assert f'"{answer.replace(chr(34), 2 * chr(34))}"' in row


def test_html_escapes_every_answer_and_loads_nothing(
    result: job_pb2.JobResult,
) -> None:
    result.spec.questions[0].text = "What is <i>the</i> capital?"
    result.spec.title = "</title><script>alert('title')</script>"

    page = export(result, "html")

    assert active_content(page) == []
    assert "<script" not in page and "<img" not in page and "<i>the" not in page
    assert "&lt;script&gt;alert(&#39;answer&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "default-src 'none'; style-src 'unsafe-inline'" in page
    texts = " ".join(t for e in elements(page) for t in e.text)
    assert SCRIPT in texts and IMG in texts and "<b>bold</b>" in texts


def test_html_shows_summary_flags_and_every_cell(result: job_pb2.JobResult) -> None:
    page = export(result, "html")

    assert 'id="risk">HIGH<' in page
    (reasons,) = [e for e in elements(page) if e.attrs.get("id") == "risk-reasons"]
    assert all(
        reason in "".join(reasons.text) for reason in result.analysis.risk_reasons
    )
    for outcome in result.outcomes:
        assert f'data-cell-id="{outcome.cell_id}"' in page
    assert "refuses where others answer" in page


def test_unknown_format_is_refused(result: job_pb2.JobResult) -> None:
    with pytest.raises(ValueError, match="json, jsonl, csv, html"):
        export(result, "pdf")


def test_a_saved_result_exports_without_a_coordinator(
    result: job_pb2.JobResult, tmp_path: Path
) -> None:
    saved = tmp_path / "result.json"
    saved.write_text(export(result, "json"), encoding="utf-8")

    done = beacon("export", "--input", str(saved), "--format", "jsonl")

    assert done.returncode == 0, done.stderr
    assert done.stdout == export(result, "jsonl")


@pytest.mark.parametrize(
    "content",
    [
        None,
        "{not json",
        '{"outcomes": 3}',
        "[]",
        "{}",
        '{"jobId": "j", "spec": {"regions": ["us-east"]}}',
        '{"spec": {"regions": ["us-east"]}, "outcomes": [{"cellId": "c"}]}',
    ],
    ids=["missing", "bad", "shape", "array", "empty", "no-outcomes", "no-job-id"],
)
def test_an_unreadable_saved_result_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None
) -> None:
    saved = tmp_path / "result.json"
    if content is not None:
        saved.write_text(content, encoding="utf-8")

    done = beacon("export", "--input", str(saved))

    assert done.returncode == 2
    assert done.stderr.startswith(
        f"beacon export: cannot read a JobResult from {saved}"
    )
    assert len(done.stderr.strip().splitlines()) == 1
