"""Reading a cell's final outcome as an answer class.

The classification itself is the receipt's (beacon.classify, applied once by
the agent); here it is only mapped, and a cell without an accepted answer
becomes a technical failure or, while it is still open, pending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final

from beacon.offline_labels import without_offline_label
from beacon.statuses import AnswerClass
from beacon.v1 import analysis_pb2, job_pb2, receipt_pb2

SUBSTANTIVE: Final = analysis_pb2.ANSWER_CLASS_SUBSTANTIVE
REFUSAL: Final = analysis_pb2.ANSWER_CLASS_REFUSAL
EMPTY: Final = analysis_pb2.ANSWER_CLASS_EMPTY
TECHNICAL_FAILURE: Final = analysis_pb2.ANSWER_CLASS_TECHNICAL_FAILURE
PENDING: Final = analysis_pb2.ANSWER_CLASS_PENDING

ACCEPTED: Final = frozenset({SUBSTANTIVE, REFUSAL, EMPTY})

_FROM_CLASSIFICATION: Final[dict[int, AnswerClass]] = {
    receipt_pb2.CLASSIFICATION_ANSWERED: SUBSTANTIVE,
    receipt_pb2.CLASSIFICATION_REFUSED: REFUSAL,
    receipt_pb2.CLASSIFICATION_EMPTY: EMPTY,
}

# Among a region's samples, a tie goes to the class an auditor must not miss.
_TIE_ORDER: Final[tuple[AnswerClass, ...]] = (REFUSAL, EMPTY, SUBSTANTIVE)


def answer_class(outcome: job_pb2.CellOutcome) -> AnswerClass:
    if outcome.status == job_pb2.CELL_STATUS_OPEN:
        return PENDING
    if outcome.status != job_pb2.CELL_STATUS_COMPLETED:
        return TECHNICAL_FAILURE
    # A completed outcome always carries a classification; an unset one is
    # read as an answer, as the coordinator stores it.
    return _FROM_CLASSIFICATION.get(outcome.classification, SUBSTANTIVE)


def compared_text(outcome: job_pb2.CellOutcome) -> str:
    """The answer as the similarity measure reads it: an offline answer (its
    receipt says so) without the label every offline answer shares."""
    body = receipt_pb2.ReceiptBody()
    if outcome.receipt.body:
        body.ParseFromString(outcome.receipt.body)
    return (
        without_offline_label(outcome.answer) if body.router.offline else outcome.answer
    )


def majority_class(classes: Iterable[AnswerClass]) -> AnswerClass:
    """The class most accepted samples have; without one, why none is there."""
    all_classes = list(classes)
    accepted = Counter(c for c in all_classes if c in ACCEPTED)
    if not accepted:
        return PENDING if PENDING in all_classes else TECHNICAL_FAILURE
    top = max(accepted.values())
    return next(c for c in _TIE_ORDER if accepted[c] == top)
