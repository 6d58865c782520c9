"""The agent's Prometheus metrics, in the agent's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

# Router calls take from milliseconds (offline) to minutes (a cold start).
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300)

CELLS = Counter(
    "beacon_agent_cells",
    "Cell attempts this agent answered, by result.",
    ["region", "model", "result"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "beacon_agent_cells_in_flight",
    "Cell attempts being executed now.",
    ["region"],
    registry=REGISTRY,
)
ROUTER_CALL_SECONDS = Histogram(
    "beacon_agent_router_call_seconds",
    "Latency of one router call, by region served and result.",
    ["region", "result"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RECEIPTS_NOT_KEPT = Counter(
    "beacon_agent_receipts_not_stored",
    "Receipts that could not be written to the receipts file (a full disk, "
    "most often); their cells were answered with a retryable failure.",
    registry=REGISTRY,
)
