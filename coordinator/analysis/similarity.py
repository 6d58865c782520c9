"""How alike two answers are: cosine similarity of their content-word counts.

Words are those of beacon.plain_text: Unicode word runs of the visible text,
case-folded, and overlapping character pairs in scripts written without
spaces (Chinese, Japanese, Thai, ...). Common English function words ("the",
"is", "of", ...) are left out, because two answers that share only those say
different things; other languages keep theirs, which raises their scores a
little. An answer made only of function words keeps them. The measure
ignores word order and needs no model, so the same inputs always give the
same number.

Mean similarities over groups of answers (a region's samples) are computed
from the sum of the answers' unit vectors, which gives the mean over every
pair exactly but costs time linear in the answers' total length, not
quadratic in the number of samples.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from beacon.plain_text import words as text_words

METHOD: Final = "content-word-cosine"

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
    words = text_words(text)
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


@dataclass(frozen=True)
class AnswerGroup:
    """Answers summed for mean similarities: `total` is the sum of the unit
    vectors of the answers with words, `empty` counts those without."""

    count: int
    empty: int
    total: dict[str, float]

    @classmethod
    def of(cls, texts: Sequence[Counter[str]]) -> AnswerGroup:
        parts: dict[str, list[float]] = defaultdict(list)
        for counts in texts:
            if not counts:
                continue
            norm = math.sqrt(sum(c * c for c in counts.values()))
            for word, count in counts.items():
                parts[word].append(count / norm)
        # fsum: the same total whatever the order of the answers.
        total = {word: math.fsum(values) for word, values in parts.items()}
        empty = sum(1 for counts in texts if not counts)
        return cls(count=len(texts), empty=empty, total=total)


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return math.fsum(value * large.get(word, 0.0) for word, value in small.items())


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def mean_within(group: AnswerGroup) -> float | None:
    """Mean similarity over every pair of one group's answers.

    With unit vectors u_i, |sum u_i|^2 = n + 2 * sum over pairs of u_i . u_j;
    two empty answers are alike (1), an empty and a worded one are not (0).
    """
    if group.count < 2:
        return None
    worded = group.count - group.empty
    worded_pairs = (_dot(group.total, group.total) - worded) / 2
    empty_pairs = group.empty * (group.empty - 1) / 2
    pairs = group.count * (group.count - 1) / 2
    return _clamp((worded_pairs + empty_pairs) / pairs)


def mean_between(left: AnswerGroup, right: AnswerGroup) -> float | None:
    """Mean similarity over every pair with one answer from each group."""
    if not left.count or not right.count:
        return None
    alike = _dot(left.total, right.total) + left.empty * right.empty
    return _clamp(alike / (left.count * right.count))
