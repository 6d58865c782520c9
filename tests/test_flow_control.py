"""The coordinator keeps at most an agent's advertised capacity in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from beacon.client import open_channel
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2
from coordinator.sqlite_store import SqliteJobStore
from region_agent.service import RegionAgentService
from tests.support.flaky_store import FlakyStore
from tests.support.router_process import start_router
from tests.support.servers import run_then_stop, start_agent, start_coordinator

ADVERTISED = 2


class EagerAgent(RegionAgentService):
    """Reads requests as fast as they come and counts how many are unanswered,
    while telling the coordinator it can take only ADVERTISED at once."""

    def __init__(self, inner: RegionAgentService) -> None:
        self._inner = inner
        self.in_flight = 0
        self.most_in_flight = 0
        self.received = 0

    async def Describe(self, request: Any, context: Any) -> Any:
        reply = await self._inner.Describe(request, context)
        reply.capacity = ADVERTISED
        return reply

    async def Execute(self, request_iterator: Any, context: Any) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def read_all() -> None:
            async for request in request_iterator:
                self.received += 1
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                queue.put_nowait(request)
            queue.put_nowait(None)

        async def forward() -> AsyncIterator[Any]:
            while (request := await queue.get()) is not None:
                yield request

        reader = asyncio.create_task(read_all())
        try:
            async for receipt in self._inner.Execute(forward(), context):
                self.in_flight -= 1
                yield receipt
        finally:
            reader.cancel()


async def test_in_flight_cells_never_exceed_advertised_capacity(tmp_path: Path) -> None:
    eager: list[EagerAgent] = []

    def wrap(inner: RegionAgentService) -> EagerAgent:
        eager.append(EagerAgent(inner))
        return eager[-1]

    with start_router(tmp_path, "--offline-latency", "0.1") as router:
        agent = await start_agent(
            tmp_path, "us-east", router.url, capacity=8, wrap=wrap
        )
        coordinator = await start_coordinator(tmp_path, [agent])
        job = job_pb2.JobSpec(job_id="flow-1", models=["m1", "m2"], regions=["us-east"])
        for i in range(6):
            job.questions.add(id=f"q{i}", text=f"Question {i}?")
        try:
            async with open_channel(coordinator.endpoint) as channel:
                stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
                events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
        finally:
            await coordinator.stop()
            await agent.stop()

    assert events[-1].result.counts.completed == 12
    assert eager[0].received == 12
    assert eager[0].most_in_flight == ADVERTISED


async def test_concurrent_jobs_share_an_agents_capacity(tmp_path: Path) -> None:
    """Two jobs at once still keep no more than the advertised cells in flight."""
    eager: list[EagerAgent] = []

    def wrap(inner: RegionAgentService) -> EagerAgent:
        eager.append(EagerAgent(inner))
        return eager[-1]

    jobs = []
    for name in ("shared-a", "shared-b"):
        job = job_pb2.JobSpec(job_id=name, models=["m1"], regions=["us-east"])
        for i in range(6):
            job.questions.add(id=f"q{i}", text=f"{name} question {i}?")
        jobs.append(job)

    with start_router(tmp_path, "--offline-latency", "0.1") as router:
        agent = await start_agent(
            tmp_path, "us-east", router.url, capacity=8, wrap=wrap
        )
        coordinator = await start_coordinator(tmp_path, [agent])
        try:
            async with open_channel(coordinator.endpoint) as channel:
                stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)

                async def run(job: job_pb2.JobSpec) -> list[pb.JobEvent]:
                    return [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]

                results = await asyncio.gather(*(run(job) for job in jobs))
        finally:
            await coordinator.stop()
            await agent.stop()

    assert [r[-1].result.counts.completed for r in results] == [6, 6]
    assert eager[0].received == 12
    assert eager[0].most_in_flight == ADVERTISED


async def test_a_stream_never_waits_for_one_cells_write_before_the_next(
    tmp_path: Path,
) -> None:
    """With a slow store, the records of cells sent together are written
    together, and so are the outcomes of receipts arriving together: a
    stream that waited for each write before the next (each receipt of a
    burst waiting for every earlier one's fsync) had one under way at most."""
    stores: list[FlakyStore] = []

    def slow(inner: SqliteJobStore) -> FlakyStore:
        delays = {"record_attempt_sent": 0.2, "record_attempt_end": 0.2}
        stores.append(FlakyStore(inner, delays))
        return stores[-1]

    with start_router(tmp_path, "--offline-latency", "0.05") as router:
        agent = await start_agent(tmp_path, "us-east", router.url, capacity=16)
        coordinator = await start_coordinator(tmp_path, [agent], wrap_store=slow)
        job = job_pb2.JobSpec(
            job_id="together-1", models=["m1", "m2"], regions=["us-east"]
        )
        for i in range(16):
            job.questions.add(id=f"q{i}", text=f"Question {i}?")
        result = await run_then_stop(coordinator, [agent], job)

    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert result.counts.completed == 32
    (store,) = stores
    assert store.most_at_once["record_attempt_sent"] >= 8
    assert store.most_at_once["record_attempt_end"] >= 8
