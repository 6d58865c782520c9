"""A coordinator whose job store cannot be written (a full disk): it holds
its cells back with growing waits instead of reconnecting in a loop, accepts
no receipt it could not store, says so once, and carries on by itself once
the store takes writes again, with no receipt lost and no attempt spent.

SQLite's `max_page_count` makes a write fail with SQLITE_FULL ("database or
disk is full") exactly as a full disk does, without root or a mount.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from beacon.client import open_channel
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2
from coordinator import metrics, region_stream
from coordinator.sqlite_store import SqliteJobStore
from region_agent.receipt_store import ReceiptStore
from tests.support.eventually import eventually
from tests.support.health import health_of
from tests.support.router_process import RunningRouter, read_call_log
from tests.support.servers import (
    RunningCoordinator,
    start_agent,
    start_coordinator,
)

FAILURES = "beacon_store_write_failures_total"
KINDS = ("attempt_sent", "attempt_end")
QUESTIONS = 3


async def _cap(store: SqliteJobStore, pages: int) -> None:
    """Cap the file at `pages` (SQLite keeps it at least its current size,
    and uses its free pages first: VACUUM leaves none)."""
    worker = store._worker

    def cap() -> None:
        if pages == 1:
            worker.db.execute("VACUUM")
        worker.db.execute(f"PRAGMA max_page_count={pages}")

    await worker.run_blocking(cap)


def _failures() -> float:
    return sum(
        metrics.REGISTRY.get_sample_value(FAILURES, {"kind": kind}) or 0.0
        for kind in KINDS
    )


class FillsAtFirstReceipt:
    """The real store, whose disk fills just as the first receipt arrives:
    cells are out at the agent and their receipts cannot be stored."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.full = False
        # Writes of attempts that failed.
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def record_attempt_sent(self, *args: Any) -> None:
        await self._counted(self.inner.record_attempt_sent(*args))

    async def record_attempt_end(self, *args: Any) -> bool:
        if not self.full:
            self.full = True
            await _cap(self.inner, 1)
        result: bool = await self._counted(self.inner.record_attempt_end(*args))
        return result

    async def _counted(self, write: Awaitable[Any]) -> Any:
        try:
            return await write
        except sqlite3.Error:
            self.failed += 1
            raise


def long_job(job_id: str) -> job_pb2.JobSpec:
    # A receipt holds its prompt: this one needs pages a full file has not got.
    spec = job_pb2.JobSpec(
        job_id=job_id,
        models=["llama3.2-1b"],
        regions=["us-east"],
        system_prompt="Answer in the plainest words you can. " * 180,
    )
    for i in range(QUESTIONS):
        spec.questions.add(id=f"q{i}", text=f"[{job_id}] question {i}? " + "x" * 3000)
    return spec


@contextlib.asynccontextmanager
async def _submitted(
    coordinator: RunningCoordinator, job: job_pb2.JobSpec
) -> AsyncIterator[coordinator_service_pb2_grpc.CoordinatorServiceStub]:
    async with open_channel(coordinator.endpoint) as channel:
        stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
        await stub.SubmitJob(pb.SubmitJobRequest(spec=job))
        yield stub


async def _completed(
    stub: coordinator_service_pb2_grpc.CoordinatorServiceStub, job_id: str
) -> job_pb2.JobResult:
    """The job's result, once it has completed."""

    async def result() -> job_pb2.JobResult:
        reply = await stub.GetJobResult(pb.GetJobResultRequest(job_id=job_id))
        return reply.result

    async def completed() -> bool:
        return (await result()).status == job_pb2.JOB_STATUS_COMPLETED

    await eventually(completed, within=60, what="the job to complete")
    return await result()


def _streams_opened(caplog: pytest.LogCaptureFixture) -> int:
    return sum("execute stream opened" in r.getMessage() for r in caplog.records)


async def test_a_full_job_store_holds_cells_back_and_loses_no_receipt(
    tmp_path: Path, router: RunningRouter, caplog: pytest.LogCaptureFixture
) -> None:
    stores: list[FillsAtFirstReceipt] = []

    def wrap_store(store: SqliteJobStore) -> FillsAtFirstReceipt:
        stores.append(FillsAtFirstReceipt(store))
        return stores[0]

    failures_before = _failures()
    calls_before = len(read_call_log(router.call_log))
    # One cell at a time: the next cells are sent, and recorded, while full.
    agent = await start_agent(tmp_path, "us-east", router.url, capacity=1)
    coordinator = await start_coordinator(tmp_path, [agent], wrap_store=wrap_store)
    job = long_job("full-store")
    try:
        with caplog.at_level(logging.INFO):
            async with _submitted(coordinator, job) as stub:
                # Several failed tries, spaced by growing waits.
                await eventually(
                    lambda: stores[0].failed >= 3, what="failed store writes"
                )
                # One stream held on through the failures: no reconnect loop.
                assert _streams_opened(caplog) == 1
                assert _failures() == failures_before + stores[0].failed
                held = await stub.GetJobResult(
                    pb.GetJobResultRequest(job_id=job.job_id)
                )
                assert held.result.counts.completed == 0
                assert held.result.counts.open == QUESTIONS
                assert metrics.REGISTRY.get_sample_value("beacon_store_writable") == 0
                assert await health_of(coordinator.address) == (
                    health_pb2.HealthCheckResponse.NOT_SERVING
                )

                # Space returns: the job goes on by itself.
                await _cap(stores[0].inner, 1_000_000)
                result = await _completed(stub, job.job_id)
                assert await health_of(coordinator.address) == (
                    health_pb2.HealthCheckResponse.SERVING
                )
    finally:
        await coordinator.stop()
        await agent.stop()

    assert stores[0].full
    assert result.counts.completed == QUESTIONS
    # No attempt was spent on the outage, and every receipt that arrived
    # while the store was full was sent for again and replayed by the agent.
    assert [len(o.attempts) for o in result.outcomes] == [1] * QUESTIONS
    calls = [
        c for c in read_call_log(router.call_log)[calls_before:] if job.job_id in str(c)
    ]
    assert len(calls) == QUESTIONS
    records = caplog.records
    assert _streams_opened(caplog) == 1
    assert not [
        r for r in records if r.exc_info and r.name.startswith("coordinator")
    ], "no traceback per write"
    failing = [r for r in records if "cannot write the job store" in r.getMessage()]
    assert len(failing) == 1
    assert "disk is full" in failing[0].getMessage()
    recovered = [r for r in records if "can be written again" in r.getMessage()]
    assert len(recovered) == 1


async def test_cells_wait_for_an_agent_whose_receipts_file_is_full(
    tmp_path: Path,
    router: RunningRouter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent refuses streams while its receipts file takes no writes: the
    coordinator keeps the region's cells (one attempt spent, on the cell
    whose receipt could not be kept), waits longer before each reconnect
    (a stream refused as it opens is no success), and the job completes
    once the agent takes cells again."""
    reconnect_waits: list[float] = []
    uniform = random.uniform

    def recorded(low: float, high: float) -> float:
        if low == 0:
            # A reconnect's wait, at most: recorded, and kept short here.
            reconnect_waits.append(high)
            return min(high, 0.05)
        return uniform(low, high)

    monkeypatch.setattr(region_stream.random, "uniform", recorded)
    kept = await ReceiptStore.open(tmp_path / "receipts.db", 86_400.0)
    agent = await start_agent(
        tmp_path, "us-east", router.url, capacity=1, kept_receipts=kept
    )
    coordinator = await start_coordinator(tmp_path, [agent])
    job = long_job("full-agent")
    assert kept._writer is not None
    kept._writer.execute("PRAGMA max_page_count=1")
    try:
        with caplog.at_level(logging.INFO):
            async with _submitted(coordinator, job) as stub:
                await eventually(
                    lambda: len(reconnect_waits) >= 4,
                    what="reconnects to the agent that takes no cells",
                )
                kept._writer.execute("PRAGMA max_page_count=1000000")
                result = await _completed(stub, job.job_id)
    finally:
        await coordinator.stop()
        await agent.stop()
        await kept.close()

    assert result.counts.completed == QUESTIONS
    failures = [a.failure.code for o in result.outcomes for a in o.attempts[:-1]]
    assert failures == ["RECEIPT_NOT_KEPT"]
    # Doubling from the first, instead of starting over at each refusal.
    assert reconnect_waits[:4] == [0.2, 0.4, 0.8, 1.6]
    # The agent's reason reaches the coordinator's log.
    assert any(
        "stream lost" in r.getMessage()
        and "cannot write its receipts file" in r.getMessage()
        for r in caplog.records
    )
