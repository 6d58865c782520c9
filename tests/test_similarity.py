"""The similarity measure: words of unspaced scripts, invisible characters,
offline labels, and mean similarities over many samples."""

from __future__ import annotations

import random
from itertools import combinations, product

import pytest

from beacon.offline_labels import SCRIPT_LABEL
from beacon.plain_text import words
from beacon.v1 import job_pb2, receipt_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from coordinator.analysis.similarity import (
    AnswerGroup,
    cosine,
    mean_between,
    mean_within,
    word_counts,
)
from tests.support.results import Cell, make_result

US, EU = "us-east", "eu-west"
LLAMA = "llama3.2-1b"

ZH = "天安门广场事件发生在一九八九年。许多学生参加了抗议。政府宣布了戒严。"
ZH_EDITED = "天安门广场事件发生在一九八九年。很多学生参加了抗议。政府宣布了戒严。"
ZH_OTHER = "台湾是中国不可分割的一部分。两岸同胞血浓于水。"


def similarity(a: str, b: str) -> float:
    return cosine(word_counts(a), word_counts(b))


def test_chinese_is_cut_into_character_pairs() -> None:
    assert words("许多学生") == ["许多", "多学", "学生"]
    assert words("中") == ["中"]
    assert words("Beijing 北京 2024") == ["beijing", "北京", "2024"]


def test_a_one_character_edit_in_chinese_keeps_answers_alike() -> None:
    """One character changed in one clause: still clearly the same answer."""
    assert similarity(ZH, ZH_EDITED) > 0.85
    assert similarity(ZH, ZH_OTHER) < AnalysisThresholds().divergence_similarity


@pytest.mark.parametrize(
    "hidden", ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u202e"], ids=repr
)
def test_format_characters_do_not_split_words(hidden: str) -> None:
    assert words(f"Tai{hidden}wan") == ["taiwan"]
    assert similarity(f"Tai{hidden}wan is an island", "Taiwan is an island") == 1.0


def test_the_mean_over_sample_groups_equals_the_mean_over_every_pair() -> None:
    """Summed unit vectors give the pairwise means, empty answers included."""
    rng = random.Random(5)
    vocabulary = ["paris", "city", "river", "seine", "tower", "capital", "france"]
    left = [
        word_counts(" ".join(rng.choices(vocabulary, k=rng.randint(0, 9))))
        for _ in range(7)
    ]
    right = [
        word_counts(" ".join(rng.choices(vocabulary, k=rng.randint(0, 9))))
        for _ in range(5)
    ]
    assert any(not counts for counts in left + right)

    within = [cosine(a, b) for a, b in combinations(left, 2)]
    between = [cosine(a, b) for a, b in product(left, right)]

    assert mean_within(AnswerGroup.of(left)) == pytest.approx(
        sum(within) / len(within), abs=1e-12
    )
    assert mean_between(AnswerGroup.of(left), AnswerGroup.of(right)) == (
        pytest.approx(sum(between) / len(between), abs=1e-12)
    )
    assert mean_within(AnswerGroup.of(left[:1])) is None
    assert mean_between(AnswerGroup.of([]), AnswerGroup.of(right)) is None


def test_many_samples_give_the_same_analysis_in_any_order() -> None:
    """100 samples per region: one result, whatever the order of the outcomes."""
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(40)]
    cells = {
        (region, LLAMA, "q1", sample): Cell(" ".join(rng.choices(vocabulary, k=30)))
        for region in (US, EU)
        for sample in range(100)
    }
    result = make_result(cells, regions=(US, EU), samples=100)
    first = analyze_result(result, AnalysisThresholds()).SerializeToString()

    outcomes = list(result.outcomes)
    rng.shuffle(outcomes)
    del result.outcomes[:]
    result.outcomes.extend(outcomes)

    assert analyze_result(result, AnalysisThresholds()).SerializeToString() == first


def _offline(outcome: job_pb2.CellOutcome) -> None:
    body = receipt_pb2.ReceiptBody()
    body.router.offline = True
    outcome.receipt.body = body.SerializeToString()


def test_the_offline_label_is_not_compared() -> None:
    """Two scripted answers are not alike merely because both carry the label."""
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(f"{SCRIPT_LABEL} Paris is the capital."),
            (EU, LLAMA, "q1", 0): Cell(f"{SCRIPT_LABEL} Bananas grow on plants."),
        },
        regions=(US, EU),
    )
    for outcome in result.outcomes:
        _offline(outcome)

    (question,) = analyze_result(result, AnalysisThresholds()).questions

    assert question.pairs[0].similarity == 0.0
    assert question.pairs[0].divergent
    # The label stays in the answer every export shows.
    assert result.outcomes[0].answer.startswith(SCRIPT_LABEL)


def test_a_model_answer_that_starts_like_the_label_is_compared_whole() -> None:
    """Only a receipt that says offline lets the label be left out."""
    result = make_result(
        {
            (US, LLAMA, "q1", 0): Cell(f"{SCRIPT_LABEL} Paris is the capital."),
            (EU, LLAMA, "q1", 0): Cell(f"{SCRIPT_LABEL} Bananas grow on plants."),
        },
        regions=(US, EU),
    )

    (question,) = analyze_result(result, AnalysisThresholds()).questions

    assert question.pairs[0].similarity > 0.5
