"""One scenario end to end: a fresh deployment, the baseline, then Beacon."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from bench.baseline import BaselineRun, run_baseline
from bench.beacon_run import BeaconRun, run_job
from bench.latency import Spread, added_latency, count_lines, read_reply_times
from bench.plan import ROUTER_CALL_SECONDS, Scenario
from chaos.deployment import Deployment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    baseline: BaselineRun | None
    beacon: BeaconRun
    # Router reply -> the agent had read it (and was about to sign).
    to_agent_done: Spread | None
    # Router reply -> the coordinator accepted the verified receipt.
    to_accepted: Spread | None
    # Router reply -> the client read the cell's "finished" event, which the
    # coordinator sends only once the outcome is stored durably.
    to_reported: Spread | None


async def run_scenario(
    scenario: Scenario, state_dir: Path, *, fetch_result: bool
) -> ScenarioResult:
    job_id = f"bench-{scenario.name}"
    cells = scenario.cells_of(job_id)
    deployment = Deployment(
        state_dir,
        scenario.regions,
        router_args=scenario.router_args(),
        agent_capacity=scenario.per_region,
    )
    await asyncio.to_thread(deployment.start)
    try:
        # A first round of calls warms the router up, so that neither run
        # pays for its start.
        warm = scenario.cells_of(f"{job_id}-warm-up")[: scenario.per_region * 3]
        await run_baseline(
            deployment.router_url, warm, scenario.per_region, ROUTER_CALL_SECONDS
        )
        baseline = None
        if scenario.with_baseline:
            baseline = await run_baseline(
                deployment.router_url, cells, scenario.per_region, ROUTER_CALL_SECONDS
            )
        # The baseline's calls are in the same log; Beacon's come after them.
        skip = count_lines(deployment.call_log)
        beacon = await run_job(deployment, scenario, job_id, fetch_result=fetch_result)
    finally:
        await asyncio.to_thread(deployment.stop)
    replied = read_reply_times(deployment.call_log, skip)
    return ScenarioResult(
        scenario,
        baseline,
        beacon,
        added_latency(cells, replied, beacon.agent_done_at),
        added_latency(cells, replied, beacon.accepted_at),
        added_latency(cells, replied, beacon.reported_at),
    )
