"""The coordinator's Prometheus metrics, in the coordinator's own registry."""

from __future__ import annotations

import time
import weakref
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

P = ParamSpec("P")
T = TypeVar("T")

CELLS = Counter(
    "beacon_cells",
    "Cells that reached their final outcome; a completed one says how its "
    "answer reads (answered, refused, empty), the others 'none'.",
    ["region", "model", "outcome", "classification"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "beacon_cell_retries",
    "Attempts scheduled again after a retryable failure.",
    ["region", "code"],
    registry=REGISTRY,
)
RECEIPTS_REJECTED = Counter(
    "beacon_receipts_rejected",
    "Receipts refused by verification, by reason.",
    ["region", "reason"],
    registry=REGISTRY,
)
STORE_WRITE_SECONDS = Histogram(
    "beacon_store_write_seconds",
    "Time to make one write to the job store durable.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
STORE_WRITE_FAILURES = Counter(
    "beacon_store_write_failures",
    "Writes to the job store that failed (a full disk, most often), by kind.",
    ["kind"],
    registry=REGISTRY,
)
STORE_WRITABLE = Gauge(
    "beacon_store_writable",
    "1 while the job store takes writes, 0 while they fail.",
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "beacon_job_duration_seconds",
    "Time a job ran in this coordinator, from start (or resume) to its end.",
    ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
    registry=REGISTRY,
)


class _Stream(Protocol):
    address: str

    @property
    def in_flight(self) -> Any: ...


class InFlight(Collector):
    """Cells sent on each open stream and not yet answered, read at scrape
    time from the streams themselves, so it can never drift."""

    def __init__(self) -> None:
        self._streams: weakref.WeakKeyDictionary[_Stream, str] = (
            weakref.WeakKeyDictionary()
        )

    def watch(self, stream: _Stream, region: str) -> None:
        self._streams[stream] = region

    def forget(self, stream: _Stream) -> None:
        self._streams.pop(stream, None)

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "beacon_cells_in_flight",
            "Cells sent to an agent and not yet answered, per stream.",
            labels=["region", "agent"],
        )
        totals: Tally[tuple[str, str]] = Tally()
        for stream, region in list(self._streams.items()):
            totals[(region, stream.address)] += len(stream.in_flight)
        for (region, agent), count in sorted(totals.items()):
            family.add_metric([region, agent], count)
        yield family


IN_FLIGHT = InFlight()
REGISTRY.register(IN_FLIGHT)


def timed_write(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Records how long each call of a store write method takes."""
    histogram = STORE_WRITE_SECONDS.labels(fn.__name__)

    @wraps(fn)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    return timed


async def timed_job(run: Awaitable[T], status_name: Callable[[T], str]) -> T:
    started = time.monotonic()
    status = await run
    JOB_SECONDS.labels(status_name(status)).observe(time.monotonic() - started)
    return status
