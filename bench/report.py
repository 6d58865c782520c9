"""The benchmark's printed report: each measure beside its target."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bench.latency import Spread, WaveSplit, split_first_wave
from bench.scenario import Round, ScenarioResult

logger = logging.getLogger(__name__)

ADDED_P50_TARGET_MS = 5.0
ADDED_P99_TARGET_MS = 25.0
MEMORY_GROWTH_TARGET = 1.5


def verdict(value: float, target: float) -> str:
    return f"target <= {target:g}  {'PASS' if value <= target else 'MISS'}"


def scenario_lines(result: ScenarioResult) -> list[str]:
    scenario = result.scenario
    lines = [
        f"{scenario.cells:,} cells ({len(scenario.regions)} regions x "
        f"{len(scenario.models)} models x {scenario.questions:,} questions), "
        f"router latency {scenario.latency_seconds * 1000:g} ms, "
        f"{scenario.per_region} calls in flight per region",
    ]
    for number, one in enumerate(result.rounds, start=1):
        lines += _round_lines(number, one)
    ratio = result.median_ratio
    if ratio is not None:
        lines.append(
            f"  ratio beacon / baseline (median of {len(result.rounds)} "
            f"round(s)): {ratio:.2f}  {verdict(ratio, scenario.ratio_target)}"
        )
    pooled = result.median_pooled_ratio
    if pooled is not None:
        lines.append(
            f"    against httpx's own pool instead (weaker floor): {pooled:.2f}"
        )
    lines.append("  added latency after the router's reply (logged by the router):")
    lines += _latency_lines(
        "the baseline loop has read it (the floor for the next line)",
        result.to_floor_read,
        False,
    )
    lines += _latency_lines("the agent has read it", result.to_agent_done, False)
    lines += _latency_lines(
        "the coordinator verified and accepted the receipt",
        result.to_accepted,
        True,
    )
    if scenario.latency_seconds > 0 and scenario.per_region > 1:
        # Replies come back in waves only when calls take a while and many
        # go out at once; a saturated 0 ms run has no waves to tell apart.
        lines += _wave_lines(
            split_first_wave(
                result.accepted_by_round,
                scenario.per_region * len(scenario.regions),
                ADDED_P99_TARGET_MS,
            )
        )
    lines += _latency_lines(
        "the outcome is stored and the cell reported final",
        result.to_reported,
        True,
    )
    first = result.rounds[0].beacon
    with_result = first.coordinator_peak_with_result_mib
    after = (
        f" ({with_result:.1f} MiB once it built the JobResult)"
        if with_result is not None
        else ""
    )
    lines.append(
        f"  peak memory (VmHWM) when round 1's cells were all final: coordinator "
        f"{first.coordinator_peak_mib:.1f} MiB{after}, agent of "
        f"{scenario.regions[0]} {first.agent_peak_mib:.1f} MiB"
    )
    return lines


def _round_lines(number: int, one: Round) -> list[str]:
    beacon = one.beacon
    lines = [f"  round {number}:"]
    for label, base in (
        ("httpx, one pool per region", one.pooled),
        ("baseline (httpx, agent's lanes)", one.baseline),
    ):
        if base is None:
            continue
        lines.append(
            f"    {label:<39} {base.seconds:8.2f} s "
            f"{base.succeeded / base.seconds:8.1f} cells/s  "
            f"({base.succeeded} answered, {base.failed} failed)"
        )
        if base.cpu is not None:
            lines.append(f"      {base.cpu.describe()}")
    lines.append(
        f"    {'beacon (gRPC, signed, verified, stored)':<39} {beacon.seconds:8.2f} s "
        f"{beacon.final / beacon.seconds:8.1f} cells/s  "
        f"({beacon.completed} completed of {beacon.final} final)"
    )
    if beacon.cpu is not None:
        lines.append(f"      {beacon.cpu.describe()}")
    return lines


def _latency_lines(what: str, found: Spread | None, targeted: bool) -> list[str]:
    if found is None:
        return [f"    to when {what}: not measured"]
    lines = [
        f"    to when {what} ({found.samples} cells): "
        f"p50 {found.p50_ms:.1f} ms, p99 {found.p99_ms:.1f} ms"
    ]
    if targeted:
        lines += [
            f"      p50 {verdict(found.p50_ms, ADDED_P50_TARGET_MS)}",
            f"      p99 {verdict(found.p99_ms, ADDED_P99_TARGET_MS)}",
        ]
    return lines


def _wave_lines(split: WaveSplit) -> list[str]:
    if split.later is None or not split.first_cells:
        return []
    return [
        f"      over {ADDED_P99_TARGET_MS:g} ms: {split.first_over} of the "
        f"{split.first_cells} cells of each round's first {split.wave} replies "
        f"(sent together, answered together), {split.later_over} of the "
        f"{split.later_cells} others; p99 of the others "
        f"{split.later.p99_ms:.1f} ms",
    ]


@dataclass(frozen=True)
class MemoryGrowth:
    small: ScenarioResult
    large: ScenarioResult

    def lines(self) -> list[str]:
        small_run = self.small.rounds[0].beacon
        large_run = self.large.rounds[0].beacon
        small, large = small_run.coordinator_peak_mib, large_run.coordinator_peak_mib
        growth = large / small
        return [
            f"coordinator peak memory while running: "
            f"{self.large.scenario.cells:,} cells {large:.1f} MiB vs "
            f"{self.small.scenario.cells:,} cells {small:.1f} MiB "
            f"(x{growth:.2f})  {verdict(growth, MEMORY_GROWTH_TARGET)}",
            f"  ({self.large.scenario.cells:,}-cell run at 0 ms, Beacon only: "
            f"{large_run.seconds:.1f} s, {large_run.final / large_run.seconds:.1f} "
            f"cells/s, {large_run.completed:,} completed of "
            f"{large_run.final:,} final; "
            f"agent peak {large_run.agent_peak_mib:.1f} MiB)",
        ]
