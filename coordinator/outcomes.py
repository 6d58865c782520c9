"""Deciding a cell's fate from an accepted receipt or a failed attempt.

The coordinator is the one layer that retries: a retryable failure with
attempts left means "try again"; anything else is the cell's final outcome.
A success served by another region or model is a mismatch, never a success.
"""

from __future__ import annotations

from dataclasses import dataclass

from beacon.statuses import CellStatus, Classification
from beacon.v1 import job_pb2, receipt_pb2


@dataclass(frozen=True)
class Verdict:
    """Either a final (status, classification, reason) or a retry."""

    status: CellStatus
    classification: Classification = receipt_pb2.CLASSIFICATION_UNSPECIFIED
    reason: str = ""
    retry: bool = False


def verdict_for_failure(
    failure: receipt_pb2.Failure, attempt: int, max_attempts: int
) -> Verdict:
    if failure.retryable and attempt < max_attempts:
        return Verdict(status=job_pb2.CELL_STATUS_OPEN, retry=True, reason=failure.code)
    status = (
        job_pb2.CELL_STATUS_TIMED_OUT
        if failure.code in TIMEOUT_CODES
        else job_pb2.CELL_STATUS_FAILED
    )
    limit = " (attempt limit reached)" if failure.retryable else ""
    return Verdict(
        status=status,
        reason=f"{failure.code} at {failure.stage or 'unknown stage'} after "
        f"{attempt} attempt(s){limit}: {failure.message}",
    )


TIMEOUT_CODES = frozenset({"ROUTER_TIMEOUT", "ATTEMPT_TIMEOUT", "DEADLINE_EXCEEDED"})


def verdict_for_receipt(body: receipt_pb2.ReceiptBody, max_attempts: int) -> Verdict:
    served_region = body.router.served_region
    served_model = body.router.served_model
    if body.result == receipt_pb2.ATTEMPT_RESULT_FAILURE:
        return verdict_for_failure(body.failure, body.attempt, max_attempts)
    if body.result == receipt_pb2.ATTEMPT_RESULT_REGION_MISMATCH or (
        served_region and served_region != body.region
    ):
        return Verdict(
            status=job_pb2.CELL_STATUS_REGION_MISMATCH,
            reason=f"asked {body.region}, served by {served_region or 'unknown'}",
        )
    if body.result == receipt_pb2.ATTEMPT_RESULT_MODEL_MISMATCH or (
        served_model and served_model != body.model
    ):
        return Verdict(
            status=job_pb2.CELL_STATUS_MODEL_MISMATCH,
            reason=f"asked {body.model}, served by {served_model or 'unknown'}",
        )
    if body.result != receipt_pb2.ATTEMPT_RESULT_SUCCESS:
        return Verdict(
            status=job_pb2.CELL_STATUS_FAILED,
            reason=f"receipt has no result ({body.result})",
        )
    return Verdict(
        status=job_pb2.CELL_STATUS_COMPLETED,
        classification=body.classification or receipt_pb2.CLASSIFICATION_ANSWERED,
    )
