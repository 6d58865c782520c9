"""Executing one cell attempt: check it, call the router, build the receipt body.

Nothing here retries: a failure is reported with a retryable flag and the
coordinator, which owns retries, decides.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from beacon import log_context, tracing
from beacon.classify import classify_answer
from beacon.digests import sha256_hex
from beacon.generation import max_tokens_problem, temperature_problem
from beacon.offline_labels import without_offline_label
from beacon.timestamps import now, seconds
from beacon.v1 import receipt_pb2
from region_agent import metrics
from region_agent.router_client import RouterClient
from region_agent.router_reply import InferenceCall

logger = logging.getLogger(__name__)

# Time kept back from the attempt deadline for signing and the trip back.
DEADLINE_MARGIN_SECONDS = 0.5


@dataclass(frozen=True)
class ExecutorSettings:
    region: str
    agent_id: str
    max_router_timeout_seconds: float
    max_output_chars: int


def _failure(code: str, message: str, *, retryable: bool) -> receipt_pb2.Failure:
    return receipt_pb2.Failure(
        code=code, message=message, retryable=retryable, stage="agent"
    )


def check_request(
    request: receipt_pb2.ExecuteRequest, region: str
) -> receipt_pb2.Failure | None:
    """Why this agent must not execute `request`, or None when it may."""
    missing = [
        name
        for name in ("job_id", "cell_id", "region", "model", "question_id", "prompt")
        if not getattr(request, name)
    ]
    if missing:
        return _failure(
            "INVALID_REQUEST",
            f"ExecuteRequest is missing {', '.join(missing)}",
            retryable=False,
        )
    if request.region != region:
        return _failure(
            "WRONG_REGION",
            f"this agent serves {region}; cell {request.cell_id} is for "
            f"{request.region} and must go to that region's agent",
            retryable=False,
        )
    if request.attempt < 1:
        return _failure(
            "INVALID_REQUEST",
            "ExecuteRequest.attempt must be 1 or more",
            retryable=False,
        )
    if sha256_hex(request.prompt) != request.prompt_sha256:
        return _failure(
            "PROMPT_DIGEST_MISMATCH",
            "prompt_sha256 is not the SHA-256 of prompt; the request was altered",
            retryable=False,
        )
    problems = [
        f"ExecuteRequest.{name} {problem}"
        for name, problem in (
            ("temperature", temperature_problem(request.temperature)),
            ("max_tokens", max_tokens_problem(request.max_tokens)),
        )
        if problem
    ]
    if problems:
        return _failure("INVALID_REQUEST", "; ".join(problems), retryable=False)
    return None


def router_timeout(request: receipt_pb2.ExecuteRequest, cap_seconds: float) -> float:
    """The router call's budget: the smallest of the job's, the agent's and
    the attempt's (less a margin for signing and the trip back).

    The attempt's time counts both from when this request is read and up to
    its absolute deadline, so a request that waited (in a paused agent, say)
    past the point where the coordinator gave up is not executed.
    """
    budget = cap_seconds
    if request.router_timeout_seconds > 0:
        budget = min(budget, request.router_timeout_seconds)
    if request.attempt_seconds > 0:
        budget = min(budget, request.attempt_seconds - DEADLINE_MARGIN_SECONDS)
    if request.HasField("deadline"):
        remaining = seconds(request.deadline) - time.time()
        budget = min(budget, remaining - DEADLINE_MARGIN_SECONDS)
    return budget


def cell_idempotency_key(request: receipt_pb2.ExecuteRequest) -> str:
    """One key per cell of one job run: every attempt of the cell shares it,
    because a router replays only a call that succeeded, and a cell that
    succeeded is never to be executed again."""
    cell = f"{request.job_id}|{request.cell_id}|{request.job_token}"
    return f"beacon-{sha256_hex(cell)[:40]}"


def result_name(result: receipt_pb2.AttemptResult.ValueType) -> str:
    return (
        receipt_pb2.AttemptResult.Name(result).removeprefix("ATTEMPT_RESULT_").lower()
    )


class CellExecutor:
    """Turns one ExecuteRequest into a ReceiptBody, never raising for a cell."""

    def __init__(self, settings: ExecutorSettings, router: RouterClient) -> None:
        self._settings = settings
        self._router = router

    async def execute(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.ReceiptBody:
        region = self._settings.region
        attributes: dict[str, str | int] = {
            "beacon.job_id": request.job_id,
            "beacon.cell_id": request.cell_id,
            "beacon.attempt": request.attempt,
            "beacon.region": region,
            "beacon.model": request.model,
        }
        with (
            log_context.ids(
                job_id=request.job_id, cell_id=request.cell_id, attempt=request.attempt
            ),
            metrics.IN_FLIGHT.labels(region).track_inprogress(),
            # Continues the coordinator's span for this attempt.
            tracing.span("cell", attributes, request.trace_parent),
        ):
            body = await self._execute(request)
        metrics.CELLS.labels(region, request.model, result_name(body.result)).inc()
        return body

    async def _execute(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.ReceiptBody:
        body = self._base_body(request)
        refusal = check_request(request, self._settings.region)
        if refusal is not None:
            logger.info(
                "refused cell job_id=%s cell_id=%s code=%s",
                request.job_id,
                request.cell_id,
                refusal.code,
            )
            return self._finish_failure(body, refusal)

        timeout = router_timeout(request, self._settings.max_router_timeout_seconds)
        if timeout <= 0:
            return self._finish_failure(
                body,
                _failure(
                    "DEADLINE_EXCEEDED",
                    "the attempt deadline passed before the router could be called",
                    retryable=True,
                ),
            )

        call = InferenceCall(
            model=request.model,
            prompt=request.prompt,
            region=self._settings.region,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            idempotency_key=cell_idempotency_key(request),
        )
        try:
            reply = await self._router.infer(call, timeout)
        except Exception:
            # The client maps every router problem itself; reaching here is a
            # fault of this agent, which must still answer for the cell.
            logger.exception(
                "router client failed job_id=%s cell_id=%s",
                request.job_id,
                request.cell_id,
            )
            return self.agent_error(request)
        body.result = reply.result
        body.router.CopyFrom(reply.router)
        body.router_latency_seconds = reply.latency_seconds
        metrics.ROUTER_CALL_SECONDS.labels(
            self._settings.region, result_name(reply.result)
        ).observe(reply.latency_seconds)
        if reply.failure is not None:
            body.failure.CopyFrom(reply.failure)
        self._set_output(body, reply.output)
        if reply.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS:
            # An offline answer is classified without its label, so a
            # scripted empty answer is empty; the label stays in the output.
            classified = classify_answer(
                without_offline_label(body.output)
                if body.router.offline
                else body.output
            )
            body.classification = classified.classification
            body.classification_rule = classified.rule
        body.finished_at.CopyFrom(now())
        logger.debug(
            "executed cell job_id=%s cell_id=%s attempt=%d result=%s",
            request.job_id,
            request.cell_id,
            request.attempt,
            receipt_pb2.AttemptResult.Name(reply.result),
        )
        return body

    def agent_error(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.ReceiptBody:
        """The receipt body for an attempt this agent failed to carry out."""
        return self._finish_failure(
            self._base_body(request),
            _failure(
                "AGENT_ERROR",
                "the agent failed while executing the cell; see its log",
                retryable=True,
            ),
        )

    def receipt_not_kept(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.ReceiptBody:
        """The receipt body for an attempt whose receipt this agent could not
        write to its receipts file (a full disk): retried, never answered
        with something a restarted agent could not replay."""
        return self._finish_failure(
            self._base_body(request),
            _failure(
                "RECEIPT_NOT_KEPT",
                "the agent could not write its receipts file (see its log), "
                "so it gives no answer for this attempt",
                retryable=True,
            ),
        )

    def abandoned(self, request: receipt_pb2.ExecuteRequest) -> receipt_pb2.ReceiptBody:
        """The receipt body for a cell of a job its coordinator abandoned."""
        return self._finish_failure(
            self._base_body(request),
            _failure(
                "JOB_ABANDONED",
                f"job {request.job_id} was cancelled; its cells are not executed",
                retryable=False,
            ),
        )

    def _base_body(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.ReceiptBody:
        return receipt_pb2.ReceiptBody(
            job_id=request.job_id,
            cell_id=request.cell_id,
            attempt=request.attempt,
            region=self._settings.region,
            agent_id=self._settings.agent_id,
            model=request.model,
            question_id=request.question_id,
            sample=request.sample,
            prompt=request.prompt,
            prompt_sha256=sha256_hex(request.prompt),
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            job_token=request.job_token,
            started_at=now(),
            output_sha256=sha256_hex(""),
        )

    def _set_output(self, body: receipt_pb2.ReceiptBody, output: str) -> None:
        limit = self._settings.max_output_chars
        if len(output) > limit:
            output = output[:limit]
            body.output_truncated = True
        body.output = output
        body.output_sha256 = sha256_hex(output)

    @staticmethod
    def _finish_failure(
        body: receipt_pb2.ReceiptBody, failure: receipt_pb2.Failure
    ) -> receipt_pb2.ReceiptBody:
        body.result = receipt_pb2.ATTEMPT_RESULT_FAILURE
        body.failure.CopyFrom(failure)
        body.finished_at.CopyFrom(now())
        return body
