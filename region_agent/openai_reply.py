"""Reading an OpenAI-compatible chat completion into the same Outcome and
RouterCall as a hybrid router reply.

Such a server (Ollama, vLLM, llama.cpp's server, a LiteLLM proxy) runs in
the agent's own region by configuration, so the region served is the
agent's; the model served is the one the reply names, and it must be the
one asked for. Nothing here performs I/O.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from beacon.redaction import Redactor
from beacon.v1 import receipt_pb2
from region_agent.router_reply import (
    MAX_REPLY_BYTES,
    MODEL_MISMATCH,
    ROUTER_REPLY_INVALID,
    ROUTER_REPLY_TOO_LARGE,
    STAGE_REPLY,
    Count,
    InferenceCall,
    Outcome,
    RawReply,
    excerpt,
    failed,
    status_outcome,
)

logger = logging.getLogger(__name__)

OPENAI_KIND: Final = "openai-compatible"
# Kept from the reply in the receipt, so a call can be traced at the server.
RECEIPT_FIELDS: Final = ("id", "created", "model", "system_fingerprint")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Message(_Lenient):
    content: str


class _Choice(_Lenient):
    message: _Message
    finish_reason: str | None = None


class _Usage(_Lenient):
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None


class _Completion(_Lenient):
    model: str
    choices: list[_Choice]
    usage: _Usage | None = None


@dataclass(frozen=True)
class Backend:
    """Where calls go: `provider` names the server in receipts; `model_map`
    gives the name the server knows a Beacon model by."""

    url: str
    provider: str
    model_map: dict[str, str]
    # Blanks the server's API key out of what it says.
    redactor: Redactor

    def model_for(self, beacon_model: str) -> str:
        return self.model_map.get(beacon_model, beacon_model)


def chat_payload(call: InferenceCall, backend: Backend) -> dict[str, Any]:
    # The prompt (system prompt included) goes as one user message, exactly
    # as the hybrid router receives it, so the receipt's prompt is what ran.
    return {
        "model": backend.model_for(call.model),
        "messages": [{"role": "user", "content": call.prompt}],
        "temperature": call.temperature,
        "max_tokens": call.max_tokens,
        "stream": False,
    }


def interpret_completion(
    call: InferenceCall, raw: RawReply, backend: Backend
) -> tuple[Outcome, receipt_pb2.RouterCall]:
    router = receipt_pb2.RouterCall(
        router_kind=OPENAI_KIND,
        http_status=raw.status,
        provider=backend.provider,
        provider_type=OPENAI_KIND,
    )
    if raw.too_large:
        return failed(
            ROUTER_REPLY_TOO_LARGE,
            f"chat completion is larger than {MAX_REPLY_BYTES} bytes",
            retryable=False,
            stage=STAGE_REPLY,
            http_status=raw.status,
        ), router
    if not 200 <= raw.status < 300:
        return status_outcome(raw, backend.url, backend.redactor), router
    parsed = _parse(raw)
    if isinstance(parsed, Outcome):
        return parsed, router
    completion, data = parsed

    router.served_region = call.region
    router.served_model = completion.model
    router.provider_receipt_json = json.dumps(
        {key: data[key] for key in RECEIPT_FIELDS if key in data}, sort_keys=True
    )
    if completion.usage is not None:
        if completion.usage.prompt_tokens is not None:
            router.prompt_tokens = completion.usage.prompt_tokens
        if completion.usage.completion_tokens is not None:
            router.completion_tokens = completion.usage.completion_tokens
    output = completion.choices[0].message.content
    asked = backend.model_for(call.model)
    if completion.model != asked:
        return Outcome(
            result=receipt_pb2.ATTEMPT_RESULT_MODEL_MISMATCH,
            output=output,
            failure=receipt_pb2.Failure(
                code=MODEL_MISMATCH,
                message=f"asked {backend.provider} for model {asked!r} (Beacon "
                f"model {call.model!r}) but it answered with {completion.model!r}",
                retryable=False,
                stage=STAGE_REPLY,
                http_status=raw.status,
            ),
        ), router
    # The receipt names the Beacon model the server was asked for under its
    # own name; the server's name stays in the provider receipt.
    router.served_model = call.model
    return Outcome(
        result=receipt_pb2.ATTEMPT_RESULT_SUCCESS, output=output, failure=None
    ), router


def _parse(raw: RawReply) -> tuple[_Completion, dict[str, Any]] | Outcome:
    """The validated completion and its raw fields, or the failure it is."""
    try:
        data = json.loads(raw.body)
    except (ValueError, RecursionError):
        # A body cut short is usually transient.
        return _invalid(raw, f"is not JSON: {excerpt(raw.body)!r}", retryable=True)
    if not isinstance(data, dict):
        return _invalid(raw, "is not a JSON object", retryable=False)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        completion = _Completion.model_validate(data)
    except UnicodeEncodeError:
        return _invalid(raw, "holds text that is not valid Unicode", retryable=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return _invalid(
            raw,
            f"is not a chat completion ({where}: {first['msg']}): "
            f"{excerpt(raw.body)!r}",
            retryable=False,
        )
    if not completion.choices:
        return _invalid(raw, "has no choices", retryable=False)
    if not completion.model:
        return _invalid(raw, "does not name the model that answered", retryable=False)
    return completion, data


def _invalid(raw: RawReply, problem: str, *, retryable: bool) -> Outcome:
    return failed(
        ROUTER_REPLY_INVALID,
        f"chat completion (HTTP {raw.status}) {problem}",
        retryable=retryable,
        stage=STAGE_REPLY,
        http_status=raw.status,
    )
