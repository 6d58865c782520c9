"""Default timeouts, one hierarchy: router call < cell attempt < job.

A cold start of a hosted model takes 60-150 s, so the router call default
leaves room for it, and the attempt adds room for queueing and signing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ROUTER_CALL_SECONDS = 180.0
DEFAULT_CELL_ATTEMPT_SECONDS = 240.0
DEFAULT_JOB_SECONDS = 3600.0
# The local router gives up on an upstream model server a little before the
# agent gives up on the router, so the agent sees the upstream's own error.
DEFAULT_UPSTREAM_SECONDS = 170.0
MAX_JOB_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class TimeoutHierarchy:
    router_call_seconds: float = DEFAULT_ROUTER_CALL_SECONDS
    cell_attempt_seconds: float = DEFAULT_CELL_ATTEMPT_SECONDS
    job_seconds: float = DEFAULT_JOB_SECONDS

    def is_ordered(self) -> bool:
        return (
            0 < self.router_call_seconds < self.cell_attempt_seconds < self.job_seconds
        )
