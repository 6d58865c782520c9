"""The benchmark's own code, on a job small enough to run with the tests.

It checks what the benchmark counts and matches, never how fast anything
was: the numbers are the benchmark's to report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.beacon_run import BeaconRun
from bench.latency import delays_ms, read_reply_times, split_first_wave, spread
from bench.plan import Scenario
from bench.report import MemoryGrowth, scenario_lines
from bench.scenario import Round, ScenarioResult, run_scenario

pytestmark = pytest.mark.e2e


async def test_a_small_scenario_runs_every_cell_both_ways_and_times_each(
    tmp_path: Path,
) -> None:
    """18 cells through the baseline and through Beacon: every cell answered
    both ways, every Beacon cell matched to its own router call."""
    scenario = Scenario("smoke", questions=2, latency_seconds=0.0, per_region=4)

    result = await run_scenario(scenario, tmp_path, fetch_result=True)

    assert scenario.cells == 18
    (only,) = result.rounds
    assert only.baseline is not None
    assert (only.baseline.succeeded, only.baseline.failed) == (18, 0)
    assert only.pooled is not None
    assert (only.pooled.succeeded, only.pooled.failed) == (18, 0)
    assert (only.beacon.completed, only.beacon.final) == (18, 18)
    assert result.all_completed
    for measured in (
        result.to_floor_read,
        result.to_agent_done,
        result.to_accepted,
        result.to_reported,
    ):
        assert measured is not None
        assert measured.samples == 18
    assert only.beacon.coordinator_peak_mib > 0
    assert only.beacon.agent_peak_mib > 0
    report = "\n".join(scenario_lines(result))
    assert "18 cells" in report
    assert report.count("target <=") == 5
    assert "weaker floor" in report
    # At 0 ms there are no waves of replies to tell apart.
    assert "replies (sent together" not in report
    growth = "\n".join(MemoryGrowth(result, result).lines())
    assert "(x1.00)" in growth


def test_a_cell_is_matched_only_to_a_successful_call_of_its_own_prompt(
    tmp_path: Path,
) -> None:
    """Calls outside the line range, failed, replayed or abandoned calls give
    no reply time; a cell without one is left out, not guessed."""
    log = tmp_path / "calls.jsonl"
    lines = [
        '{"ts": "2026-01-01T00:00:00.000+00:00", "region_preference": "us-east",'
        ' "model": "m", "prompt": "p1", "success": true, "replayed": false,'
        ' "abandoned": false}',
        '{"ts": "2026-01-01T00:00:01.000+00:00", "region_preference": "us-east",'
        ' "model": "m", "prompt": "p1", "success": true, "replayed": false,'
        ' "abandoned": false}',
        '{"ts": "2026-01-01T00:00:02.000+00:00", "region_preference": "us-east",'
        ' "model": "m", "prompt": "p2", "success": false, "replayed": false,'
        ' "abandoned": false}',
        '{"ts": "2026-01-01T00:00:03.000+00:00", "region_preference": "us-east",'
        ' "model": "m", "prompt": "p3", "success": true, "replayed": true,'
        ' "abandoned": false}',
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")

    replied = read_reply_times(log, 1, 4)

    assert list(replied) == [("us-east", "m", "p1")]
    scenario = Scenario("x", questions=1, latency_seconds=0.0, regions=("us-east",))
    cell = scenario.cells_of("job")[0]
    reply_at = replied[("us-east", "m", "p1")]
    keyed = {(cell.region, cell.model, cell.prompt): reply_at}
    assert delays_ms([cell], keyed, {cell.cell_id: reply_at + 0.004}) == [
        pytest.approx(4.0, abs=1e-3)
    ]
    assert delays_ms([cell], replied, {cell.cell_id: reply_at}) == []
    assert spread([4.0]) is None


def test_slow_cells_are_counted_apart_for_each_rounds_first_wave() -> None:
    """Each round's first `wave` replies, by reply time, are the first wave;
    the rest are counted and spread apart from it."""
    round_one = [(0.0, 30.0), (0.001, 40.0), (0.2, 2.0), (0.201, 26.0), (0.4, 3.0)]
    round_two = [(10.002, 5.0), (10.0, 27.0), (10.2, 1.0), (10.4, 4.0)]
    split = split_first_wave([round_one, round_two], wave=2, threshold_ms=25.0)
    assert (split.first_cells, split.first_over) == (4, 3)
    assert (split.later_cells, split.later_over) == (5, 1)
    assert split.later is not None and split.later.samples == 5


def test_the_report_tells_the_first_wave_apart_when_replies_come_in_waves() -> None:
    scenario = Scenario("waves", questions=1, latency_seconds=0.2, per_region=2)
    result = ScenarioResult(
        scenario, rounds=[Round(None, BeaconRun(seconds=1.0, completed=6, final=6))]
    )
    # Six calls go out together (2 in flight x 3 regions); two come later.
    timed = [(0.001 * n, 30.0 if n < 2 else 3.0) for n in range(6)]
    timed += [(0.2, 27.0), (0.25, 2.0)]
    result.accepted_by_round = [timed]
    result.to_accepted = spread([delay for _, delay in timed])
    report = "\n".join(scenario_lines(result))
    assert (
        "over 25 ms: 2 of the 6 cells of each round's first 6 replies "
        "(sent together, answered together), 1 of the 2 others" in report
    )
