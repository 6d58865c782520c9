"""`beacon diff`: what changed between two runs of the same questions."""

from __future__ import annotations

from beacon.diff import diff_lines, diff_results
from tests.support.results import Cell, failed, make_result, refused

US, EU, AP = "us-east", "eu-west", "asia-pacific"
LLAMA = "llama3.2-1b"
PARIS = "The capital of France is Paris."


def test_new_refusals_changed_answers_and_cells_in_one_run_only() -> None:
    before = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(PARIS),
            (EU, LLAMA, "q1", 0): Cell(PARIS),
            (US, LLAMA, "q2", 0): refused(),
            (EU, LLAMA, "q2", 0): Cell("Four."),
        },
        regions=(US, EU),
        questions=("q1", "q2"),
        job_id="job-a",
    )
    after = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(PARIS),
            (EU, LLAMA, "q1", 0): refused(),
            (US, LLAMA, "q2", 0): Cell("2 + 2 = 4."),
            (EU, LLAMA, "q2", 0): Cell("Four, of course."),
            (AP, LLAMA, "q1", 0): failed(),
            (AP, LLAMA, "q2", 0): Cell("4"),
        },
        regions=(US, EU, AP),
        questions=("q1", "q2"),
        job_id="job-b",
    )
    after.spec.questions[1].text = "What is two plus two?"

    diff = diff_results(before, after)

    assert diff.in_both == 4
    assert [
        (c.region, c.question_id, c.before, c.after) for c in diff.new_refusals
    ] == [(EU, "q1", "substantive", "refusal")]
    assert [(c.region, c.question_id) for c in diff.refusals_gone] == [(US, "q2")]
    (changed,) = diff.changed_answers
    assert (changed.region, changed.question_id) == (EU, "q2")
    assert changed.similarity is not None and 0 <= changed.similarity < 1
    assert diff.only_in_a == []
    assert [(c.region, c.question_id, c.after) for c in diff.only_in_b] == [
        (AP, "q1", "technical failure"),
        (AP, "q2", "substantive"),
    ]
    assert diff.question_text_changed == ["q2"]
    lines = diff_lines(diff)
    assert (
        lines[0] == "job-a -> job-b: 4 cells in both, 0 only in job-a, 2 only in job-b"
    )
    assert "new refusals (1)" in lines
    assert f"  {EU} {LLAMA} q1 #0: substantive -> refusal" in lines


def test_identical_runs_show_no_change() -> None:
    cells = {(US, LLAMA, "q1", 0): Cell(PARIS), (EU, LLAMA, "q1", 0): failed()}
    a = make_result(cells, regions=(US, EU), job_id="a")
    b = make_result(cells, regions=(US, EU), job_id="b")

    diff = diff_results(a, b)

    assert diff.in_both == 2
    assert all(not changes for _, changes in diff.sections)
    assert diff.question_text_changed == []
