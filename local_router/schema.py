"""Request and reply bodies of the hybrid router's HTTP API."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

logger = logging.getLogger(__name__)

COMPONENT = "local_router"

# Metadata keys that are left out of a reply when their value is unknown.
_OPTIONAL_METADATA = frozenset({"prompt_tokens", "completion_tokens", "upstream_model"})


class InferenceRequest(BaseModel):
    """Body of `POST /inference`."""

    model: str = Field(min_length=1)
    prompt: str
    temperature: float = Field(default=0.1, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    region_preference: str | None = None
    cost_priority: bool = True


class FailureInfo(BaseModel):
    """Why a call failed, and whether trying again may help."""

    code: str
    stage: str
    component: str = COMPONENT
    message: str
    transient: bool
    region: str | None
    provider: str | None
    provider_type: str | None
    model: str
    timestamp: str
    http_status: int | None = None


class ReplyMetadata(BaseModel):
    """What actually served the call; all None when nothing did."""

    provider_type: str | None
    region: str | None
    model: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    upstream_model: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unknown_optionals(
        self, handler: SerializerFunctionWrapHandler
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {
            key: value
            for key, value in data.items()
            if value is not None or key not in _OPTIONAL_METADATA
        }


class InferenceReply(BaseModel):
    """Body of every `/inference` reply the router itself produces."""

    success: bool
    response: str | None
    error: str | None
    error_code: str | None
    failure: FailureInfo | None
    provider_used: str | None
    inference_time: float
    cost_estimate: float
    metadata: ReplyMetadata
