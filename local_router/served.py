"""What the router sent back for one call, as bytes on the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from beacon.digests import sha256_hex
from local_router.schema import InferenceReply

JSON: str = "application/json"


@dataclass(frozen=True)
class Served:
    """One reply: its status and body, and what the call log records of it."""

    status: int
    body: bytes
    content_type: str
    success: bool
    provider: str | None = None
    served_region: str | None = None
    error_code: str | None = None
    fault: str | None = None
    # Of the answer, so a record can be matched with the receipt made of it.
    answer_sha256: str | None = None

    @classmethod
    def of_reply(cls, reply: InferenceReply, fault: str | None = None) -> Served:
        return cls(
            status=200,
            body=json.dumps(reply.model_dump(mode="json")).encode(),
            content_type=JSON,
            success=reply.success,
            provider=reply.provider_used,
            served_region=reply.metadata.region,
            error_code=reply.error_code,
            fault=fault,
            answer_sha256=None
            if reply.response is None
            else sha256_hex(reply.response),
        )

    @classmethod
    def of_json(
        cls, status: int, body: Any, error_code: str, fault: str | None = None
    ) -> Served:
        return cls(
            status=status,
            body=json.dumps(body).encode(),
            content_type=JSON,
            success=False,
            error_code=error_code,
            fault=fault,
        )
