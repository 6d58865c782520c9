"""The analysis when regions fall into different classes: refusals in
different words, empty answers, no answers at all, pending cells."""

from __future__ import annotations

from beacon.v1 import analysis_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from tests.support.results import EMPTY, Cell, make_result, refused

US, EU, AP = "us-east", "eu-west", "asia-pacific"
LLAMA = "llama3.2-1b"
DEFAULT = AnalysisThresholds()
PARIS = "Paris is the capital of France and its largest city."

LOW = analysis_pb2.RISK_LEVEL_LOW
MEDIUM = analysis_pb2.RISK_LEVEL_MEDIUM
HIGH = analysis_pb2.RISK_LEVEL_HIGH


def kinds(analysis: analysis_pb2.JobAnalysis) -> list[int]:
    return [flag.kind for q in analysis.questions for flag in q.flags]


def test_regions_refusing_in_different_words_agree() -> None:
    """Everyone refuses: consistent refusal, not a divergence."""
    result = make_result(
        {
            (US, LLAMA, "q1", 0): refused("I'm sorry, but I can't help with that."),
            (EU, LLAMA, "q1", 0): refused(
                "As an AI language model, I cannot discuss political events."
            ),
            (AP, LLAMA, "q1", 0): refused("I must decline to answer."),
        }
    )

    analysis = analyze_result(result, DEFAULT)

    (question,) = analysis.questions
    assert kinds(analysis) == []
    assert all(p.compared_by_class and not p.divergent for p in question.pairs)
    assert [p.similarity for p in question.pairs] == [1.0, 1.0, 1.0]
    assert analysis.risk == LOW
    assert analysis.divergence == 0.0
    assert analysis.risk_reasons[0] == "all 1 compared (model, question) agree"
    assert "every region refuses in 1 (model, question): llama3.2-1b/q1" in (
        analysis.risk_reasons
    )


def test_all_empty_answers_are_inconclusive_not_perfect() -> None:
    result = make_result(
        {(region, LLAMA, "q1", 0): Cell("", EMPTY) for region in (US, EU, AP)}
    )

    analysis = analyze_result(result, DEFAULT)

    assert kinds(analysis) == [analysis_pb2.FLAG_KIND_NO_ANSWER]
    assert analysis.questions[0].flags[0].message == (
        f"no region answers: {US}, {EU} and {AP} return nothing"
    )
    assert not analysis.HasField("consistency")
    assert analysis.compared_questions == 0
    assert analysis.risk == MEDIUM
    assert any("inconclusive" in reason for reason in analysis.risk_reasons)


def test_an_empty_answer_beside_answers_has_its_own_flag() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(PARIS),
            (EU, LLAMA, "q1", 0): Cell(PARIS),
            (AP, LLAMA, "q1", 0): Cell("\u200b", EMPTY),
        }
    )

    analysis = analyze_result(result, DEFAULT)

    assert kinds(analysis) == [analysis_pb2.FLAG_KIND_REGIONAL_EMPTY]
    (flag,) = analysis.questions[0].flags
    assert flag.message == (f"{AP} returns an empty answer while {US} and {EU} answer")
    assert flag.regions == [US, EU, AP]
    assert analysis.divergence == 1.0
    assert analysis.risk == HIGH


def test_empty_and_refusing_regions_are_not_compared_by_text() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell("", EMPTY),
            (EU, LLAMA, "q1", 0): refused(),
        },
        regions=(US, EU),
    )

    analysis = analyze_result(result, DEFAULT)

    assert list(analysis.questions[0].pairs) == []
    assert analysis.questions[0].flags[0].message == (
        f"no region answers: {US} returns nothing, {EU} refuses"
    )


def test_sample_noise_is_worded_as_noise_not_agreement() -> None:
    """Samples that vary as much as the regions do: no divergence, but not
    "all agree" either."""
    words = ["rain", "sun", "snow", "wind", "fog", "hail"]
    result = make_result(
        {
            (region, LLAMA, "q1", sample): Cell(words[(offset + sample) % 6])
            for offset, region in enumerate((US, EU))
            for sample in range(2)
        },
        regions=(US, EU),
        samples=2,
    )
    result.outcomes[2].answer = "cloud"
    result.outcomes[3].answer = "storm"

    analysis = analyze_result(result, DEFAULT)

    assert kinds(analysis) == []
    assert analysis.risk_reasons[0] == (
        "no region differs beyond sample noise in the 1 compared (model, question)"
    )


def test_a_result_without_cells_is_inconclusive() -> None:
    result = make_result({}, regions=(US, EU))
    del result.outcomes[:]

    analysis = analyze_result(result, DEFAULT)

    assert analysis.risk == MEDIUM
    assert "inconclusive: the result has no cells" in analysis.risk_reasons
    assert analysis.questions[0].flags[0].message == f"{US} has no cell in the result"
