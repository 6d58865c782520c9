"""Choosing the provider of the requested region, and shaping the reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from local_router.providers import Provider, ProviderAnswer, ProviderFailure
from local_router.schema import (
    FailureInfo,
    InferenceReply,
    InferenceRequest,
    ReplyMetadata,
)

logger = logging.getLogger(__name__)


class RegionRouter:
    """Serves each region only from its own provider, never from another's."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        for region, provider in providers.items():
            if provider.region != region:
                raise ValueError(
                    f"provider {provider.name} of region {provider.region} "
                    f"was registered for region {region}"
                )
        self._providers = dict(providers)

    @property
    def regions(self) -> list[str]:
        return list(self._providers)

    def providers(self, region: str | None = None) -> list[Provider]:
        """All providers, or only those of `region` (none for an unknown one)."""
        if region is None:
            return list(self._providers.values())
        provider = self._providers.get(region)
        return [] if provider is None else [provider]

    async def route(self, request: InferenceRequest) -> InferenceReply:
        """Answer `request` from the provider of its region_preference."""
        started = time.perf_counter()
        # cost_priority has nothing to choose between: one provider per region.
        region = request.region_preference
        served = ", ".join(self._providers)
        if region is None:
            return _routing_failure(
                request,
                "REGION_REQUIRED",
                f"region_preference is required; this router serves: {served}",
                started,
            )
        provider = self._providers.get(region)
        if provider is None:
            return _routing_failure(
                request,
                "NO_PROVIDER_FOR_REGION",
                f"no provider for region {region!r}; this router serves: {served} "
                "and never answers from another region",
                started,
            )
        answer = await provider.infer(
            request.model, request.prompt, request.temperature, request.max_tokens
        )
        return _provider_reply(request, provider, answer, started)

    async def fail(
        self, request: InferenceRequest, failure: ProviderFailure
    ) -> InferenceReply:
        """The reply when the requested region's provider fails with
        `failure`: exactly what a real provider failure looks like."""
        started = time.perf_counter()
        provider = self._providers.get(request.region_preference or "")
        if provider is None:
            return await self.route(request)
        answer = ProviderAnswer(model=request.model, failure=failure)
        return _provider_reply(request, provider, answer, started)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


def _provider_reply(
    request: InferenceRequest,
    provider: Provider,
    answer: ProviderAnswer,
    started: float,
) -> InferenceReply:
    failure = answer.failure
    metadata = ReplyMetadata(
        provider_type=provider.provider_type,
        region=provider.region,
        model=answer.model,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        upstream_model=answer.upstream_model,
    )
    info = None
    if failure is not None:
        info = FailureInfo(
            code=failure.code,
            stage="provider_call",
            message=failure.message,
            transient=failure.transient,
            region=provider.region,
            provider=provider.name,
            provider_type=provider.provider_type,
            model=request.model,
            timestamp=_now(),
            http_status=failure.http_status,
        )
    return InferenceReply(
        success=failure is None,
        response=answer.response if failure is None else None,
        error=None if failure is None else failure.message,
        error_code=None if failure is None else failure.code,
        failure=info,
        provider_used=provider.name,
        inference_time=time.perf_counter() - started,
        cost_estimate=answer.cost_estimate,
        metadata=metadata,
    )


def _routing_failure(
    request: InferenceRequest, code: str, message: str, started: float
) -> InferenceReply:
    # Asking again cannot help: the router's regions are fixed at start-up.
    logger.warning("refused call for model %s: %s", request.model, message)
    return InferenceReply(
        success=False,
        response=None,
        error=message,
        error_code=code,
        failure=FailureInfo(
            code=code,
            stage="routing",
            message=message,
            transient=False,
            region=request.region_preference,
            provider=None,
            provider_type=None,
            model=request.model,
            timestamp=_now(),
        ),
        provider_used=None,
        inference_time=time.perf_counter() - started,
        cost_estimate=0.0,
        metadata=ReplyMetadata(provider_type=None, region=None, model=None),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
