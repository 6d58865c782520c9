"""Providers that answer a region's calls: offline, or an OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Protocol

import httpx

from beacon.http_status import may_pass, permanent_note
from beacon.offline_labels import SCRIPT_LABEL, labelled
from beacon.redaction import Redactor
from beacon.secret_files import check_header_secret
from local_router.config import ConfigError, RouterConfig, UpstreamConfig
from local_router.offline import offline_answer
from local_router.openai_reply import MalformedReplyError, parse_completion, snippet
from local_router.script import (
    SCRIPTED_FAILURE,
    OfflineScript,
    load_script,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderFailure:
    """A call the provider could not answer."""

    code: str
    message: str
    transient: bool
    http_status: int | None = None


@dataclass(frozen=True)
class ProviderAnswer:
    """What a provider returns: an answer, or a failure (never both).

    `model` is the model to report as having served the call.
    """

    model: str
    response: str | None = None
    failure: ProviderFailure | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    upstream_model: str | None = None
    cost_estimate: float = 0.0


class Provider(Protocol):
    """One provider, bound to exactly one region."""

    @property
    def name(self) -> str: ...

    @property
    def provider_type(self) -> str: ...

    @property
    def region(self) -> str: ...

    async def infer(
        self, model: str, prompt: str, temperature: float, max_tokens: int
    ) -> ProviderAnswer: ...

    async def aclose(self) -> None: ...


class OfflineProvider:
    """Answers without any model, deterministically and labelled as offline."""

    provider_type = "offline"

    def __init__(
        self,
        region: str,
        latency_seconds: float = 0.0,
        script: OfflineScript | None = None,
    ) -> None:
        self.region = region
        self.name = f"offline-{region}"
        self._latency_seconds = latency_seconds
        self._script = script

    async def infer(
        self, model: str, prompt: str, temperature: float, max_tokens: int
    ) -> ProviderAnswer:
        if self._latency_seconds > 0:
            await asyncio.sleep(self._latency_seconds)
        scripted = (
            self._script.find(self.region, model, prompt) if self._script else None
        )
        if scripted is None:
            return ProviderAnswer(
                model=model, response=offline_answer(self.region, model, prompt)
            )
        if scripted.fail is not None:
            failure = ProviderFailure(SCRIPTED_FAILURE, scripted.fail, transient=False)
            return ProviderAnswer(model=model, failure=failure)
        return ProviderAnswer(
            model=model, response=labelled(SCRIPT_LABEL, scripted.answer or "")
        )

    async def aclose(self) -> None:
        return None


class OpenAICompatibleProvider:
    """Forwards a region's calls to `{url}/chat/completions`."""

    provider_type = "openai-compatible"

    def __init__(
        self, region: str, upstream: UpstreamConfig, api_key: str | None = None
    ) -> None:
        self.region = region
        self.name = f"openai-{region}"
        self._upstream = upstream
        self._endpoint = f"{upstream.url}/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Never repeated in a reply or a log, even if the upstream echoes it.
        self._redactor = Redactor([api_key])
        # trust_env=False: the call goes to exactly this URL, never via a proxy
        # or credentials picked up from the environment.
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(upstream.timeout_seconds),
            trust_env=False,
        )

    async def infer(
        self, model: str, prompt: str, temperature: float, max_tokens: int
    ) -> ProviderAnswer:
        upstream_model = self._upstream.model_map.get(model, model)
        body = {
            "model": upstream_model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        try:
            # Socket timeouts alone do not bound a slowly trickling reply.
            async with asyncio.timeout(self._upstream.timeout_seconds):
                reply = await self._client.post(self._endpoint, json=body)
        except (TimeoutError, httpx.TimeoutException):
            return self._failed(
                model,
                "UPSTREAM_TIMEOUT",
                f"upstream {self._endpoint} gave no reply within "
                f"{self._upstream.timeout_seconds:g} s",
                transient=True,
            )
        except httpx.RequestError as exc:
            return self._failed(
                model,
                "UPSTREAM_UNREACHABLE",
                f"upstream {self._endpoint} unreachable: {type(exc).__name__}: {exc}",
                transient=True,
            )
        return self._read_reply(model, upstream_model, reply)

    def _read_reply(
        self, model: str, upstream_model: str, reply: httpx.Response
    ) -> ProviderAnswer:
        status = reply.status_code
        # Blanked before any of it is cut, so no cut leaves part of the key.
        content = self._redactor.data(reply.content)
        if not reply.is_success:
            # Server errors and rate limits may pass; other refusals will not.
            return self._failed(
                model,
                f"UPSTREAM_HTTP_{status}",
                f"upstream returned HTTP {status}{permanent_note(status)}: "
                f"{snippet(content)}",
                transient=may_pass(status),
                http_status=status,
            )
        try:
            completion = parse_completion(content)
        except MalformedReplyError as exc:
            return self._failed(
                model,
                "UPSTREAM_BAD_REPLY",
                str(exc),
                transient=exc.transient,
                http_status=status,
            )
        # Report the Beacon id only when the upstream served what was asked for,
        # so a substituted model is visible to whoever checks metadata.model.
        answered = self._redactor.text(completion.model)
        served = model if answered == upstream_model else answered
        if served != model:
            logger.warning(
                "upstream %s served model %r when asked for %r (beacon model %r)",
                self.name,
                answered,
                upstream_model,
                model,
            )
        return ProviderAnswer(
            model=served,
            response=self._redactor.text(completion.content),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            upstream_model=answered,
        )

    def _failed(
        self,
        model: str,
        code: str,
        message: str,
        *,
        transient: bool,
        http_status: int | None = None,
    ) -> ProviderAnswer:
        message = self._redactor.text(message)
        logger.warning("%s failed: %s: %s", self.name, code, message)
        return ProviderAnswer(
            model=model,
            failure=ProviderFailure(code, message, transient, http_status),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def build_providers(config: RouterConfig) -> dict[str, Provider]:
    """One provider per served region; an upstream replaces the offline one."""
    # Keys first, so a missing one fails before any HTTP client exists.
    keys = {region: _api_key(region, up) for region, up in config.upstreams.items()}
    script = load_script(config.script) if config.script else None
    providers: dict[str, Provider] = {
        region: OfflineProvider(region, config.offline_latency_seconds, script)
        for region in config.regions
    }
    for region, upstream in config.upstreams.items():
        providers[region] = OpenAICompatibleProvider(region, upstream, keys[region])
    return providers


def _api_key(region: str, upstream: UpstreamConfig) -> str | None:
    if upstream.api_key_env is None:
        return None
    key = os.environ.get(upstream.api_key_env)
    if not key:
        raise ConfigError(
            f"the API key for the {region} upstream is read from "
            f"${upstream.api_key_env}, which is not set"
        )
    try:
        return check_header_secret(key, f"${upstream.api_key_env}")
    except ValueError as exc:
        raise ConfigError(f"the API key for the {region} upstream: {exc}") from exc
