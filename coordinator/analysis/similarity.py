"""How alike two answers are: cosine similarity of their content-word counts.

Words are Unicode word runs (`\\w+`), case-folded; common English function
words ("the", "is", "of", ...) are left out, because two answers that share
only those say different things. An answer made only of function words keeps
them. The measure ignores word order, costs time linear in the answers'
length and needs no model, so the same inputs always give the same number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from itertools import combinations, product
from typing import Final

METHOD: Final = "content-word-cosine"

_WORD: Final = re.compile(r"\w+")

# Words that carry grammar rather than content, a line per kind.
_FUNCTION_WORD_LINES: Final = (
    "a an the",
    "and or but nor so than then if as",
    "of to in on at by for with from into about",
    "is are was were be been being am do does did has have had",
    "will would can could should shall may might must",
    "it its this that these those there here",
    "i me my we our you your he she his her they them their",
    "which who whom whose what when where why how",
    "not no also very just",
)
FUNCTION_WORDS: Final = frozenset(
    word for line in _FUNCTION_WORD_LINES for word in line.split()
)


def word_counts(text: str) -> Counter[str]:
    words = _WORD.findall(text.casefold())
    content = [word for word in words if word not in FUNCTION_WORDS]
    return Counter(content or words)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """1 for the same words in the same proportions, 0 for none in common.

    Two answers without words (empty) are alike; one without words is unlike
    any answer with words.
    """
    if not a or not b:
        return 1.0 if not a and not b else 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    dot = sum(count * large[word] for word, count in small.items())
    # Integer sums: exact, so identical answers give exactly 1.
    squares_a = sum(c * c for c in a.values())
    squares_b = sum(c * c for c in b.values())
    return min(1.0, dot / math.sqrt(squares_a * squares_b))


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return math.fsum(items) / len(items) if items else None


def mean_within(texts: list[Counter[str]]) -> float | None:
    """Mean similarity over every pair of one group's answers."""
    return mean(cosine(a, b) for a, b in combinations(texts, 2))


def mean_between(left: list[Counter[str]], right: list[Counter[str]]) -> float | None:
    """Mean similarity over every pair with one answer from each group."""
    return mean(cosine(a, b) for a, b in product(left, right))
