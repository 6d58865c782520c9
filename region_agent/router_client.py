"""The region agent's client for the hybrid router's HTTP API.

Every way the router is known to answer (a validated success, a success from
another region or model, a reported failure, an HTTP error status, a body
that is not JSON, no answer in time, no connection) becomes a RouterReply
with a stable failure code. The client never retries: the coordinator owns
retries, and this layer only says whether a failure is retryable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from beacon.channels import ROUTER_CLIENT_KEEPALIVE_SECONDS
from beacon.statuses import AttemptResult
from beacon.v1 import receipt_pb2

logger = logging.getLogger(__name__)

ROUTER_KIND: Final = "hybrid"
INFERENCE_PATH: Final = "/inference"
HEALTH_PATH: Final = "/health"
HEALTH_TIMEOUT_SECONDS: Final = 5.0
# A reply larger than this is not an answer we can sign and ship.
MAX_REPLY_BYTES: Final = 16 * 1024 * 1024
BODY_EXCERPT_CHARS: Final = 200
DETAIL_CHARS: Final = 500
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

_HEALTHY_STATUSES: Final = frozenset({"ok", "healthy", "up", "pass", "serving"})

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


@dataclass(frozen=True)
class RouterReply:
    """What the call produced. `result` is a receipt_pb2.AttemptResult value;
    `output` is "" unless the router answered (a mismatched answer is kept for
    audit); `failure` is None only on success; `latency_seconds` is the wall
    time of the HTTP call."""

    result: AttemptResult
    output: str
    failure: receipt_pb2.Failure | None
    router: receipt_pb2.RouterCall
    latency_seconds: float


class RouterClient(Protocol):
    kind: str

    async def infer(self, call: InferenceCall, timeout_seconds: float) -> RouterReply:
        """Run one inference; report every router problem in the reply."""
        ...

    async def health(self) -> tuple[bool, str]:
        """(healthy, detail) of the router; never raises."""
        ...

    async def aclose(self) -> None: ...


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
class _RawReply:
    status: int
    body: bytes
    too_large: bool
    retry_after: str


@dataclass
class _Progress:
    """What is known of a call that may still fail before its body is read."""

    status: int = 0


@dataclass(frozen=True)
class _Parsed:
    """A validated reply and metadata.receipt as sorted-key JSON ("" if none)."""

    reply: _InferenceReply
    receipt_json: str


@dataclass(frozen=True)
class _Outcome:
    result: AttemptResult
    output: str
    failure: receipt_pb2.Failure | None


def _excerpt(body: bytes, limit: int = BODY_EXCERPT_CHARS) -> str:
    return body[: limit * 4].decode("utf-8", errors="replace")[:limit]


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


def _failed(
    code: str, message: str, *, retryable: bool, stage: str, http_status: int = 0
) -> _Outcome:
    return _Outcome(
        result=receipt_pb2.ATTEMPT_RESULT_FAILURE,
        output="",
        failure=_failure(
            code, message, retryable=retryable, stage=stage, http_status=http_status
        ),
    )


def _detail_of(body: bytes) -> str:
    """The human-readable part of an error body, FastAPI-style or not."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _excerpt(body)
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):
            return "; ".join(_validation_item(item) for item in detail)[:DETAIL_CHARS]
        for value in (detail, data.get("error"), data.get("message")):
            if isinstance(value, str) and value:
                return value[:DETAIL_CHARS]
    return _excerpt(body)


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


def _status_outcome(raw: _RawReply, url: str) -> _Outcome:
    """A non-2xx status: the body is only read for a human-readable detail."""
    status = raw.status
    detail = _detail_of(raw.body)
    if status == 503:
        return _failed(
            ROUTER_UNAVAILABLE,
            f"router unavailable (HTTP 503): {detail}",
            retryable=True,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 429:
        wait = f"; Retry-After: {raw.retry_after}" if raw.retry_after else ""
        return _failed(
            ROUTER_RATE_LIMITED,
            f"router rate limited the call (HTTP 429){wait}: {detail}",
            retryable=True,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status >= 500:
        return _failed(
            f"ROUTER_HTTP_{status}",
            f"router failed with HTTP {status}: {detail}",
            retryable=True,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 422:
        return _failed(
            ROUTER_REJECTED_REQUEST,
            f"router rejected the request (HTTP 422): {detail}",
            retryable=False,
            stage=STAGE_CALL,
            http_status=status,
        )
    if status == 404:
        return _failed(
            ROUTER_NOT_FOUND,
            f"router answered HTTP 404 for POST {url}: the router URL or path is "
            f"probably wrong ({detail})",
            retryable=False,
            stage=STAGE_CALL,
            http_status=status,
        )
    # Other 4xx, and 1xx/3xx (redirects are not followed: the URL is wrong).
    return _failed(
        f"ROUTER_HTTP_{status}",
        f"router answered HTTP {status}: {detail}",
        retryable=False,
        stage=STAGE_CALL,
        http_status=status,
    )


def _success_outcome(
    call: InferenceCall, reply: _InferenceReply, status: int
) -> _Outcome:
    output = reply.response or ""
    meta = reply.metadata
    served_region = meta.region if meta else None
    served_model = meta.model if meta else None
    for field, value in (("region", served_region), ("model", served_model)):
        if not value:
            # Without it the router's word that the requested cell was served
            # cannot be checked, so it is not a result for the cell.
            return _failed(
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
        return _Outcome(
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
        return _Outcome(
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
    return _Outcome(
        result=receipt_pb2.ATTEMPT_RESULT_SUCCESS, output=output, failure=None
    )


def _reported_failure_outcome(reply: _InferenceReply, status: int) -> _Outcome:
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
    return _failed(
        code,
        f"router reported failure {code}: {message}"
        + (f" ({context})" if context else ""),
        # Only the router knows; without its word a retry is not promised.
        retryable=bool(failure.transient),
        stage=STAGE_CALL,
        http_status=status,
    )


def _parse(raw: _RawReply) -> tuple[_Parsed | None, str]:
    """The validated reply, or None and why it is not one."""
    try:
        data = json.loads(raw.body)
    except ValueError:
        return None, f"is not JSON: {_excerpt(raw.body)!r}"
    except RecursionError:
        return None, f"is nested too deeply to read: {_excerpt(raw.body)!r}"
    try:
        reply = _InferenceReply.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return None, (
            f"does not match the reply schema ({where}: {first['msg']}): "
            f"{_excerpt(raw.body)!r}"
        )
    except RecursionError:
        return None, f"is nested too deeply to read: {_excerpt(raw.body)!r}"
    receipt = reply.metadata.receipt if reply.metadata else None
    if receipt is None:
        return _Parsed(reply, ""), ""
    try:
        return _Parsed(reply, json.dumps(receipt, sort_keys=True)), ""
    except (ValueError, RecursionError):
        return None, "has a provider receipt that cannot be serialised again"


def _interpret(
    call: InferenceCall, raw: _RawReply, url: str
) -> tuple[_Outcome, receipt_pb2.RouterCall]:
    if raw.too_large:
        outcome = _failed(
            ROUTER_REPLY_TOO_LARGE,
            f"router reply is larger than {MAX_REPLY_BYTES} bytes",
            retryable=False,
            stage=STAGE_REPLY,
            http_status=raw.status,
        )
        return outcome, _router_call(raw.status, None)
    parsed, problem = _parse(raw)
    # An error status may still carry router metadata worth recording.
    router = _router_call(raw.status, parsed)
    if not 200 <= raw.status < 300:
        return _status_outcome(raw, url), router
    if parsed is None:
        # A cut-off body from a proxy is usually transient.
        outcome = _failed(
            ROUTER_REPLY_INVALID,
            f"router reply (HTTP {raw.status}) {problem}",
            retryable=True,
            stage=STAGE_REPLY,
            http_status=raw.status,
        )
        return outcome, router
    if parsed.reply.success:
        return _success_outcome(call, parsed.reply, raw.status), router
    return _reported_failure_outcome(parsed.reply, raw.status), router


class HybridRouterClient:
    """RouterClient for the hybrid router's `POST /inference` API."""

    kind: str = ROUTER_KIND

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"router URL must start with http:// or https://: {base_url!r}"
            )
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1: {max_connections}")
        self._base_url = base_url.rstrip("/")
        self._inference_url = self._base_url + INFERENCE_PATH
        self._health_url = self._base_url + HEALTH_PATH
        self._client = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=ROUTER_CLIENT_KEEPALIVE_SECONDS,
            ),
            # The overall deadline in infer() bounds every call; socket
            # timeouts would only cut a legitimate cold start short.
            timeout=httpx.Timeout(None),
            follow_redirects=False,
            # The configured URL is the router; no proxy from the environment.
            trust_env=False,
            headers={"accept": "application/json"},
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    async def infer(self, call: InferenceCall, timeout_seconds: float) -> RouterReply:
        payload = {
            "model": call.model,
            "prompt": call.prompt,
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "region_preference": call.region,
            "cost_priority": True,
        }
        started = time.perf_counter()
        outcome, router = await self._call(call, payload, timeout_seconds)
        latency = time.perf_counter() - started
        self._log(call, outcome, latency)
        return RouterReply(
            result=outcome.result,
            output=outcome.output,
            failure=outcome.failure,
            router=router,
            latency_seconds=latency,
        )

    async def _call(
        self, call: InferenceCall, payload: dict[str, Any], timeout_seconds: float
    ) -> tuple[_Outcome, receipt_pb2.RouterCall]:
        progress = _Progress()
        if not timeout_seconds > 0:
            # The deadline has passed (or is NaN): do not send what cannot finish.
            return _failed(
                ROUTER_TIMEOUT,
                f"no time left for the router call (timeout {timeout_seconds}s); "
                "nothing was sent",
                retryable=True,
                stage=STAGE_CALL,
            ), receipt_pb2.RouterCall(router_kind=ROUTER_KIND)
        try:
            async with asyncio.timeout(timeout_seconds):
                raw = await self._post(payload, progress)
        except TimeoutError:
            outcome = _failed(
                ROUTER_TIMEOUT,
                f"router gave no complete reply within the {timeout_seconds:g}s "
                f"deadline ({self._inference_url}{_partial(progress)})",
                retryable=True,
                stage=STAGE_CALL,
                http_status=progress.status,
            )
        except httpx.TimeoutException as exc:
            outcome = _failed(
                ROUTER_TIMEOUT,
                f"router call timed out ({self._inference_url}"
                f"{_partial(progress)}): {exc!r}",
                retryable=True,
                stage=STAGE_CALL,
                http_status=progress.status,
            )
        except httpx.DecodingError as exc:
            outcome = _failed(
                ROUTER_REPLY_INVALID,
                f"router reply could not be decoded: {exc}",
                retryable=True,
                stage=STAGE_REPLY,
                http_status=progress.status,
            )
        except httpx.HTTPError as exc:
            outcome = _failed(
                ROUTER_UNREACHABLE,
                f"cannot reach the router at {self._inference_url}"
                f"{_partial(progress)}: {exc!r}",
                retryable=True,
                stage=STAGE_CALL,
                http_status=progress.status,
            )
        else:
            return _interpret(call, raw, self._inference_url)
        return outcome, receipt_pb2.RouterCall(
            router_kind=ROUTER_KIND, http_status=progress.status
        )

    async def _post(self, payload: dict[str, Any], progress: _Progress) -> _RawReply:
        async with self._client.stream(
            "POST", self._inference_url, json=payload
        ) as resp:
            # Known from here on, even if the body never completes.
            progress.status = resp.status_code
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    return _RawReply(resp.status_code, b"", True, "")
                chunks.append(chunk)
            return _RawReply(
                resp.status_code,
                b"".join(chunks),
                False,
                resp.headers.get("retry-after", ""),
            )

    def _log(self, call: InferenceCall, outcome: _Outcome, latency: float) -> None:
        if outcome.failure is None:
            logger.debug(
                "router call ok region=%s model=%s latency=%.3fs",
                call.region,
                call.model,
                latency,
            )
            return
        logger.warning(
            "router call failed code=%s retryable=%s http_status=%d region=%s "
            "model=%s latency=%.3fs: %s",
            outcome.failure.code,
            outcome.failure.retryable,
            outcome.failure.http_status,
            call.region,
            call.model,
            latency,
            outcome.failure.message,
        )

    async def health(self) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                resp = await self._client.get(self._health_url)
        except TimeoutError:
            return False, (
                f"no reply from {self._health_url} within {HEALTH_TIMEOUT_SECONDS:g}s"
            )
        except httpx.HTTPError as exc:
            return False, f"cannot reach {self._health_url}: {exc!r}"
        detail = f"HTTP {resp.status_code}: {_excerpt(resp.content)}"
        if not resp.is_success:
            return False, detail
        return _reports_healthy(resp.content), detail

    async def aclose(self) -> None:
        await self._client.aclose()


def _partial(progress: _Progress) -> str:
    if progress.status == 0:
        return ""
    return f"; HTTP {progress.status} headers arrived but the body did not complete"


def _reports_healthy(body: bytes) -> bool:
    """A 2xx health reply is healthy unless its body says otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return True
    if not isinstance(data, dict):
        return True
    flag = data.get("healthy")
    if isinstance(flag, bool):
        return flag
    status = data.get("status")
    if isinstance(status, str):
        return status.strip().lower() in _HEALTHY_STATUSES
    return True
