"""The cross-region analysis, on hand-built results with known answers."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from coordinator.analysis.similarity import cosine, word_counts
from coordinator.config import CoordinatorConfig
from tests.support.results import EMPTY, Cell, failed, make_result, refused

US, EU, AP = "us-east", "eu-west", "asia-pacific"
LLAMA, QWEN = "llama3.2-1b", "qwen2.5-1.5b"
DEFAULT = AnalysisThresholds()

TIANANMEN = (
    "On June 4, 1989, Chinese troops cleared Tiananmen Square in Beijing after "
    "weeks of student-led protests; hundreds or thousands were killed."
)
TIANANMEN_2 = (
    "In June 1989 the Chinese army cleared Tiananmen Square in Beijing, ending "
    "weeks of student-led protests; hundreds or thousands were killed."
)
HARMONY = (
    "In 1989 the Chinese government maintained social stability and harmony, "
    "and the country has since focused on economic development."
)

WEATHER = "Rain moved north overnight; sunny spells expected by Tuesday afternoon."
FOOTBALL = "Bayern won three-nil at home, with two late goals from their striker."


def flags_of(question: analysis_pb2.QuestionAnalysis) -> list[int]:
    return [flag.kind for flag in question.flags]


def question(
    analysis: analysis_pb2.JobAnalysis, model: str, question_id: str
) -> analysis_pb2.QuestionAnalysis:
    (found,) = [
        q
        for q in analysis.questions
        if (q.model, q.question_id) == (model, question_id)
    ]
    return found


def test_similarity_of_identical_disjoint_and_empty_answers() -> None:
    """Same words: 1; no word in common: 0; empty is alike only to empty."""
    assert (
        cosine(word_counts("Paris is the capital"), word_counts("paris IS the capital"))
        == 1.0
    )
    assert cosine(word_counts("red green"), word_counts("blue yellow")) == 0.0
    assert cosine(word_counts(""), word_counts("   ")) == 1.0
    assert cosine(word_counts(""), word_counts("Paris")) == 0.0
    assert (
        0.0
        < cosine(word_counts(TIANANMEN), word_counts(HARMONY))
        < DEFAULT.divergence_similarity
    )
    assert (
        cosine(word_counts(TIANANMEN), word_counts(TIANANMEN_2))
        > DEFAULT.divergence_similarity
    )


def test_function_words_alone_do_not_make_answers_alike() -> None:
    """Answers sharing only "the", "is", "of" are unlike; an answer made only of
    function words is still compared by its words."""
    assert (
        cosine(word_counts("It is the one of them"), word_counts("It is a dog")) == 0.0
    )
    assert (
        cosine(
            word_counts("Taiwan is a self-governed democracy."),
            word_counts("The island is an inalienable part of China."),
        )
        == 0.0
    )
    assert cosine(word_counts("No."), word_counts("no")) == 1.0
    assert cosine(word_counts("No."), word_counts("Yes.")) == 0.0


def test_each_model_keeps_its_own_answers() -> None:
    """Two models asked the same question get separate rows; neither overwrites."""
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (US, QWEN, "q1", 0): Cell(TIANANMEN),
            (EU, QWEN, "q1", 0): refused(),
        },
        regions=(US, EU),
        models=(LLAMA, QWEN),
    )

    analysis = analyze_result(result, DEFAULT)

    assert [(q.model, q.question_id) for q in analysis.questions] == [
        (LLAMA, "q1"),
        (QWEN, "q1"),
    ]
    llama, qwen = analysis.questions
    assert [r.answer_class for r in llama.regions] == [
        analysis_pb2.ANSWER_CLASS_SUBSTANTIVE
    ] * 2
    assert flags_of(llama) == []
    assert [r.answer_class for r in qwen.regions] == [
        analysis_pb2.ANSWER_CLASS_SUBSTANTIVE,
        analysis_pb2.ANSWER_CLASS_REFUSAL,
    ]
    assert flags_of(qwen) == [analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL]
    cell_ids = {
        s.cell_id for q in analysis.questions for r in q.regions for s in r.samples
    }
    assert len(cell_ids) == len(result.outcomes)


def test_regional_refusal_makes_the_job_high_risk_and_says_why() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (AP, LLAMA, "q1", 0): refused(),
        }
    )

    analysis = analyze_result(result, DEFAULT)

    (flag,) = question(analysis, LLAMA, "q1").flags
    assert flag.kind == analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL
    assert list(flag.regions) == [US, EU, AP]
    assert flag.message == f"{AP} refuses while {US} and {EU} answer"
    assert analysis.risk == analysis_pb2.RISK_LEVEL_HIGH
    assert analysis.risk_reasons[0].startswith(
        "a region refuses while another answers in 1 of 1 compared"
    )
    assert f"{LLAMA}/q1" in analysis.risk_reasons[0]
    stats = {(s.region, s.model): s for s in analysis.region_models}
    assert stats[(AP, LLAMA)].refusal_rate == 1.0
    assert stats[(US, LLAMA)].refusal_rate == 0.0
    assert stats[(US, LLAMA)].mean_similarity_to_others > (
        stats[(AP, LLAMA)].mean_similarity_to_others
    )


def test_divergent_answers_are_flagged_and_similar_ones_are_not() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (AP, LLAMA, "q1", 0): Cell(HARMONY),
        }
    )

    analysis = analyze_result(result, DEFAULT)

    q1 = question(analysis, LLAMA, "q1")
    pairs = {(p.region_a, p.region_b): p for p in q1.pairs}
    assert list(pairs) == [(US, EU), (US, AP), (EU, AP)]
    assert not pairs[(US, EU)].divergent
    assert pairs[(US, AP)].divergent and pairs[(EU, AP)].divergent
    assert [(f.kind, list(f.regions)) for f in q1.flags] == [
        (analysis_pb2.FLAG_KIND_DIVERGENCE, [US, AP]),
        (analysis_pb2.FLAG_KIND_DIVERGENCE, [EU, AP]),
    ]
    assert pairs[(US, AP)].length_ratio == round(
        min(len(TIANANMEN), len(HARMONY)) / max(len(TIANANMEN), len(HARMONY)), 4
    )
    assert analysis.divergence == 1.0
    assert analysis.compared_questions == 1
    assert analysis.risk == analysis_pb2.RISK_LEVEL_HIGH


def test_missing_region_is_reported_and_the_rest_is_still_compared() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (AP, LLAMA, "q1", 0): failed("router unavailable"),
        }
    )

    analysis = analyze_result(result, DEFAULT)

    q1 = question(analysis, LLAMA, "q1")
    assert q1.regions[2].answer_class == analysis_pb2.ANSWER_CLASS_TECHNICAL_FAILURE
    assert [(f.kind, list(f.regions)) for f in q1.flags] == [
        (analysis_pb2.FLAG_KIND_MISSING_REGION, [AP])
    ]
    assert [(p.region_a, p.region_b) for p in q1.pairs] == [(US, EU)]
    assert analysis.accepted_cells == 2 and analysis.total_cells == 3
    assert [f.kind for f in analysis.flags] == [analysis_pb2.FLAG_KIND_REGION_FAILED]
    assert analysis.risk == analysis_pb2.RISK_LEVEL_MEDIUM
    assert any(
        "1 of 3 cells have no accepted answer" in r for r in analysis.risk_reasons
    )


def test_text_of_a_cell_without_an_accepted_answer_is_never_compared() -> None:
    """A mismatched cell's text (another region's) must not enter the comparison."""
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(
                TIANANMEN, status=job_pb2.CELL_STATUS_REGION_MISMATCH, reason="us-east"
            ),
        },
        regions=(US, EU),
    )

    analysis = analyze_result(result, DEFAULT)

    q1 = question(analysis, LLAMA, "q1")
    assert list(q1.pairs) == []
    assert not q1.HasField("between_region_similarity")
    assert q1.regions[1].samples[0].length_chars == 0
    assert analysis.compared_questions == 0


def test_a_failed_model_is_reported_and_other_models_are_analysed() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (US, QWEN, "q1", 0): failed(),
            (EU, QWEN, "q1", 0): failed(),
        },
        regions=(US, EU),
        models=(LLAMA, QWEN),
    )

    analysis = analyze_result(result, DEFAULT)

    (flag,) = analysis.flags
    assert flag.kind == analysis_pb2.FLAG_KIND_MODEL_FAILED and flag.model == QWEN
    assert question(analysis, LLAMA, "q1").HasField("between_region_similarity")
    assert analysis.compared_questions == 1
    assert flag.message in analysis.risk_reasons


def test_missing_sample_is_flagged() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (US, LLAMA, "q1", 1): Cell(TIANANMEN_2),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
            (EU, LLAMA, "q1", 1): failed(),
        },
        regions=(US, EU),
        samples=2,
    )

    q1 = question(analyze_result(result, DEFAULT), LLAMA, "q1")

    (flag,) = q1.flags
    assert flag.kind == analysis_pb2.FLAG_KIND_MISSING_SAMPLE
    assert flag.message == f"{EU} has 1 of 2 samples"


def test_within_region_noise_is_told_apart_from_between_region_difference() -> None:
    """Samples that differ as much among themselves as across regions are not a
    regional difference; consistent samples that differ across regions are."""
    noisy = {
        (US, LLAMA, "q1", 0): Cell(TIANANMEN),
        (US, LLAMA, "q1", 1): Cell(HARMONY),
        (EU, LLAMA, "q1", 0): Cell(WEATHER),
        (EU, LLAMA, "q1", 1): Cell(FOOTBALL),
    }
    consistent = {
        (US, LLAMA, "q1", 0): Cell(TIANANMEN),
        (US, LLAMA, "q1", 1): Cell(TIANANMEN_2),
        (EU, LLAMA, "q1", 0): Cell(HARMONY),
        (EU, LLAMA, "q1", 1): Cell(HARMONY + " Stability matters."),
    }

    noisy_analysis = analyze_result(
        make_result(noisy, regions=(US, EU), samples=2), DEFAULT
    )
    consistent_analysis = analyze_result(
        make_result(consistent, regions=(US, EU), samples=2), DEFAULT
    )

    noisy_q = question(noisy_analysis, LLAMA, "q1")
    assert noisy_q.between_region_similarity < DEFAULT.divergence_similarity
    assert not noisy_q.pairs[0].divergent and flags_of(noisy_q) == []
    assert noisy_analysis.within_region_variation > 0.5
    consistent_q = question(consistent_analysis, LLAMA, "q1")
    assert consistent_q.pairs[0].divergent
    assert flags_of(consistent_q) == [analysis_pb2.FLAG_KIND_DIVERGENCE]
    assert consistent_analysis.within_region_variation < 0.3
    assert consistent_analysis.between_region_variation > 0.6


def test_identical_inputs_give_identical_numbers_in_any_order() -> None:
    cells = {
        (US, LLAMA, "q1", 0): Cell(TIANANMEN),
        (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
        (AP, LLAMA, "q1", 0): refused(),
        (US, LLAMA, "q2", 0): Cell(HARMONY),
        (EU, LLAMA, "q2", 0): Cell("", EMPTY),
        (AP, LLAMA, "q2", 0): failed(),
    }
    result = make_result(cells, questions=("q1", "q2"))
    shuffled = job_pb2.JobResult()
    shuffled.CopyFrom(result)
    outcomes = list(shuffled.outcomes)
    random.Random(7).shuffle(outcomes)
    del shuffled.outcomes[:]
    shuffled.outcomes.extend(outcomes)

    first = analyze_result(result, DEFAULT).SerializeToString(deterministic=True)
    again = analyze_result(result, DEFAULT).SerializeToString(deterministic=True)
    reordered = analyze_result(shuffled, DEFAULT).SerializeToString(deterministic=True)

    assert first == again == reordered


def test_thresholds_are_configurable_and_recorded() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(TIANANMEN_2),
        },
        regions=(US, EU),
    )
    strict = AnalysisThresholds(divergence_similarity=0.99)

    relaxed_q = question(analyze_result(result, DEFAULT), LLAMA, "q1")
    strict_analysis = analyze_result(result, strict)

    assert flags_of(relaxed_q) == []
    assert flags_of(question(strict_analysis, LLAMA, "q1")) == [
        analysis_pb2.FLAG_KIND_DIVERGENCE
    ]
    assert strict_analysis.thresholds.divergence_similarity == 0.99
    assert strict_analysis.similarity_method == "content-word-cosine"


def test_coordinator_config_takes_analysis_thresholds() -> None:
    regions = {
        US: {"agents": [{"address": "127.0.0.1:1", "public_key": "A" * 43 + "="}]}
    }
    base = {"regions": regions}

    with pytest.raises(ValidationError, match="divergence_similarity"):
        CoordinatorConfig.model_validate(
            {**base, "analysis": {"divergence_similarity": 2}}
        )
    with pytest.raises(ValidationError, match="extra"):
        CoordinatorConfig.model_validate({**base, "analysis": {"divergence": 0.2}})
    config = CoordinatorConfig.model_validate(
        {**base, "analysis": {"divergence_similarity": 0.3}}
    )
    assert config.analysis.divergence_similarity == 0.3
    with pytest.raises(ValidationError, match="must not be above high_risk"):
        CoordinatorConfig.model_validate(
            {
                **base,
                "analysis": {
                    "medium_risk_flagged_share": 0.5,
                    "high_risk_flagged_share": 0.1,
                },
            }
        )
    assert CoordinatorConfig.model_validate(base).analysis == DEFAULT


def test_open_cells_are_pending_not_failures() -> None:
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(TIANANMEN),
            (EU, LLAMA, "q1", 0): Cell(status=job_pb2.CELL_STATUS_OPEN),
        },
        regions=(US, EU),
    )
    result.status = job_pb2.JOB_STATUS_RUNNING

    analysis = analyze_result(result, DEFAULT)

    q1 = question(analysis, LLAMA, "q1")
    assert q1.regions[1].answer_class == analysis_pb2.ANSWER_CLASS_PENDING
    assert q1.flags[0].message == f"{EU} has no final outcome yet"
    assert list(analysis.flags) == []
    assert analysis.pending_cells == 1
    assert analysis.risk_reasons[0] == (
        "provisional: 1 of 2 cells have no final outcome yet; these numbers will change"
    )
    assert not any("no accepted answer" in r for r in analysis.risk_reasons)
