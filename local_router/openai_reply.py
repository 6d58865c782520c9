"""Reading an OpenAI-compatible chat completion body, trusting nothing in it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from beacon.one_line import body_line

logger = logging.getLogger(__name__)


class MalformedReplyError(ValueError):
    """The upstream answered 2xx with a body that is not a chat completion.

    A body that is not JSON at all (a proxy's error page) may be gone on the
    next try; JSON in another shape is what the server answers, and asking
    again will not change it. An agent calling the server directly decides
    the same way.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Completion:
    """The parts of a chat completion the router reports."""

    content: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


def parse_completion(body: bytes) -> Completion:
    """Parse a chat completion, or raise MalformedReplyError saying what is wrong."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedReplyError(
            f"upstream reply is not JSON ({exc}): {snippet(body)}", transient=True
        ) from exc
    if not isinstance(data, dict):
        raise MalformedReplyError("upstream reply is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReplyError("upstream reply has no choices")
    first = choices[0]
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise MalformedReplyError("upstream reply has no choices[0].message.content")
    model = data.get("model")
    # Without the served model the answer cannot be attributed to a model.
    if not isinstance(model, str) or not model:
        raise MalformedReplyError("upstream reply does not name the model it used")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        content=content,
        model=model,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def snippet(body: bytes, limit: int = 200) -> str:
    """The start of a body as one printable line, for error messages."""
    return body_line(body, limit) or "(empty body)"


def _count(value: object) -> int | None:
    # bool is an int subclass; a true/false token count is not a count.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
