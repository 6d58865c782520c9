"""The region agent's client for the hybrid router's HTTP API.

It sends one call under an overall deadline and hands the reply to
router_reply for interpretation; no answer in time and no connection become
failures here. The client never retries: the coordinator owns retries, and
this layer only says whether a failure is retryable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
from google.protobuf.message import Message

from beacon import __version__, tracing
from beacon.channels import ROUTER_CLIENT_KEEPALIVE_SECONDS
from beacon.http_lanes import (
    CONNECT_SECONDS,
    ConnectionLanes,
    connect_only_timeouts,
    json_post,
    one_connection_transport,
    send,
)
from beacon.redaction import Redactor
from beacon.statuses import AttemptResult
from beacon.v1 import receipt_pb2
from region_agent import connection_failures
from region_agent.reply_body import BodyTooLarge, read_bounded
from region_agent.router_reply import (
    MAX_REPLY_BYTES,
    ROUTER_KIND,
    ROUTER_REPLY_INVALID,
    ROUTER_TIMEOUT,
    ROUTER_UNREACHABLE,
    STAGE_CALL,
    STAGE_REPLY,
    CallProgress,
    InferenceCall,
    Outcome,
    RawReply,
    excerpt,
    failed,
    interpret,
)

__all__ = [
    "HttpRouterClient",
    "HybridRouterClient",
    "InferenceCall",
    "RouterClient",
    "RouterReply",
]

logger = logging.getLogger(__name__)

INFERENCE_PATH: Final = "/inference"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
HEALTH_PATH: Final = "/health"
HEALTH_TIMEOUT_SECONDS: Final = 5.0
# Health checks that run at once; a further one waits for a lane.
HEALTH_CONNECTIONS: Final = 4
_HEALTHY_STATUSES: Final = frozenset({"ok", "healthy", "up", "pass", "serving"})


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


class HttpRouterClient:
    """One JSON POST per call under an overall deadline, for any HTTP API.

    A subclass names its paths, builds the request body and reads the reply.
    """

    kind: str = ROUTER_KIND
    call_path: str = INFERENCE_PATH
    health_path: str = HEALTH_PATH

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        connect_seconds: float = CONNECT_SECONDS,
    ) -> None:
        # Never repeated in a receipt or a log, even if the server echoes it.
        self._redactor = Redactor(secrets)
        self._connect_seconds = connect_seconds
        self._timeouts = connect_only_timeouts(connect_seconds)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"router URL must start with http:// or https://: {base_url!r}"
            )
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1: {max_connections}")
        self._base_url = base_url.rstrip("/")
        self._inference_url = self._base_url + self.call_path
        self._health_url = self._base_url + self.health_path
        self._headers = {
            "accept": "application/json",
            # Replies are small and local; a compressed one would only be
            # decompressed before its size could be checked.
            "accept-encoding": "identity",
            "user-agent": f"beacon-agent/{__version__}",
            **(headers or {}),
        }
        # Loading the trusted certificates takes tens of milliseconds; every
        # lane shares one context instead of loading its own.
        tls_context = httpx.create_ssl_context()

        def make_lane() -> httpx.AsyncBaseTransport:
            if transport is not None:
                return transport
            return one_connection_transport(
                tls_context, ROUTER_CLIENT_KEEPALIVE_SECONDS
            )

        self._lanes = ConnectionLanes(make_lane, max_connections)
        # Health has lanes of its own: waiting for a lane behind calls that
        # take their time would report a busy router as unhealthy.
        self._health_lanes = ConnectionLanes(make_lane, HEALTH_CONNECTIONS)

    @property
    def base_url(self) -> str:
        return self._base_url

    def payload(self, call: InferenceCall) -> dict[str, Any]:
        raise NotImplementedError

    def interpret(
        self, call: InferenceCall, raw: RawReply
    ) -> tuple[Outcome, receipt_pb2.RouterCall]:
        raise NotImplementedError

    def reports_healthy(self, body: bytes) -> bool:
        """A 2xx health reply is healthy unless its body says otherwise."""
        return True

    async def infer(self, call: InferenceCall, timeout_seconds: float) -> RouterReply:
        payload = self.payload(call)
        attributes = {"beacon.region": call.region, "beacon.model": call.model}
        started = time.perf_counter()
        with tracing.span("router call", attributes) as span:
            outcome, router = await self._call(call, payload, timeout_seconds)
            outcome = self._scrubbed(outcome, router)
            if outcome.failure is not None:
                span.set_attribute("beacon.failure", outcome.failure.code)
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
    ) -> tuple[Outcome, receipt_pb2.RouterCall]:
        progress = CallProgress()
        if not timeout_seconds > 0:
            # The deadline has passed (or is NaN): do not send what cannot finish.
            return failed(
                ROUTER_TIMEOUT,
                f"no time left for the router call (timeout {timeout_seconds}s); "
                "nothing was sent",
                retryable=True,
                stage=STAGE_CALL,
            ), receipt_pb2.RouterCall(router_kind=self.kind)
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        try:
            async with asyncio.timeout(timeout_seconds):
                raw = await self._post(payload, call.idempotency_key, progress)
        except TimeoutError:
            outcome = failed(
                ROUTER_TIMEOUT,
                f"router gave no complete reply within the {timeout_seconds:g}s "
                f"deadline ({self._inference_url}{_partial(progress)})",
                retryable=True,
                stage=STAGE_CALL,
                http_status=progress.status,
            )
        except httpx.ConnectTimeout:
            outcome = failed(
                ROUTER_UNREACHABLE,
                self._connect_timeout_message(progress),
                retryable=True,
                stage=STAGE_CALL,
            )
        except httpx.TimeoutException as exc:
            outcome = failed(
                ROUTER_TIMEOUT,
                f"router call timed out ({self._inference_url}"
                f"{_partial(progress)}): {exc!r}",
                retryable=True,
                stage=STAGE_CALL,
                http_status=progress.status,
            )
        except httpx.DecodingError as exc:
            outcome = failed(
                ROUTER_REPLY_INVALID,
                f"router reply could not be decoded: {exc}",
                retryable=True,
                stage=STAGE_REPLY,
                http_status=progress.status,
            )
        except httpx.HTTPError as exc:
            time_left = deadline - asyncio.get_running_loop().time()
            failure = await connection_failures.describe(
                exc, self._inference_url, progress, time_left
            )
            outcome = connection_failures.outcome(failure, progress)
        else:
            # Blanked before anything reads it, so that no cut of its text
            # can leave part of a secret behind.
            return self.interpret(call, self._scrubbed_raw(raw))
        return outcome, receipt_pb2.RouterCall(
            router_kind=self.kind, http_status=progress.status
        )

    async def _post(
        self, payload: dict[str, Any], idempotency_key: str, progress: CallProgress
    ) -> RawReply:
        # The router call's trace context goes along, so the router's own
        # spans (and its call log) join the cell's trace.
        headers = tracing.outgoing_headers()
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        request = json_post(
            self._inference_url, payload, {**self._headers, **headers}, self._timeouts
        )
        return await _exchange(self._lanes, request, progress)

    def _connect_timeout_message(self, progress: CallProgress) -> str:
        url, seconds = self._inference_url, self._connect_seconds
        if progress.new_connection and url.startswith("https://"):
            return (
                f"the router at {url} accepted the connection but did not "
                f"answer the TLS handshake within {seconds:g}s: if that port "
                "serves plain HTTP, the router URL should start with http://"
            )
        return f"could not connect to the router at {url} within {seconds:g}s"

    def _scrubbed_raw(self, raw: RawReply) -> RawReply:
        if not self._redactor:
            return raw
        return dataclasses.replace(
            raw,
            body=self._redactor.data(raw.body),
            retry_after=self._redactor.text(raw.retry_after),
            location=self._redactor.text(raw.location),
        )

    def _scrubbed(self, outcome: Outcome, router: receipt_pb2.RouterCall) -> Outcome:
        """`outcome` and `router` with every known secret blanked out of each
        text they carry (a secret decoded from JSON escapes included)."""
        if not self._redactor:
            return outcome
        if outcome.failure is not None:
            _scrub_fields(outcome.failure, self._redactor)
        _scrub_fields(router, self._redactor)
        return dataclasses.replace(outcome, output=self._redactor.text(outcome.output))

    def _log(self, call: InferenceCall, outcome: Outcome, latency: float) -> None:
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
        request = httpx.Request(
            "GET",
            self._health_url,
            headers=self._headers,
            extensions={"timeout": self._timeouts},
        )
        progress = CallProgress()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                raw = await _exchange(self._health_lanes, request, progress)
        except TimeoutError:
            return False, (
                f"no reply from {self._health_url} within {HEALTH_TIMEOUT_SECONDS:g}s"
            )
        except httpx.HTTPError as exc:
            failure = await connection_failures.describe(
                exc, self._health_url, progress, HEALTH_TIMEOUT_SECONDS
            )
            return False, self._redactor.text(failure.message)
        raw = self._scrubbed_raw(raw)
        if raw.too_large:
            return (
                False,
                f"HTTP {raw.status}: reply larger than {MAX_REPLY_BYTES} bytes",
            )
        detail = f"HTTP {raw.status}: {excerpt(raw.body)}"
        if not 200 <= raw.status < 300:
            return False, detail
        return self.reports_healthy(raw.body), detail

    async def aclose(self) -> None:
        await self._lanes.aclose()
        await self._health_lanes.aclose()


class HybridRouterClient(HttpRouterClient):
    """RouterClient for the hybrid router's `POST /inference` API."""

    def payload(self, call: InferenceCall) -> dict[str, Any]:
        return {
            "model": call.model,
            "prompt": call.prompt,
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "region_preference": call.region,
            "cost_priority": True,
        }

    def interpret(
        self, call: InferenceCall, raw: RawReply
    ) -> tuple[Outcome, receipt_pb2.RouterCall]:
        return interpret(call, raw, self._inference_url, self._redactor)

    def reports_healthy(self, body: bytes) -> bool:
        return _reports_healthy(body)


async def _exchange(
    lanes: ConnectionLanes[httpx.AsyncBaseTransport],
    request: httpx.Request,
    progress: CallProgress,
) -> RawReply:
    """Send `request` on a lane and read the whole reply, its body bounded."""
    request.extensions["trace"] = progress.trace
    async with lanes.lend() as lane:
        resp = await send(lane, request)
        try:
            # Known from here on, even if the body never completes.
            progress.status = resp.status_code
            try:
                body = await read_bounded(resp, MAX_REPLY_BYTES)
            except BodyTooLarge:
                return RawReply(resp.status_code, b"", True, "")
            return RawReply(
                resp.status_code,
                body,
                False,
                resp.headers.get("retry-after", ""),
                resp.headers.get("location", ""),
            )
        finally:
            await resp.aclose()


def _scrub_fields(message: Message, redactor: Redactor) -> None:
    """Blank secrets out of every text field of `message`."""
    for field in message.DESCRIPTOR.fields:
        if field.type == field.TYPE_STRING and not field.is_repeated:
            value = getattr(message, field.name)
            setattr(message, field.name, redactor.text(value))


def _partial(progress: CallProgress) -> str:
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
