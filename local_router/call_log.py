"""An append-only JSONL record of every /inference call the router answered."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from local_router.schema import InferenceReply, InferenceRequest

logger = logging.getLogger(__name__)


class CallLog:
    """Appends one JSON line per call; each line is flushed before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Appends run in worker threads; one at a time keeps lines whole.
        self._lock = threading.Lock()

    async def record(self, request: InferenceRequest, reply: InferenceReply) -> None:
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "model": request.model,
            "prompt": request.prompt,
            "region_preference": request.region_preference,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "provider": reply.provider_used,
            "served_region": reply.metadata.region,
            "success": reply.success,
            "error_code": reply.error_code,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        # File I/O stays off the event loop.
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
