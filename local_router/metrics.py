"""The local router's Prometheus metrics, in the router's own registry."""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Histogram

from local_router.schema import InferenceRequest
from local_router.served import Served

REGISTRY = CollectorRegistry()

CALLS = Counter(
    "beacon_router_calls",
    "POST /inference calls answered, by region asked for and outcome.",
    ["region", "model", "outcome"],
    registry=REGISTRY,
)
CALL_SECONDS = Histogram(
    "beacon_router_call_seconds",
    "Time to answer one POST /inference, by region asked for.",
    ["region"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300),
    registry=REGISTRY,
)


def call_answered(
    body: InferenceRequest,
    served: Served | None,
    seconds: float,
    regions: Collection[str],
) -> None:
    """`served` is None for a call its caller abandoned. A region the router
    does not serve counts as "other", so callers cannot grow the labels."""
    asked = body.region_preference
    region = asked if asked in regions else "other"
    if served is None:
        outcome = "abandoned"
    else:
        outcome = "success" if served.success else (served.error_code or "error")
    CALLS.labels(region, body.model, outcome).inc()
    CALL_SECONDS.labels(region).observe(seconds)
