"""Cancelling a job abandons the router calls under way at its agents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from beacon.client import open_channel
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import (
    coordinator_service_pb2_grpc,
    job_pb2,
    region_agent_service_pb2,
    region_agent_service_pb2_grpc,
)
from tests.support.eventually import eventually
from tests.support.router_process import (
    RunningRouter,
    add_fault_rules,
    pending_fault_rules,
    read_call_log,
    start_router,
)
from tests.support.servers import RunningAgent, start_agent, start_coordinator

SLOW_MODEL = "mistral-7b"


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[RunningRouter]:
    with start_router(tmp_path, "--fault-control") as running:
        yield running


HANGS = 1000


def hang_every_call(router: RunningRouter, **match: str) -> None:
    """Every call matching `match` (model, region) hangs until abandoned."""
    add_fault_rules(router.url, {"shape": "hang", "count": HANGS, **match})


def hanging_calls(router: RunningRouter) -> int:
    """Calls the hang rule has caught so far (each uses up one of its count)."""
    rules = pending_fault_rules(router.url)
    return HANGS - (rules[0]["count"] if rules else 0)


def job_with_a_slow_model(job_id: str) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id,
        models=["llama3.2-1b", SLOW_MODEL],
        regions=["us-east"],
        timeouts=job_pb2.Timeouts(
            router_call_seconds=60, cell_attempt_seconds=90, job_seconds=600
        ),
    )
    for i in range(3):
        spec.questions.add(id=f"q{i}", text=f"[{job_id}] question {i}?")
    return spec


async def test_cancel_abandons_calls_in_flight_and_keeps_finished_outcomes(
    tmp_path: Path, router: RunningRouter
) -> None:
    hang_every_call(router, model=SLOW_MODEL)
    agent = await start_agent(tmp_path, "us-east", router.url, capacity=8)
    coordinator = await start_coordinator(tmp_path, [agent])
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            spec = job_with_a_slow_model("cancel-mid-call")
            await stub.SubmitJob(pb.SubmitJobRequest(spec=spec))

            async def fast_done_and_slow_hanging() -> bool:
                fast_done = await completed(stub, spec.job_id) == 3
                return fast_done and hanging_calls(router) == 3

            await eventually(fast_done_and_slow_hanging, what="cells done or hung")
            await stub.CancelJob(pb.CancelJobRequest(job_id=spec.job_id))

            def slow_calls_abandoned() -> bool:
                calls = read_call_log(router.call_log)
                return sum(c["abandoned"] for c in calls) == 3

            # Without abandoning, the hung calls would go on for a minute.
            await eventually(slow_calls_abandoned, what="abandoned router calls")
            result = (
                await stub.GetJobResult(pb.GetJobResultRequest(job_id=spec.job_id))
            ).result
    finally:
        await coordinator.stop()
        await agent.stop()

    assert result.status == job_pb2.JOB_STATUS_CANCELLED
    assert result.partial
    by_model: dict[str, list[int]] = {}
    for outcome in result.outcomes:
        by_model.setdefault(outcome.model, []).append(outcome.status)
    assert by_model["llama3.2-1b"] == [job_pb2.CELL_STATUS_COMPLETED] * 3
    assert by_model[SLOW_MODEL] == [job_pb2.CELL_STATUS_CANCELLED] * 3
    calls = read_call_log(router.call_log)
    assert [c["fault"] for c in calls if c["abandoned"]] == ["hang"] * 3


async def completed(
    stub: coordinator_service_pb2_grpc.CoordinatorServiceStub, job_id: str
) -> int:
    """Cells with an accepted receipt, as the coordinator reports them."""
    reply = await stub.GetJobResult(pb.GetJobResultRequest(job_id=job_id))
    return int(reply.result.counts.completed)


async def abandon(agent: RunningAgent, job_id: str, token: str) -> int:
    async with grpc.aio.insecure_channel(agent.address) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        reply = await stub.AbandonJob(
            region_agent_service_pb2.AbandonJobRequest(job_id=job_id, job_token=token)
        )
    return reply.abandoned


async def test_abandon_needs_a_job_id_and_token(
    tmp_path: Path, router: RunningRouter
) -> None:
    agent = await start_agent(tmp_path, "us-east", router.url)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await abandon(agent, "some-job", "")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "job_token" in (raised.value.details() or "")
        assert await abandon(agent, "some-job", "not-its-token") == 0
    finally:
        await agent.stop()


async def test_a_hung_region_never_holds_up_another(
    tmp_path: Path, router: RunningRouter
) -> None:
    hang_every_call(router, region="eu-west")
    us_agent = await start_agent(tmp_path, "us-east", router.url, capacity=2)
    eu_agent = await start_agent(tmp_path, "eu-west", router.url, capacity=2)
    coordinator = await start_coordinator(tmp_path, [us_agent, eu_agent])
    spec = job_pb2.JobSpec(
        job_id="hung-region",
        models=["llama3.2-1b"],
        regions=["us-east", "eu-west"],
        timeouts=job_pb2.Timeouts(
            router_call_seconds=60, cell_attempt_seconds=90, job_seconds=600
        ),
    )
    for i in range(12):
        spec.questions.add(id=f"q{i}", text=f"[hung-region] question {i}?")
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            await stub.SubmitJob(pb.SubmitJobRequest(spec=spec))

            async def us_east_done() -> bool:
                return await completed(stub, spec.job_id) == 12

            # eu-west's two slots are stuck on hung calls all along.
            await eventually(us_east_done, what="us-east's cells")
            await stub.CancelJob(pb.CancelJobRequest(job_id=spec.job_id))
            result = (
                await stub.GetJobResult(pb.GetJobResultRequest(job_id=spec.job_id))
            ).result
    finally:
        await coordinator.stop()
        await eu_agent.stop()
        await us_agent.stop()

    statuses = {(o.region, o.status) for o in result.outcomes}
    assert statuses == {
        ("us-east", job_pb2.CELL_STATUS_COMPLETED),
        ("eu-west", job_pb2.CELL_STATUS_CANCELLED),
    }
