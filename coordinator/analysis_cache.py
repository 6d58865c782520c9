"""The analyses of finished jobs, kept so that reading a result again does
not redo the comparison of every answer.

A finished job's outcomes never change, so its analysis is computed once
(under the coordinator's thresholds, which are fixed for its lifetime); a
running job's analysis is always computed afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Final

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result

logger = logging.getLogger(__name__)

# Finished jobs whose analysis is kept, the most recently read first.
DEFAULT_CAPACITY: Final = 32

CacheKey = tuple[str, int, int, int]


def _key(result: job_pb2.JobResult) -> CacheKey:
    return (
        result.job_id,
        result.status,
        result.created_at.ToNanoseconds(),
        result.finished_at.ToNanoseconds(),
    )


class AnalysisCache:
    def __init__(
        self, thresholds: AnalysisThresholds, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self._thresholds = thresholds
        self._capacity = capacity
        self._entries: OrderedDict[CacheKey, analysis_pb2.JobAnalysis] = OrderedDict()
        self.computed = 0

    async def analysis_of(
        self, result: job_pb2.JobResult, *, finished: bool
    ) -> analysis_pb2.JobAnalysis:
        """The analysis of `result`, kept if the job is `finished`; callers
        copy it, never change it."""
        key = _key(result) if finished else None
        if key is not None and key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        # Reads every answer: kept off the event loop.
        analysis = await asyncio.to_thread(analyze_result, result, self._thresholds)
        self.computed += 1
        if key is not None:
            self._entries[key] = analysis
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        logger.debug("analysed job_id=%s cached=%s", result.job_id, key is not None)
        return analysis
