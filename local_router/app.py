"""The FastAPI app that speaks the hybrid router's HTTP API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from beacon import tracing
from beacon.tracing import TRACEPARENT
from local_router import metrics
from local_router.call_log import CallLog
from local_router.config import RouterConfig
from local_router.faults import FaultPlan, FaultRule, FaultRules
from local_router.injected import injected_reply
from local_router.providers import Provider, build_providers
from local_router.replays import IDEMPOTENCY_HEADER, ReplayCache
from local_router.routing import RegionRouter
from local_router.schema import InferenceRequest
from local_router.served import Served

logger = logging.getLogger(__name__)

# Status of a reply nobody reads: the caller hung up first.
CLIENT_CLOSED_REQUEST = 499
SERVICE_UNAVAILABLE = 503


def create_app(config: RouterConfig) -> FastAPI:
    """Build the router app; raises ConfigError if a provider cannot be set up."""
    call_log = _open_call_log(config)
    router = RegionRouter(build_providers(config))
    faults = FaultPlan(config.fault_rates, config.fault_seed)
    replays = ReplayCache()
    served_regions = frozenset(router.regions)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("serving regions %s", ", ".join(router.regions))
        try:
            yield
        finally:
            await router.aclose()
            if call_log is not None:
                call_log.close()

    app = FastAPI(title="Beacon local router", lifespan=lifespan)

    if tracing.enabled():
        # Only when on: the middleware hands every reply through a task and
        # a stream of its own, which costs each call a little time.
        @app.middleware("http")
        async def traced(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            # A span per call, under the caller's router-call span if it sent one.
            parent = request.headers.get(TRACEPARENT, "")
            attributes = {"http.route": request.url.path}
            with tracing.span(f"router {request.url.path}", attributes, parent):
                return await call_next(request)

    @app.post("/inference")
    async def inference(body: InferenceRequest, request: Request) -> Response:
        started = time.perf_counter()
        key = request.headers.get(IDEMPOTENCY_HEADER)
        chosen: list[str | None] = [None]

        async def produce() -> Served:
            shape = chosen[0] = faults.choose(body)
            if shape is not None:
                return await injected_reply(shape, body, router)
            return Served.of_reply(await router.route(body))

        work = asyncio.create_task(replays.run(key, produce))
        gone = asyncio.create_task(_caller_gone(request))

        def abandon(why: str) -> None:
            # Nothing the call would have produced is kept.
            work.cancel()
            metrics.call_answered(
                body, None, time.perf_counter() - started, served_regions
            )
            logger.info(
                "abandoned call (%s) model=%s region=%s",
                why,
                body.model,
                body.region_preference,
            )
            if call_log is not None:
                call_log.record(
                    body,
                    None,
                    idempotency_key=key,
                    fault=chosen[0],
                    traceparent=request.headers.get(TRACEPARENT),
                )

        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Only the server cancels a call: it was still unanswered when
            # the grace period of the router's shutdown ended.
            gone.cancel()
            abandon("the router is stopping")
            return JSONResponse(
                {"detail": "the router stopped before this call was answered"},
                status_code=SERVICE_UNAVAILABLE,
            )
        gone.cancel()
        if not work.done():
            abandon("the caller gave up")
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        served, replayed = work.result()
        metrics.call_answered(
            body, served, time.perf_counter() - started, served_regions
        )
        logger.debug(
            "model=%s region=%s provider=%s success=%s error_code=%s fault=%s "
            "replayed=%s",
            body.model,
            body.region_preference,
            served.provider,
            served.success,
            served.error_code,
            served.fault,
            replayed,
        )
        if call_log is not None:
            call_log.record(
                body,
                served,
                idempotency_key=key,
                replayed=replayed,
                fault=None if replayed else served.fault,
                traceparent=request.headers.get(TRACEPARENT),
            )
        return Response(served.body, served.status, media_type=served.content_type)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "regions": router.regions,
            "providers": [p.name for p in router.providers()],
        }

    @app.get("/providers")
    async def providers(region: str | None = None) -> list[dict[str, str]]:
        return [_describe(p) for p in router.providers(region)]

    if config.fault_control:

        @app.post("/faults")
        async def add_faults(rules: FaultRules) -> list[FaultRule]:
            faults.add(rules.rules)
            return faults.pending()

        @app.get("/faults")
        async def pending_faults() -> list[FaultRule]:
            return faults.pending()

        @app.delete("/faults")
        async def clear_faults() -> list[FaultRule]:
            faults.clear()
            return faults.pending()

    return app


async def _caller_gone(request: Request) -> None:
    """Returns once the caller has closed the connection."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _describe(provider: Provider) -> dict[str, str]:
    return {
        "name": provider.name,
        "provider_type": provider.provider_type,
        "region": provider.region,
    }


def _open_call_log(config: RouterConfig) -> CallLog | None:
    if config.call_log is None:
        return None
    config.call_log.parent.mkdir(parents=True, exist_ok=True)
    return CallLog(config.call_log)
