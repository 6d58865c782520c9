"""`beacon diff`: what changed between two runs of the same questions."""

from __future__ import annotations

from beacon.diff import diff_lines, diff_results
from beacon.v1 import job_pb2
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
    assert diff.question_text_changed == []
    lines = diff_lines(diff)
    assert lines[0] == (
        "A (job-a) -> B (job-b): 4 cells in both, 0 only in A, 2 only in B"
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


def test_a_refusal_that_became_pending_or_cancelled_is_not_a_refusal_gone() -> None:
    finished = make_result(
        {(US, LLAMA, "q1", 0): refused(), (EU, LLAMA, "q1", 0): refused()},
        regions=(US, EU),
        job_id="a",
    )
    unfinished = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(status=job_pb2.CELL_STATUS_OPEN),
            (EU, LLAMA, "q1", 0): Cell(status=job_pb2.CELL_STATUS_CANCELLED),
        },
        regions=(US, EU),
        job_id="b",
    )

    diff = diff_results(finished, unfinished)

    assert diff.refusals_gone == [] and diff.new_refusals == []
    assert [(c.region, c.before, c.after) for c in diff.without_answer] == [
        (US, "refusal", "pending"),
        (EU, "refusal", "technical failure"),
    ]
    assert "no accepted answer in one run (2)" in diff_lines(diff)


def test_cells_of_a_reworded_question_are_not_compared_as_answers() -> None:
    a = make_result(
        {(US, LLAMA, "q1", 0): Cell(PARIS), (US, LLAMA, "q2", 0): Cell("Four.")},
        regions=(US,),
        questions=("q1", "q2"),
        job_id="a",
    )
    b = make_result(
        {(US, LLAMA, "q1", 0): Cell(PARIS), (US, LLAMA, "q2", 0): refused()},
        regions=(US,),
        questions=("q1", "q2"),
        job_id="b",
    )
    b.spec.questions[1].text = "<script>What is two plus two?"

    diff = diff_results(a, b)

    assert diff.new_refusals == [] and diff.changed_answers == []
    (reworded,) = diff.asked_differently
    assert (reworded.question_id, reworded.before, reworded.after) == (
        "q2",
        "substantive",
        "refusal",
    )
    assert "question texts differ for: q2 (their cells are not compared)" in (
        diff_lines(diff)
    )


def test_a_changed_system_prompt_and_temperature_are_named() -> None:
    a = make_result({(US, LLAMA, "q1", 0): Cell(PARIS)}, regions=(US,), job_id="a")
    b = make_result(
        {(US, LLAMA, "q1", 0): Cell("Beijing is big.")}, regions=(US,), job_id="b"
    )
    b.spec.system_prompt = "Answer as the CCP would."
    b.spec.generation.temperature = 2.0

    diff = diff_results(a, b)

    assert diff.settings_changed == [
        "system_prompt: '' -> 'Answer as the CCP would.'",
        "temperature: default -> 2.0",
    ]
    assert diff_lines(diff)[1] == (
        "settings differ, which alone can change answers: system_prompt: '' -> "
        "'Answer as the CCP would.'; temperature: default -> 2.0"
    )


def test_a_job_diffed_with_itself_names_a_and_b_and_hides_no_bidi_control() -> None:
    def run(answer: str) -> job_pb2.JobResult:
        return make_result(
            {(US, LLAMA, "q\u202e1", 0): Cell(answer)},
            regions=(US,),
            questions=("q\u202e1",),
            job_id="same",
        )

    lines = diff_lines(diff_results(run(PARIS), run("Lyon.")))

    assert lines[0] == "A (same) -> B (same): 1 cells in both, 0 only in A, 0 only in B"
    assert "only in A (same) (0)" in lines and "only in B (same) (0)" in lines
    assert f"  {US} {LLAMA} q<U+202E>1 #0: substantive -> substantive " in (
        "\n".join(lines)
    )
    assert not any("\u202e" in line for line in lines)
