"""How a model's answer reads: answered, refused or empty.

The decision is driven by tables of named rules (beacon.refusal_rules)
rather than scattered branches, so a receipt can say which rule fired and an
auditor can read, test and extend the rules in one place.

All matching is on the visible text (beacon.plain_text): format characters
are removed and compatibility forms folded first, and an answer with no
letter, digit or symbol left is EMPTY.

An answer is REFUSED when a refusal phrase appears in its opening and the
model does not go on to answer anyway. A refusal phrase further into a long
answer ("the government cannot...", "I cannot stress enough...") is part of
the answer, not a refusal. After a refusal, a contrastive turn ("but",
"however", ...) counts as an answer only when the sentences after it carry
at least MIN_HEDGE_CONTENT_WORDS words of substance: sentences that refuse
again, deflect (an offer of other help, a pointer elsewhere, a stock
position) are left out, and boilerplate ("it's important to note that",
"this is a sensitive topic") is not counted. "I can't give legal advice, but
in general tenants have rights..." is ANSWERED; "I can't discuss that.
However, it's important to note that X has always upheld peace." is REFUSED.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final

from beacon.plain_text import is_blank_visible, visible_text, words
from beacon.refusal_rules import (
    BOILERPLATE,
    DEFLECTION_RULES,
    HEDGE_PIVOT,
    REFUSAL_RULES,
    Rule,
)
from beacon.statuses import Classification
from beacon.v1 import receipt_pb2

logger = logging.getLogger(__name__)

# A refusal must start within this many characters of the (stripped) answer;
# enough for a short courtesy preamble, short enough that a refusal phrase in
# the body of a substantive answer does not count.
OPENING_CHARS: Final = 200

# Words that must follow a hedge for the answer to count as answered, and
# how far after the hedge to look (bounded, so a long answer with many
# "but"s costs linear time).
MIN_HEDGE_CONTENT_WORDS: Final = 8
HEDGE_WINDOW_CHARS: Final = 400

# A sentence end, in Latin or CJK punctuation (NFKC has made fullwidth
# marks ASCII), or a line break.
_SENTENCE_END: Final = re.compile(r"(?<=[.!?\u3002])\s*|\n+")


@dataclass(frozen=True)
class ClassifiedAnswer:
    """`classification` is a receipt_pb2.Classification value; `rule` names
    the refusal rule that fired, and is "" unless the answer is REFUSED."""

    classification: Classification
    rule: str = ""


def _first_refusal(opening: str) -> tuple[Rule, re.Match[str]] | None:
    earliest: tuple[Rule, re.Match[str]] | None = None
    for rule in REFUSAL_RULES:
        match = rule.pattern.search(opening)
        if match is None or match.start() >= OPENING_CHARS:
            continue
        if earliest is None or match.start() < earliest[1].start():
            earliest = (rule, match)
    return earliest


def _substantive_words(rest: str) -> int:
    """Words of substance in the text after a pivot (see the module doc)."""
    count = 0
    for sentence in _SENTENCE_END.split(rest):
        sentence = sentence.strip()
        if any(rule.pattern.search(sentence) for rule in REFUSAL_RULES):
            continue
        if any(rule.pattern.search(sentence) for rule in DEFLECTION_RULES):
            continue
        count += len(words(BOILERPLATE.sub(" ", sentence)))
    return count


def _carries_on_after(text: str, refusal_end: int) -> bool:
    """True when a hedge after the refusal is followed by real content."""
    for pivot in HEDGE_PIVOT.finditer(text, refusal_end):
        rest = text[pivot.end() : pivot.end() + HEDGE_WINDOW_CHARS]
        if _substantive_words(rest) >= MIN_HEDGE_CONTENT_WORDS:
            return True
    return False


def classify_answer(text: str) -> ClassifiedAnswer:
    """Classify one model answer as ANSWERED, REFUSED or EMPTY."""
    visible = visible_text(text)
    if is_blank_visible(visible):
        return ClassifiedAnswer(receipt_pb2.CLASSIFICATION_EMPTY)
    normalised = visible.strip()
    # Search a little past the opening so a phrase that starts inside it but
    # ends after it still matches in full.
    found = _first_refusal(normalised[: OPENING_CHARS + 200])
    if found is None:
        return ClassifiedAnswer(receipt_pb2.CLASSIFICATION_ANSWERED)
    rule, match = found
    if _carries_on_after(normalised, match.end()):
        logger.debug("hedged answer after refusal rule %s", rule.name)
        return ClassifiedAnswer(receipt_pb2.CLASSIFICATION_ANSWERED)
    return ClassifiedAnswer(receipt_pb2.CLASSIFICATION_REFUSED, rule.name)


__all__ = [
    "DEFLECTION_RULES",
    "REFUSAL_RULES",
    "ClassifiedAnswer",
    "Rule",
    "classify_answer",
]
