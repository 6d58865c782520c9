"""How alike two answers are: cosine similarity of their word counts.

Words are Unicode word runs (`\\w+`), case-folded. The measure ignores word
order, costs time linear in the answers' length and needs no model, so the
same inputs always give the same number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from itertools import combinations, product
from typing import Final

METHOD: Final = "token-cosine"

_WORD: Final = re.compile(r"\w+")


def word_counts(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.casefold()))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """1 for the same words in the same proportions, 0 for none in common.

    Two answers without words (empty) are alike; one without words is unlike
    any answer with words.
    """
    if not a or not b:
        return 1.0 if not a and not b else 0.0
    # Iterate the smaller vector, in sorted order so float sums never vary.
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    dot = sum(count * large[word] for word, count in sorted(small.items()))
    norm_a = math.sqrt(sum(c * c for _, c in sorted(a.items())))
    norm_b = math.sqrt(sum(c * c for _, c in sorted(b.items())))
    return min(1.0, dot / (norm_a * norm_b))


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return math.fsum(items) / len(items) if items else None


def mean_within(texts: list[Counter[str]]) -> float | None:
    """Mean similarity over every pair of one group's answers."""
    return mean(cosine(a, b) for a, b in combinations(texts, 2))


def mean_between(left: list[Counter[str]], right: list[Counter[str]]) -> float | None:
    """Mean similarity over every pair with one answer from each group."""
    return mean(cosine(a, b) for a, b in product(left, right))
