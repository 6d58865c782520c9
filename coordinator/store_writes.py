"""Whether the job store takes writes, shared by every job of a coordinator.

A write that fails (a full disk, most often) holds back sending: each
region stream waits, with growing waits, before it tries to record its next
cell as sent, instead of reconnecting in a loop. The first write that
succeeds lets them all go on.

Writes differ in size: on a nearly full disk, recording a cell as sent (a
few bytes, often in place) may succeed while storing its receipt fails. So
the store counts as writable again only once each kind of write that failed
has succeeded, or the end of an attempt (its receipt, the largest
write) has been stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from beacon.write_outage import WriteOutage
from coordinator import metrics

logger = logging.getLogger(__name__)

# The kinds of write a job makes while it runs.
SENT = "attempt_sent"
ATTEMPT_END = "attempt_end"


class StoreWrites:
    def __init__(self, where: Path | str) -> None:
        self.outage = WriteOutage(
            "job store",
            where,
            "no cell is sent and no receipt is accepted until it can be; "
            "receipts not stored leave their cells open, sent again later",
        )
        self.outage.watch(lambda writable: metrics.STORE_WRITABLE.set(writable))
        metrics.STORE_WRITABLE.set(1)
        self._recovered = asyncio.Event()
        self._next_try = 0.0
        # The kinds of write that failed since the store last took them all.
        self._failing: set[str] = set()

    def failed(self, kind: str, error: BaseException) -> None:
        metrics.STORE_WRITE_FAILURES.labels(kind).inc()
        self._failing.add(kind)
        self.outage.failed(error)
        self._recovered.clear()
        self._next_try = _now() + self.outage.retry_in()

    def succeeded(self, kind: str) -> None:
        if kind == ATTEMPT_END:
            self._failing.clear()
        self._failing.discard(kind)
        if self._failing:
            return
        self.outage.succeeded()
        self._recovered.set()

    async def turn(self) -> None:
        """Returns at once while writes succeed; while they fail, once the
        next try is due or a write has succeeded."""
        while not self.outage.writable and (left := self._next_try - _now()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recovered.wait(), left)


def _now() -> float:
    return asyncio.get_running_loop().time()
