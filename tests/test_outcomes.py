"""How the coordinator judges an accepted receipt or a failed attempt."""

from __future__ import annotations

import pytest

from beacon.v1 import job_pb2, receipt_pb2
from coordinator.outcomes import verdict_for_failure, verdict_for_receipt


def body(**fields: object) -> receipt_pb2.ReceiptBody:
    defaults: dict[str, object] = {
        "region": "eu-west",
        "model": "llama3.2-1b",
        "attempt": 1,
        "result": receipt_pb2.ATTEMPT_RESULT_SUCCESS,
        "classification": receipt_pb2.CLASSIFICATION_ANSWERED,
    }
    defaults.update(fields)
    served_region = str(defaults.pop("served_region", "eu-west"))
    served_model = str(defaults.pop("served_model", "llama3.2-1b"))
    message = receipt_pb2.ReceiptBody(**defaults)  # type: ignore[arg-type]
    message.router.served_region = served_region
    message.router.served_model = served_model
    return message


def test_success_in_the_asked_region_completes() -> None:
    verdict = verdict_for_receipt(body(), max_attempts=3)

    assert verdict.status == job_pb2.CELL_STATUS_COMPLETED
    assert verdict.classification == receipt_pb2.CLASSIFICATION_ANSWERED


@pytest.mark.parametrize(
    "fields",
    [
        {
            "result": receipt_pb2.ATTEMPT_RESULT_REGION_MISMATCH,
            "served_region": "us-east",
        },
        # Even if an agent called it a success, another serving region is a mismatch.
        {"served_region": "us-east"},
    ],
    ids=["agent-reported", "coordinator-detected"],
)
def test_other_region_is_a_mismatch_and_never_retried(
    fields: dict[str, object],
) -> None:
    verdict = verdict_for_receipt(body(**fields), max_attempts=3)

    assert verdict.status == job_pb2.CELL_STATUS_REGION_MISMATCH
    assert not verdict.retry
    assert "us-east" in verdict.reason


def test_other_model_is_a_mismatch() -> None:
    verdict = verdict_for_receipt(body(served_model="mistral-7b"), max_attempts=3)

    assert verdict.status == job_pb2.CELL_STATUS_MODEL_MISMATCH


@pytest.mark.parametrize(
    ("classification"),
    [receipt_pb2.CLASSIFICATION_REFUSED, receipt_pb2.CLASSIFICATION_EMPTY],
    ids=["refusal", "empty"],
)
def test_refusals_and_empty_answers_are_results(classification: int) -> None:
    """Invariant 7: a refusal or an empty answer is a completed outcome."""
    verdict = verdict_for_receipt(body(classification=classification), max_attempts=3)

    assert verdict.status == job_pb2.CELL_STATUS_COMPLETED
    assert verdict.classification == classification


def test_retryable_failure_retries_until_the_attempt_limit() -> None:
    failure = receipt_pb2.Failure(
        code="ROUTER_UNAVAILABLE", retryable=True, stage="router_call"
    )

    assert verdict_for_failure(failure, attempt=1, max_attempts=3).retry
    assert verdict_for_failure(failure, attempt=2, max_attempts=3).retry
    final = verdict_for_failure(failure, attempt=3, max_attempts=3)
    assert not final.retry
    assert final.status == job_pb2.CELL_STATUS_FAILED
    assert "attempt limit" in final.reason


def test_permanent_failure_is_final_at_once() -> None:
    failure = receipt_pb2.Failure(code="ROUTER_REJECTED_REQUEST", retryable=False)

    verdict = verdict_for_failure(failure, attempt=1, max_attempts=3)

    assert not verdict.retry
    assert verdict.status == job_pb2.CELL_STATUS_FAILED
    assert "ROUTER_REJECTED_REQUEST" in verdict.reason


def test_timeouts_end_as_timed_out() -> None:
    failure = receipt_pb2.Failure(
        code="ROUTER_TIMEOUT", retryable=True, stage="router_call"
    )

    verdict = verdict_for_failure(failure, attempt=3, max_attempts=3)

    assert verdict.status == job_pb2.CELL_STATUS_TIMED_OUT
