"""The benchmark's printed report: each measure beside its target."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bench.latency import Spread
from bench.scenario import ScenarioResult

logger = logging.getLogger(__name__)

ADDED_P50_TARGET_MS = 5.0
ADDED_P99_TARGET_MS = 25.0
MEMORY_GROWTH_TARGET = 1.5


def verdict(value: float, target: float) -> str:
    return f"target <= {target:g}  {'PASS' if value <= target else 'MISS'}"


def scenario_lines(result: ScenarioResult) -> list[str]:
    scenario, beacon = result.scenario, result.beacon
    lines = [
        f"{scenario.cells:,} cells ({len(scenario.regions)} regions x "
        f"{len(scenario.models)} models x {scenario.questions:,} questions), "
        f"router latency {scenario.latency_seconds * 1000:g} ms, "
        f"{scenario.per_region} calls in flight per region",
    ]
    if result.baseline is not None:
        base = result.baseline
        lines.append(
            f"  baseline (one asyncio loop, httpx): {base.seconds:8.2f} s  "
            f"{base.succeeded / base.seconds:8.1f} cells/s  "
            f"({base.succeeded} answered, {base.failed} failed)"
        )
    lines.append(
        f"  beacon (gRPC, signed, verified, stored): {beacon.seconds:8.2f} s  "
        f"{beacon.final / beacon.seconds:8.1f} cells/s  "
        f"({beacon.completed} completed of {beacon.final} final)"
    )
    if result.baseline is not None:
        ratio = beacon.seconds / result.baseline.seconds
        lines.append(
            f"  ratio beacon / baseline: {ratio:.2f}  "
            f"{verdict(ratio, scenario.ratio_target)}"
        )
    lines += _latency_lines(
        "router reply -> agent read it", result.to_agent_done, False
    )
    lines += _latency_lines(
        "router reply -> receipt verified and accepted", result.to_accepted, False
    )
    lines += _latency_lines(
        "router reply -> outcome stored, cell reported final",
        result.to_reported,
        True,
    )
    with_result = beacon.coordinator_peak_with_result_mib
    after = (
        f" ({with_result:.1f} MiB once it built the JobResult)"
        if with_result is not None
        else ""
    )
    lines.append(
        f"  peak memory (VmHWM) when every cell was final: coordinator "
        f"{beacon.coordinator_peak_mib:.1f} MiB{after}, agent of "
        f"{scenario.regions[0]} {beacon.agent_peak_mib:.1f} MiB"
    )
    return lines


def _latency_lines(what: str, spread: Spread | None, targeted: bool) -> list[str]:
    if spread is None:
        return [f"  added latency, {what}: not measured"]
    if not targeted:
        return [
            f"  added latency, {what}: p50 {spread.p50_ms:.1f} ms, "
            f"p99 {spread.p99_ms:.1f} ms ({spread.samples} cells)"
        ]
    return [
        f"  added latency, {what} ({spread.samples} cells):",
        f"    p50 {spread.p50_ms:7.1f} ms  "
        f"{verdict(spread.p50_ms, ADDED_P50_TARGET_MS)}",
        f"    p99 {spread.p99_ms:7.1f} ms  "
        f"{verdict(spread.p99_ms, ADDED_P99_TARGET_MS)}",
    ]


@dataclass(frozen=True)
class MemoryGrowth:
    small: ScenarioResult
    large: ScenarioResult

    def lines(self) -> list[str]:
        small = self.small.beacon.coordinator_peak_mib
        large = self.large.beacon.coordinator_peak_mib
        growth = large / small
        return [
            f"coordinator peak memory: {self.large.scenario.cells:,} cells "
            f"{large:.1f} MiB vs {self.small.scenario.cells:,} cells "
            f"{small:.1f} MiB (x{growth:.2f})  "
            f"{verdict(growth, MEMORY_GROWTH_TARGET)}",
            f"  ({self.large.scenario.cells:,}-cell run: "
            f"{self.large.beacon.seconds:.1f} s, "
            f"{self.large.beacon.completed:,} completed of "
            f"{self.large.beacon.final:,} final)",
        ]
