"""Reading the hybrid router's replies.

Every way the router is known to answer (a validated success, a success from
another region or model, a reported failure, an HTTP error status, a body
that is not JSON, a body too large to sign) becomes an Outcome with a stable
failure code and a retryable flag. Nothing here performs I/O.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from beacon.http_status import may_pass, permanent_note
from beacon.one_line import body_line
from beacon.redaction import Redactor
from beacon.statuses import AttemptResult
from beacon.v1 import receipt_pb2

logger = logging.getLogger(__name__)

ROUTER_KIND: Final = "hybrid"
# A reply larger than this is not an answer we can sign and ship.
MAX_REPLY_BYTES: Final = 16 * 1024 * 1024
BODY_EXCERPT_CHARS: Final = 200
DETAIL_CHARS: Final = 500
LOCATION_CHARS: Final = 200
INT32_MAX: Final = 2**31 - 1

STAGE_CALL: Final = "router_call"
STAGE_REPLY: Final = "router_reply"

# Stable failure codes produced by this client. A reply with success: false
# carries the router's own code (failure.code or error_code) instead.
REGION_MISMATCH: Final = "REGION_MISMATCH"
MODEL_MISMATCH: Final = "MODEL_MISMATCH"
ROUTER_REPLY_INVALID: Final = "ROUTER_REPLY_INVALID"
ROUTER_REPLY_TOO_LARGE: Final = "ROUTER_REPLY_TOO_LARGE"
ROUTER_REPORTED_FAILURE: Final = "ROUTER_REPORTED_FAILURE"
ROUTER_UNAVAILABLE: Final = "ROUTER_UNAVAILABLE"
ROUTER_RATE_LIMITED: Final = "ROUTER_RATE_LIMITED"
ROUTER_REJECTED_REQUEST: Final = "ROUTER_REJECTED_REQUEST"
ROUTER_NOT_FOUND: Final = "ROUTER_NOT_FOUND"
ROUTER_TIMEOUT: Final = "ROUTER_TIMEOUT"
ROUTER_UNREACHABLE: Final = "ROUTER_UNREACHABLE"


Count = Annotated[int, Field(ge=0, le=INT32_MAX)]


@dataclass(frozen=True)
class InferenceCall:
    """One cell's call. `region` is the canonical region id, sent as
    region_preference; `prompt` is sent exactly as given."""

    model: str
    prompt: str
    region: str
    temperature: float
    max_tokens: int
    # Names the cell, so a router that honours it answers a repeat of a call
    # that already succeeded (its reply lost with a killed agent, say)
    # without running the model again.
    idempotency_key: str = ""


class _Lenient(BaseModel):
    # The router adds fields over time; only the ones we use are checked.
    model_config = ConfigDict(extra="ignore")


class _FailureBody(_Lenient):
    code: str | None = None
    stage: str | None = None
    message: str | None = None
    transient: StrictBool | None = None
    region: str | None = None
    provider: str | None = None
    provider_type: str | None = None
    http_status: int | None = None


class _OutputSummary(_Lenient):
    tokens_generated: Count | None = None


class _ProviderReceipt(_Lenient):
    output: _OutputSummary | None = None


class _Metadata(_Lenient):
    provider_type: str | None = None
    region: str | None = None
    model: str | None = None
    receipt: dict[str, Any] | None = None
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None


class _InferenceReply(_Lenient):
    success: StrictBool
    response: str | None = None
    error: str | None = None
    error_code: str | None = None
    failure: _FailureBody | None = None
    provider_used: str | None = None
    inference_time: float | None = None
    cost_estimate: float | None = None
    metadata: _Metadata | None = None


@dataclass(frozen=True)
class RawReply:
    status: int
    body: bytes
    too_large: bool
    retry_after: str
    location: str = ""


@dataclass
class CallProgress:
    """What is known of a call that may still fail before its body is read."""

    status: int = 0
    # This call opened its connection (else it reused a kept-alive one).
    new_connection: bool = False
    request_sent: bool = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: follows the exchange's steps."""
        if event == "connection.connect_tcp.complete":
            self.new_connection = True
        elif event == "http11.send_request_body.complete":
            self.request_sent = True


@dataclass(frozen=True)
class _Parsed:
    """A validated reply and metadata.receipt as sorted-key JSON ("" if none)."""

    reply: _InferenceReply
    receipt_json: str


@dataclass(frozen=True)
class Outcome:
    result: AttemptResult
    output: str
    failure: receipt_pb2.Failure | None


def excerpt(body: bytes, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The start of a (blanked) body as one line, for a failure message."""
    return body_line(body, limit)


def _failure(
    code: str, message: str, *, retryable: bool, stage: str, http_status: int = 0
) -> receipt_pb2.Failure:
    return receipt_pb2.Failure(
        code=code,
        message=message,
        retryable=retryable,
        stage=stage,
        http_status=http_status,
    )


def failed(
    code: str, message: str, *, retryable: bool, stage: str, http_status: int = 0
) -> Outcome:
    return Outcome(
        result=receipt_pb2.ATTEMPT_RESULT_FAILURE,
        output="",
        failure=_failure(
            code, message, retryable=retryable, stage=stage, http_status=http_status
        ),
    )


def _detail_of(body: bytes, redactor: Redactor) -> str:
    """The human-readable part of an error body, FastAPI-style or not, with
    secrets blanked before it is cut (JSON may have spelled one in escapes
    that the raw body did not show)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return excerpt(body)
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):
            joined = "; ".join(_validation_item(item) for item in detail)
            return redactor.clip(joined, DETAIL_CHARS)
        error = data.get("error")
        if isinstance(error, dict):
            # OpenAI-compatible servers: {"error": {"message": ..., "type": ...}}
            error = error.get("message")
        for value in (detail, error, data.get("message")):
            if isinstance(value, str) and value:
                return redactor.clip(value, DETAIL_CHARS)
    return excerpt(body)


def _validation_item(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
    msg = str(item.get("msg", item))
    return f"{where}: {msg}" if where else msg


def _router_call(status: int, parsed: _Parsed | None) -> receipt_pb2.RouterCall:
    router = receipt_pb2.RouterCall(router_kind=ROUTER_KIND, http_status=status)
    if parsed is None:
        return router
    reply = parsed.reply
    failure = reply.failure
    meta = reply.metadata
    router.provider = (
        reply.provider_used or (failure.provider if failure else None) or ""
    )
    router.provider_type = (
        (meta.provider_type if meta else None)
        or (failure.provider_type if failure else None)
        or ""
    )
    router.offline = router.provider_type == "offline"
    router.inference_seconds = reply.inference_time or 0.0
    router.cost_estimate = reply.cost_estimate or 0.0
    if meta is None:
        return router
    router.served_region = meta.region or ""
    router.served_model = meta.model or ""
    if meta.prompt_tokens is not None:
        router.prompt_tokens = meta.prompt_tokens
    if meta.completion_tokens is not None:
        router.completion_tokens = meta.completion_tokens
    if meta.receipt is not None:
        router.provider_receipt_json = parsed.receipt_json
        if meta.completion_tokens is None:
            generated = _tokens_generated(meta.receipt)
            if generated is not None:
                router.completion_tokens = generated
    return router


def _tokens_generated(receipt: dict[str, Any]) -> int | None:
    """The provider's own receipt is the only token count some providers give;
    a malformed one is kept verbatim but contributes no count."""
    try:
        summary = _ProviderReceipt.model_validate(receipt).output
    except ValidationError:
        return None
    return summary.tokens_generated if summary is not None else None


def status_outcome(raw: RawReply, url: str, redactor: Redactor) -> Outcome:
    """A non-2xx status: the body is only read for a human-readable detail."""
    status = raw.status
    detail = _detail_of(raw.body, redactor)
    if status == 503:
        return failed(
            ROUTER_UNAVAILABLE,
            f"router unavailable (HTTP 503): {detail}",
            retryable=True,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 429:
        wait = f"; Retry-After: {raw.retry_after}" if raw.retry_after else ""
        return failed(
            ROUTER_RATE_LIMITED,
            f"router rate limited the call (HTTP 429){wait}: {detail}",
            retryable=True,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status >= 500:
        return failed(
            f"ROUTER_HTTP_{status}",
            f"router failed with HTTP {status}{permanent_note(status)}: {detail}",
            retryable=may_pass(status),
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 422:
        return failed(
            ROUTER_REJECTED_REQUEST,
            f"router rejected the request (HTTP 422): {detail}",
            retryable=False,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 404:
        return failed(
            ROUTER_NOT_FOUND,
            f"router answered HTTP 404 for POST {url}: the router URL or path is "
            f"probably wrong ({detail})",
            retryable=False,
            stage=STAGE_CALL,
            http_status=status,
        )
    if 300 <= status < 400:
        target = (
            f"to {redactor.clip(raw.location, LOCATION_CHARS)!r}"
            if raw.location
            else "with no Location header"
        )
        return failed(
            f"ROUTER_HTTP_{status}",
            f"router answered POST {url} with redirect HTTP {status} {target}; "
            "redirects are not followed: set the router URL to where the router "
            f"answers ({detail})",
            retryable=False,
            stage=STAGE_CALL,
            http_status=status,
        )
    # Other 4xx, and 1xx.
    return failed(
        f"ROUTER_HTTP_{status}",
        f"router answered HTTP {status}: {detail}",
        retryable=False,
        stage=STAGE_CALL,
        http_status=status,
    )


def _success_outcome(
    call: InferenceCall, reply: _InferenceReply, status: int
) -> Outcome:
    output = reply.response or ""
    meta = reply.metadata
    served_region = meta.region if meta else None
    served_model = meta.model if meta else None
    for field, value in (("region", served_region), ("model", served_model)):
        if not value:
            # Without it the router's word that the requested cell was served
            # cannot be checked, so it is not a result for the cell.
            return failed(
                ROUTER_REPLY_INVALID,
                f"router reported success without metadata.{field}; cannot prove "
                f"which {field} served the call",
                retryable=False,
                stage=STAGE_REPLY,
                http_status=status,
            )
    provider = reply.provider_used or "unknown provider"
    if served_region != call.region:
        model_note = (
            f"; it also served model {served_model!r} instead of {call.model!r}"
            if served_model != call.model
            else ""
        )
        return Outcome(
            result=receipt_pb2.ATTEMPT_RESULT_REGION_MISMATCH,
            output=output,
            failure=_failure(
                REGION_MISMATCH,
                f"requested region {call.region!r} but the router served the call "
                f"in region {served_region!r} ({provider}){model_note}",
                retryable=False,
                stage=STAGE_REPLY,
                http_status=status,
            ),
        )
    if served_model != call.model:
        return Outcome(
            result=receipt_pb2.ATTEMPT_RESULT_MODEL_MISMATCH,
            output=output,
            failure=_failure(
                MODEL_MISMATCH,
                f"requested model {call.model!r} but the router served model "
                f"{served_model!r} ({provider})",
                retryable=False,
                stage=STAGE_REPLY,
                http_status=status,
            ),
        )
    return Outcome(
        result=receipt_pb2.ATTEMPT_RESULT_SUCCESS, output=output, failure=None
    )


def _reported_failure_outcome(reply: _InferenceReply, status: int) -> Outcome:
    failure = reply.failure or _FailureBody()
    code = failure.code or reply.error_code or ROUTER_REPORTED_FAILURE
    message = failure.message or reply.error or "no message given"
    context = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("stage", failure.stage),
            ("provider", failure.provider or reply.provider_used),
            ("region", failure.region),
            ("provider HTTP", failure.http_status),
        )
        if value
    )
    return failed(
        code,
        f"router reported failure {code}: {message}"
        + (f" ({context})" if context else ""),
        # Only the router knows; without its word a retry is not promised.
        retryable=bool(failure.transient),
        stage=STAGE_CALL,
        http_status=status,
    )


@dataclass(frozen=True)
class _Unreadable:
    """Why a reply body is not a usable reply. A body cut short (not JSON) is
    usually transient; a complete body of the wrong shape would come again."""

    problem: str
    retryable: bool


def _parse(raw: RawReply) -> _Parsed | _Unreadable:
    """The validated reply, or why it is not one."""
    try:
        data = json.loads(raw.body)
    except ValueError:
        return _Unreadable(f"is not JSON: {excerpt(raw.body)!r}", retryable=True)
    except RecursionError:
        return _Unreadable(
            f"is nested too deeply to read: {excerpt(raw.body)!r}", retryable=False
        )
    try:
        # Text a receipt cannot carry (lone surrogates) is refused here.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        reply = _InferenceReply.model_validate(data)
    except UnicodeEncodeError:
        return _Unreadable("holds text that is not valid Unicode", retryable=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return _Unreadable(
            f"does not match the reply schema ({where}: {first['msg']}): "
            f"{excerpt(raw.body)!r}",
            retryable=False,
        )
    except RecursionError:
        return _Unreadable(
            f"is nested too deeply to read: {excerpt(raw.body)!r}", retryable=False
        )
    receipt = reply.metadata.receipt if reply.metadata else None
    if receipt is None:
        return _Parsed(reply, "")
    return _Parsed(reply, json.dumps(receipt, sort_keys=True))


def interpret(
    call: InferenceCall, raw: RawReply, url: str, redactor: Redactor
) -> tuple[Outcome, receipt_pb2.RouterCall]:
    if raw.too_large:
        outcome = failed(
            ROUTER_REPLY_TOO_LARGE,
            f"router reply is larger than {MAX_REPLY_BYTES} bytes",
            retryable=False,
            stage=STAGE_REPLY,
            http_status=raw.status,
        )
        return outcome, _router_call(raw.status, None)
    parsed = _parse(raw)
    readable = parsed if isinstance(parsed, _Parsed) else None
    # An error status may still carry router metadata worth recording.
    router = _router_call(raw.status, readable)
    if not 200 <= raw.status < 300:
        return status_outcome(raw, url, redactor), router
    if isinstance(parsed, _Unreadable):
        outcome = failed(
            ROUTER_REPLY_INVALID,
            f"router reply (HTTP {raw.status}) {parsed.problem}",
            retryable=parsed.retryable,
            stage=STAGE_REPLY,
            http_status=raw.status,
        )
        return outcome, router
    if parsed.reply.success:
        return _success_outcome(call, parsed.reply, raw.status), router
    return _reported_failure_outcome(parsed.reply, raw.status), router
