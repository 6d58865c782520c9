"""An append-only JSONL record of every /inference call the router received."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from local_router.schema import InferenceRequest
from local_router.served import Served

logger = logging.getLogger(__name__)


class CallLog:
    """Appends one JSON line per call; each line is flushed before returning.

    A call is recorded however it ends: answered (`replayed` when the reply
    of an earlier call with the same idempotency key was sent again, so no
    model ran), or `abandoned` when the caller hung up before the reply.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Opened once: every call appends to it, so no open per call.
        self._handle = path.open("a", encoding="utf-8")

    def record(
        self,
        request: InferenceRequest,
        served: Served | None,
        *,
        idempotency_key: str | None = None,
        replayed: bool = False,
        fault: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "model": request.model,
            "prompt": request.prompt,
            "region_preference": request.region_preference,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "provider": served.provider if served else None,
            "served_region": served.served_region if served else None,
            "success": served.success if served else False,
            "error_code": served.error_code if served else None,
            "answer_sha256": served.answer_sha256 if served else None,
            "http_status": served.status if served else None,
            "fault": fault,
            "idempotency_key": idempotency_key,
            "replayed": replayed,
            "abandoned": served is None,
            # The caller's W3C trace context, to find the call in its trace.
            "traceparent": traceparent,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        if self._handle.closed:
            # A call cut off by shutdown after the log was closed.
            logger.warning("call log closed; a call was not recorded")
            return
        # Written on the event loop: an append of one line to the page cache
        # takes microseconds, while handing it to a thread held every reply
        # back behind a thread switch (milliseconds on a busy router).
        self._handle.write(line)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
