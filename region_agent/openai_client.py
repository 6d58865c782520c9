"""An agent's client for an OpenAI-compatible `POST /chat/completions` API.

The same transport as the hybrid router's client (one call under an overall
deadline, no retries, bounded reply size); only the request body, the reply
reading and the health path differ.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from beacon.v1 import receipt_pb2
from region_agent.openai_reply import (
    OPENAI_KIND,
    Backend,
    chat_payload,
    interpret_completion,
)
from region_agent.router_client import HttpRouterClient
from region_agent.router_reply import InferenceCall, Outcome, RawReply

logger = logging.getLogger(__name__)


class OpenAIChatClient(HttpRouterClient):
    """RouterClient for a chat-completions server; `base_url` is its API
    base, such as http://127.0.0.1:11434/v1 for Ollama."""

    kind = OPENAI_KIND
    call_path = "/chat/completions"
    health_path = "/models"

    def __init__(
        self,
        base_url: str,
        *,
        model_map: dict[str, str] | None = None,
        api_key: str | None = None,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(
            base_url,
            max_connections=max_connections,
            transport=transport,
            headers=headers,
            secrets=(api_key,) if api_key else (),
        )
        self._backend = Backend(
            url=self._inference_url,
            provider=f"{OPENAI_KIND}@{urlsplit(self._base_url).netloc}",
            model_map=dict(model_map or {}),
            redactor=self._redactor,
        )

    def payload(self, call: InferenceCall) -> dict[str, Any]:
        return chat_payload(call, self._backend)

    def interpret(
        self, call: InferenceCall, raw: RawReply
    ) -> tuple[Outcome, receipt_pb2.RouterCall]:
        return interpret_completion(call, raw, self._backend)
