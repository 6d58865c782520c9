"""A coordinator that restarts resumes its unfinished jobs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beacon.client import open_channel
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2
from tests.support.eventually import eventually
from tests.support.router_process import RunningRouter, add_fault_rules, start_router
from tests.support.servers import start_agent, start_coordinator


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[RunningRouter]:
    with start_router(tmp_path, "--fault-control") as running:
        yield running


def two_region_job(job_id: str, job_seconds: float) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id,
        models=["llama3.2-1b"],
        regions=["us-east", "eu-west"],
        timeouts=job_pb2.Timeouts(
            router_call_seconds=4, cell_attempt_seconds=6, job_seconds=job_seconds
        ),
    )
    for i in range(3):
        spec.questions.add(id=f"q{i}", text=f"[{job_id}] question {i}?")
    return spec


async def test_a_resumed_job_says_which_of_its_regions_has_no_agent_any_more(
    tmp_path: Path, router: RunningRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """eu-west was removed from the configuration while its cells were open:
    the resumed job says so at once, and its cells end with that reason at
    the deadline instead of a bare "never sent"."""
    add_fault_rules(router.url, {"shape": "hang", "count": 100, "region": "eu-west"})
    us_agent = await start_agent(tmp_path, "us-east", router.url)
    eu_agent = await start_agent(tmp_path, "eu-west", router.url)
    spec = two_region_job("region-removed", job_seconds=12)
    first = await start_coordinator(tmp_path, [us_agent, eu_agent])
    try:
        async with open_channel(first.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            await stub.SubmitJob(pb.SubmitJobRequest(spec=spec))

            async def us_east_done() -> bool:
                cells = await first.store.cells(spec.job_id)
                return [c.status for c in cells if c.region == "us-east"] == [
                    job_pb2.CELL_STATUS_COMPLETED
                ] * 3

            await eventually(us_east_done, what="us-east's cells")
    finally:
        await first.stop()
        await eu_agent.stop()

    second = await start_coordinator(tmp_path, [us_agent])
    try:
        with caplog.at_level(logging.ERROR, logger="coordinator.job_runner"):
            assert await second.jobs.resume_unfinished() == [spec.job_id]
            await eventually(
                lambda: "no agent in this coordinator's configuration" in caplog.text,
                what="the resumed job's warning",
            )
        async with open_channel(second.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = stub.WatchJob(pb.WatchJobRequest(job_id=spec.job_id))
            result = [e async for e in events][-1].result
    finally:
        await second.stop()
        await us_agent.stop()

    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("3 open cells in region eu-west" in line for line in warning)
    assert result.status == job_pb2.JOB_STATUS_TIMED_OUT
    eu_west = [o for o in result.outcomes if o.region == "eu-west"]
    assert len(eu_west) == 3
    for outcome in eu_west:
        assert outcome.status != job_pb2.CELL_STATUS_COMPLETED
        assert outcome.reason.startswith("no agent of eu-west could be reached")
        assert outcome.reason.endswith("this coordinator's configuration names none")
