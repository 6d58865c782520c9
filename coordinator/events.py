"""Fan-out of a job's progress events to everyone watching it.

A watcher that falls behind loses intermediate events rather than making the
coordinator buffer without bound; the final result is always delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from beacon.v1 import coordinator_service_pb2

logger = logging.getLogger(__name__)

WATCHER_QUEUE_SIZE = 4096


class JobEvents:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._watchers: set[asyncio.Queue[coordinator_service_pb2.JobEvent | None]] = (
            set()
        )
        self._closed = False

    def publish(self, event: coordinator_service_pb2.JobEvent) -> None:
        for queue in self._watchers:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.debug("watcher behind, event dropped job_id=%s", self.job_id)

    def close(self) -> None:
        """No more events; watchers end after what they have queued."""
        self._closed = True
        for queue in self._watchers:
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()

    async def watch(self) -> AsyncIterator[coordinator_service_pb2.JobEvent]:
        queue: asyncio.Queue[coordinator_service_pb2.JobEvent | None] = asyncio.Queue(
            WATCHER_QUEUE_SIZE
        )
        if self._closed:
            return
        self._watchers.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._watchers.discard(queue)
