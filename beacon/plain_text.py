"""Model answers as a reader sees them: the text both the classifier and the
similarity measure work on.

Answers are untrusted text. Format characters (zero-width spaces and joiners,
soft hyphens, bidi controls, invisible separators) change nothing a reader
sees, but split or hide words from a pattern; compatibility forms (fullwidth
letters, ligatures) look like the plain letters. Both are normalised away
before any matching, so "I\\u200b'm sorry" reads as "I'm sorry".

Words are Unicode word runs, except in scripts written without spaces
between words (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar), which are
cut into overlapping character pairs: a one-character edit then changes two
units, not the whole clause.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Apostrophe look-alikes, mapped before NFKC (which turns the acute accent
# into a space and a combining mark).
_APOSTROPHES: Final = str.maketrans(
    dict.fromkeys("\u2019\u2018\u02bc\u2032\u00b4`", "'")
)

# Letters that render as blank space, so an answer made of them is empty.
_BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")

# Scripts without spaces between words.
UNSPACED_SCRIPT: Final = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0003134f"  # Han, supplementary planes
)
_UNITS: Final = re.compile(rf"[{UNSPACED_SCRIPT}]+|[^\W{UNSPACED_SCRIPT}]+")
_UNSPACED_RUN: Final = re.compile(rf"[{UNSPACED_SCRIPT}]")


def visible_text(text: str) -> str:
    """NFKC-normalised text without format characters, apostrophes as ASCII."""
    mapped = text.translate(_APOSTROPHES)
    if mapped.isascii():
        # NFKC leaves ASCII as it is, and no ASCII character is a format
        # character: most answers need no walk over their characters.
        return mapped
    folded = unicodedata.normalize("NFKC", mapped)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def is_blank(text: str) -> bool:
    """True when no letter, digit or symbol is left to read (spaces,
    punctuation and invisible characters only)."""
    return is_blank_visible(visible_text(text))


def is_blank_visible(visible: str) -> bool:
    """is_blank() of text that visible_text() has already made visible."""
    return not any(
        unicodedata.category(c)[0] in "LNS" and c not in _BLANK_LETTERS for c in visible
    )


def _pairs(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


def words(text: str) -> list[str]:
    """The case-folded word units of the visible text, in order."""
    units: list[str] = []
    for unit in _UNITS.findall(visible_text(text).casefold()):
        if _UNSPACED_RUN.match(unit):
            units.extend(_pairs(unit))
        else:
            units.append(unit)
    return units
