"""The replies of injected faults, shaped like the real router's bad answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from beacon.regions import KNOWN_REGIONS
from local_router.faults import FaultShape
from local_router.offline import offline_answer
from local_router.schema import (
    FailureInfo,
    InferenceReply,
    InferenceRequest,
    ReplyMetadata,
)
from local_router.served import Served

# A hang ends when the caller gives up; this only bounds a caller that never does.
MAX_HANG_SECONDS: Final = 600.0
SLOW_SECONDS: Final = 3.0
INJECTED_PROVIDER_TYPE: Final = "offline"


async def injected_reply(
    shape: FaultShape,
    request: InferenceRequest,
    honest: Callable[[], Awaitable[InferenceReply]],
) -> Served:
    """The reply for `shape`; `honest` produces the reply without a fault."""
    region = request.region_preference or "unknown"
    if shape == "transient":
        return Served.of_reply(
            _failed(request, region, "PROVIDER_HTTP_502", transient=True), shape
        )
    if shape == "permanent":
        return Served.of_reply(
            _failed(request, region, "MODEL_NOT_SERVED", transient=False), shape
        )
    if shape == "unavailable":
        return Served.of_json(
            503, {"detail": "No healthy providers available"}, "HTTP_503", shape
        )
    if shape == "invalid":
        detail = [
            {
                "type": "value_error",
                "loc": ["body", "prompt"],
                "msg": "Value error, the request was refused as malformed",
                "input": request.model,
            }
        ]
        return Served.of_json(422, {"detail": detail}, "HTTP_422", shape)
    if shape == "not-found":
        return Served.of_json(404, {"detail": "Not Found"}, "HTTP_404", shape)
    if shape == "not-json":
        return Served(
            status=200,
            body=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            content_type="text/html",
            success=False,
            error_code="NOT_JSON",
            fault=shape,
        )
    if shape == "slow":
        await asyncio.sleep(SLOW_SECONDS)
        return Served.of_reply(await honest(), shape)
    if shape == "other-region":
        return Served.of_reply(_served_elsewhere(await honest(), request), shape)
    await asyncio.sleep(MAX_HANG_SECONDS)
    return Served.of_json(504, {"detail": "Gateway Timeout"}, "HTTP_504", shape)


def _failed(
    request: InferenceRequest, region: str, code: str, *, transient: bool
) -> InferenceReply:
    message = (
        "provider returned HTTP 502"
        if transient
        else f"model {request.model} is not served by this provider"
    )
    provider = f"offline-{region}"
    return InferenceReply(
        success=False,
        response=None,
        error=message,
        error_code=code,
        failure=FailureInfo(
            code=code,
            stage="provider_call",
            message=message,
            transient=transient,
            region=region,
            provider=provider,
            provider_type=INJECTED_PROVIDER_TYPE,
            model=request.model,
            timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            http_status=502 if transient else 400,
        ),
        provider_used=provider,
        inference_time=0.0,
        cost_estimate=0.0,
        metadata=ReplyMetadata(
            provider_type=INJECTED_PROVIDER_TYPE, region=region, model=request.model
        ),
    )


def _served_elsewhere(
    reply: InferenceReply, request: InferenceRequest
) -> InferenceReply:
    """A success, as if a provider of another region had served the call."""
    asked = request.region_preference
    other = next(r for r in KNOWN_REGIONS if r != asked)
    started = time.perf_counter()
    return reply.model_copy(
        update={
            "success": True,
            "response": offline_answer(other, request.model, request.prompt),
            "error": None,
            "error_code": None,
            "failure": None,
            "provider_used": f"offline-{other}",
            "inference_time": reply.inference_time + time.perf_counter() - started,
            "metadata": ReplyMetadata(
                provider_type=INJECTED_PROVIDER_TYPE, region=other, model=request.model
            ),
        }
    )
