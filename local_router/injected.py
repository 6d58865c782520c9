"""The replies of injected faults, shaped like the real router's bad answers."""

from __future__ import annotations

import asyncio
from typing import Final

from beacon.regions import KNOWN_REGIONS
from local_router.faults import FaultShape
from local_router.offline import offline_answer
from local_router.providers import ProviderFailure
from local_router.routing import RegionRouter
from local_router.schema import InferenceReply, InferenceRequest, ReplyMetadata
from local_router.served import Served

# A hang ends when the caller gives up; this only bounds a caller that never does.
MAX_HANG_SECONDS: Final = 600.0
SLOW_SECONDS: Final = 3.0
INJECTED_PROVIDER_TYPE: Final = "offline"


async def injected_reply(
    shape: FaultShape, request: InferenceRequest, router: RegionRouter
) -> Served:
    """The reply for `shape`, built on the router's honest behaviour."""
    if shape == "transient":
        failure = ProviderFailure(
            "PROVIDER_HTTP_502", "provider returned HTTP 502", True, 502
        )
        return Served.of_reply(await router.fail(request, failure), shape)
    if shape == "permanent":
        failure = ProviderFailure(
            "MODEL_NOT_SERVED",
            f"model {request.model} is not served by this provider",
            False,
            400,
        )
        return Served.of_reply(await router.fail(request, failure), shape)
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
        return Served.of_reply(await router.route(request), shape)
    if shape == "other-region":
        return Served.of_reply(
            _served_elsewhere(await router.route(request), request), shape
        )
    await asyncio.sleep(MAX_HANG_SECONDS)
    return Served.of_json(504, {"detail": "Gateway Timeout"}, "HTTP_504", shape)


def _served_elsewhere(
    reply: InferenceReply, request: InferenceRequest
) -> InferenceReply:
    """A success, as if a provider of another region had served the call."""
    asked = request.region_preference
    other = next(r for r in KNOWN_REGIONS if r != asked)
    return reply.model_copy(
        update={
            "success": True,
            "response": offline_answer(other, request.model, request.prompt),
            "error": None,
            "error_code": None,
            "failure": None,
            "provider_used": f"offline-{other}",
            "metadata": ReplyMetadata(
                provider_type=INJECTED_PROVIDER_TYPE, region=other, model=request.model
            ),
        }
    )
