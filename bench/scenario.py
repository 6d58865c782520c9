"""One scenario end to end: a fresh deployment, then rounds of the baseline
followed by Beacon, so that both meet the same load from the rest of the
machine as nearly as can be."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from beacon.cells import Cell
from bench.baseline import BaselineRun, run_baseline
from bench.beacon_run import BeaconRun, run_job
from bench.cpu import CpuSnapshot, CpuUse
from bench.latency import (
    Spread,
    count_lines,
    delays_ms,
    read_reply_times,
    spread,
    timed_delays_ms,
)
from bench.plan import ROUTER_CALL_SECONDS, Scenario
from chaos.deployment import Deployment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    # The floor: httpx with connections arranged as an agent's are.
    baseline: BaselineRun | None
    beacon: BeaconRun
    # httpx out of the box (one pool per region): a weaker floor, which the
    # agent's own arrangement of connections beats by itself.
    pooled: BaselineRun | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return self.beacon.seconds / self.baseline.seconds

    @property
    def pooled_ratio(self) -> float | None:
        if self.pooled is None:
            return None
        return self.beacon.seconds / self.pooled.seconds


@dataclass
class ScenarioResult:
    scenario: Scenario
    rounds: list[Round] = field(default_factory=list)
    # From the router's reply to the baseline loop having read and checked
    # it: what any HTTP client pays, the floor for the agent's first stretch.
    to_floor_read: Spread | None = None
    # Added latency over every round's cells, from the router's reply to:
    # the agent having read it (about to sign),
    to_agent_done: Spread | None = None
    # the coordinator accepting the verified receipt,
    to_accepted: Spread | None = None
    # ...and each round's (router reply, delay) pairs, to tell the first
    # wave of replies from the rest.
    accepted_by_round: list[list[tuple[float, float]]] = field(default_factory=list)
    # the client reading the cell's "finished" event, which the coordinator
    # sends only once the outcome is stored durably.
    to_reported: Spread | None = None

    @property
    def median_ratio(self) -> float | None:
        ratios = [r.ratio for r in self.rounds if r.ratio is not None]
        return statistics.median(ratios) if ratios else None

    @property
    def median_pooled_ratio(self) -> float | None:
        ratios = [r.pooled_ratio for r in self.rounds if r.pooled_ratio is not None]
        return statistics.median(ratios) if ratios else None

    @property
    def all_completed(self) -> bool:
        return all(r.beacon.completed == self.scenario.cells for r in self.rounds)


async def run_scenario(
    scenario: Scenario, state_dir: Path, *, fetch_result: bool
) -> ScenarioResult:
    deployment = Deployment(
        state_dir,
        scenario.regions,
        router_args=scenario.router_args(),
        agent_capacity=scenario.per_region,
    )
    result = ScenarioResult(scenario)
    agent_done: list[float] = []
    accepted: list[float] = []
    reported: list[float] = []
    floor_read: list[float] = []
    await asyncio.to_thread(deployment.start)
    try:
        # A first round of calls warms the router up, so that neither run
        # pays for its start.
        warm = scenario.cells_of("warm-up")[: scenario.per_region * 3]
        await run_baseline(
            deployment.router_url, warm, scenario.per_region, ROUTER_CALL_SECONDS
        )
        for number in range(1, scenario.rounds + 1):
            job_id = f"bench-{scenario.name}-{number}"
            cells = scenario.cells_of(job_id)
            processes = deployment.group.processes
            baseline = pooled = None
            if scenario.with_baseline:
                pooled = await _baseline(deployment, scenario, cells, lanes=False)
                first = count_lines(deployment.call_log)
                baseline = await _baseline(deployment, scenario, cells, lanes=True)
                replied = read_reply_times(
                    deployment.call_log, first, count_lines(deployment.call_log)
                )
                floor_read += delays_ms(cells, replied, baseline.read_at)
            # The router logs every call; this round's Beacon calls are the
            # lines between these two counts.
            first = count_lines(deployment.call_log)
            before = CpuSnapshot.take(processes)
            beacon = await run_job(
                deployment, scenario, job_id, fetch_result=fetch_result
            )
            beacon.cpu = CpuUse.between(
                before, beacon.cpu_at_end, len(cells), beacon.seconds
            )
            replied = read_reply_times(
                deployment.call_log, first, count_lines(deployment.call_log)
            )
            agent_done += delays_ms(cells, replied, beacon.agent_done_at)
            timed = timed_delays_ms(cells, replied, beacon.accepted_at)
            result.accepted_by_round.append(timed)
            accepted += [delay for _, delay in timed]
            reported += delays_ms(cells, replied, beacon.reported_at)
            result.rounds.append(Round(baseline, beacon, pooled))
    finally:
        await asyncio.to_thread(deployment.stop)
    result.to_floor_read = spread(floor_read)
    result.to_agent_done = spread(agent_done)
    result.to_accepted = spread(accepted)
    result.to_reported = spread(reported)
    return result


async def _baseline(
    deployment: Deployment, scenario: Scenario, cells: list[Cell], *, lanes: bool
) -> BaselineRun:
    processes = deployment.group.processes
    before = CpuSnapshot.take(processes)
    run = await run_baseline(
        deployment.router_url,
        cells,
        scenario.per_region,
        ROUTER_CALL_SECONDS,
        lanes=lanes,
    )
    after = CpuSnapshot.take(processes)
    return dataclasses.replace(
        run, cpu=CpuUse.between(before, after, len(cells), run.seconds)
    )
