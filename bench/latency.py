"""What Beacon adds to a cell after the router has answered it.

The router's call log stamps each reply (`ts`, milliseconds, this host's
clock). A cell is matched to its router call by what was asked: region,
model and prompt, which differ for every cell of a scenario.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from beacon.cells import Cell

logger = logging.getLogger(__name__)

CallKey = tuple[str, str, str]


@dataclass(frozen=True)
class Spread:
    samples: int
    p50_ms: float
    p99_ms: float


def read_reply_times(call_log: Path, first: int, end: int) -> dict[CallKey, float]:
    """When the router answered each successful call logged on lines
    `first` to `end` (excluded), counted from 0."""
    replied: dict[CallKey, float] = {}
    with call_log.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not first <= number < end or not line.strip():
                continue
            call = json.loads(line)
            if not call["success"] or call["replayed"] or call["abandoned"]:
                continue
            key = (call["region_preference"], call["model"], call["prompt"])
            replied[key] = datetime.fromisoformat(call["ts"]).timestamp()
    return replied


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def timed_delays_ms(
    cells: Iterable[Cell],
    replied: Mapping[CallKey, float],
    reached: Mapping[str, float],
) -> list[tuple[float, float]]:
    """(router reply, `reached[cell]` - router reply in ms) for the cells
    with both."""
    delays: list[tuple[float, float]] = []
    for cell in cells:
        at = reached.get(cell.cell_id)
        reply = replied.get((cell.region, cell.model, cell.prompt))
        if at is not None and reply is not None:
            delays.append((reply, (at - reply) * 1000))
    return delays


def delays_ms(
    cells: Iterable[Cell],
    replied: Mapping[CallKey, float],
    reached: Mapping[str, float],
) -> list[float]:
    """`reached[cell] - router reply`, in ms, for the cells with both."""
    return [delay for _, delay in timed_delays_ms(cells, replied, reached)]


@dataclass(frozen=True)
class WaveSplit:
    """Cells slower than a threshold, counted apart for each round's first
    `wave` replies: every call in flight is sent at once at the start, so
    with a router that answers each after the same latency those replies
    come back together, and wait for one another."""

    wave: int
    first_cells: int
    first_over: int
    later_cells: int
    later_over: int
    later: Spread | None


def split_first_wave(
    rounds: Iterable[list[tuple[float, float]]], wave: int, threshold_ms: float
) -> WaveSplit:
    """`rounds` holds each round's (reply time, delay) pairs."""
    first: list[float] = []
    later: list[float] = []
    for timed in rounds:
        in_order = [delay for _, delay in sorted(timed)]
        first += in_order[:wave]
        later += in_order[wave:]
    return WaveSplit(
        wave=wave,
        first_cells=len(first),
        first_over=sum(delay > threshold_ms for delay in first),
        later_cells=len(later),
        later_over=sum(delay > threshold_ms for delay in later),
        later=spread(later),
    )


def spread(delays: list[float]) -> Spread | None:
    if len(delays) < 2:
        return None
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return Spread(len(delays), cuts[49], cuts[98])
