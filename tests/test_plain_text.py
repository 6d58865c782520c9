"""The visible text of an answer, which the classifier and the comparison read."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from beacon.plain_text import is_blank, is_blank_visible, visible_text

APOSTROPHES = "\u2019\u2018\u02bc\u2032\u00b4`"


def _visible_by_every_step(text: str) -> str:
    """visible_text() without its shortcut for ASCII."""
    mapped = text.translate(dict.fromkeys(map(ord, APOSTROPHES), "'"))
    folded = unicodedata.normalize("NFKC", mapped)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_text_reads_as_every_step_would_read_it(text: str) -> None:
    assert visible_text(text) == _visible_by_every_step(text)


@given(st.text())
def test_any_text_reads_as_every_step_would_read_it(text: str) -> None:
    assert visible_text(text) == _visible_by_every_step(text)


def test_the_backtick_is_an_apostrophe_in_ascii_text_too() -> None:
    assert visible_text("I can`t") == "I can't"


@given(st.text())
def test_blankness_of_visible_text_is_blankness_of_the_text(text: str) -> None:
    assert is_blank_visible(visible_text(text)) == is_blank(text)


def test_invisible_and_blank_characters_make_a_blank_answer() -> None:
    assert is_blank(" \u200b\u3164 .")
    assert not is_blank("\u200bok")
