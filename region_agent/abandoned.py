"""Jobs whose coordinator called them off, and the executions they still have."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Final

logger = logging.getLogger(__name__)

# (job id, job token): the token keeps one run of a job apart from another
# that reuses its id, and lets only the job's coordinator abandon it.
JobKey = tuple[str, str]

# Abandoned jobs remembered, so cells already on their way are refused.
REMEMBERED_JOBS: Final = 10_000


class AbandonedJobs:
    def __init__(self, remembered: int = REMEMBERED_JOBS) -> None:
        self._remembered = remembered
        self._abandoned: OrderedDict[JobKey, None] = OrderedDict()
        self._running: dict[JobKey, set[asyncio.Task[None]]] = {}

    def track(self, job: JobKey, execution: asyncio.Task[None]) -> None:
        """Follow `execution` of `job` until it ends, so it can be abandoned."""
        executions = self._running.setdefault(job, set())
        executions.add(execution)

        def ended(task: asyncio.Task[None]) -> None:
            executions.discard(task)
            if not executions and self._running.get(job) is executions:
                del self._running[job]

        execution.add_done_callback(ended)

    def abandon(self, job: JobKey) -> int:
        """Cancel the job's executions under way; returns how many."""
        self._abandoned[job] = None
        self._abandoned.move_to_end(job)
        while len(self._abandoned) > self._remembered:
            self._abandoned.popitem(last=False)
        executions = list(self._running.get(job, ()))
        for execution in executions:
            # Cancelling the task cancels its router call's HTTP request.
            execution.cancel()
        return len(executions)

    def has(self, job: JobKey) -> bool:
        return job in self._abandoned
