"""The FastAPI app that speaks the hybrid router's HTTP API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from local_router.call_log import CallLog
from local_router.config import RouterConfig
from local_router.providers import Provider, build_providers
from local_router.routing import RegionRouter
from local_router.schema import InferenceRequest

logger = logging.getLogger(__name__)


def create_app(config: RouterConfig) -> FastAPI:
    """Build the router app; raises ConfigError if a provider cannot be set up."""
    call_log = _open_call_log(config)
    router = RegionRouter(build_providers(config))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("serving regions %s", ", ".join(router.regions))
        try:
            yield
        finally:
            await router.aclose()

    app = FastAPI(title="Beacon local router", lifespan=lifespan)

    @app.post("/inference")
    async def inference(request: InferenceRequest) -> JSONResponse:
        reply = await router.route(request)
        logger.info(
            "model=%s region=%s provider=%s success=%s error_code=%s",
            request.model,
            request.region_preference,
            reply.provider_used,
            reply.success,
            reply.error_code,
        )
        if call_log is not None:
            await call_log.record(request, reply)
        return JSONResponse(reply.model_dump(mode="json"))

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

    return app


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
