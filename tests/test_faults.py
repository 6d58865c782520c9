"""Faults, reproduced with real processes: a router that injects them and
records every call, and agents and a coordinator that are killed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beacon.tokens import TOKEN_ENV
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2, receipt_pb2
from chaos.deployment import Deployment
from chaos.plan import ChaosPlan
from chaos.report import build_report, read_calls
from chaos.run import run_chaos, watch_to_the_end
from coordinator.sqlite_store import SqliteJobStore
from tests.support.eventually import eventually
from tests.support.router_process import (
    RunningRouter,
    add_fault_rules,
    pending_fault_rules,
    start_router,
)
from tests.support.servers import run_then_stop, start_agent, start_coordinator

pytestmark = pytest.mark.e2e

# Each question's text names the fault its first calls get.
SHAPES = {
    "transient": ("transient", 2),
    "unavailable": ("unavailable", 1),
    "not-json": ("not-json", 1),
    "hang": ("hang", 1),
    "permanent": ("permanent", 1),
    "invalid": ("invalid", 1),
    "not-found": ("not-found", 1),
    "other-region": ("other-region", 1),
}


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[RunningRouter]:
    with start_router(tmp_path, "--fault-control") as running:
        yield running


async def test_each_router_failure_shape_gets_its_own_code_and_retry_decision(
    tmp_path: Path, router: RunningRouter
) -> None:
    rules = [
        {"shape": shape, "count": count, "prompt_contains": f"<{name}>"}
        for name, (shape, count) in SHAPES.items()
    ]
    add_fault_rules(router.url, *rules)
    spec = job_pb2.JobSpec(
        job_id="shapes",
        models=["llama3.2-1b"],
        regions=["us-east"],
        max_attempts=4,
        timeouts=job_pb2.Timeouts(
            router_call_seconds=1, cell_attempt_seconds=2, job_seconds=60
        ),
    )
    for name in SHAPES:
        spec.questions.add(id=name.replace("-", "_"), text=f"<{name}> a question")
    result = await run_in_process(tmp_path, router.url, spec)
    outcomes = {o.question_id: o for o in result.outcomes}

    def history(question_id: str) -> list[tuple[str, bool]]:
        return [
            (a.failure.code, a.failure.retryable)
            for a in outcomes[question_id].attempts
        ]

    # Transient shapes are retried by the coordinator until one succeeds.
    transient = {
        "transient": [("PROVIDER_HTTP_502", True)] * 2,
        "unavailable": [("ROUTER_UNAVAILABLE", True)],
        "not_json": [("ROUTER_REPLY_INVALID", True)],
        "hang": [("ROUTER_TIMEOUT", True)],
    }
    for question_id, failures in transient.items():
        outcome = outcomes[question_id]
        assert outcome.status == job_pb2.CELL_STATUS_COMPLETED, question_id
        assert history(question_id)[: len(failures)] == failures
        assert len(outcome.attempts) == len(failures) + 1
        body = receipt_pb2.ReceiptBody.FromString(outcome.receipt.body)
        assert body.attempt == len(failures) + 1
    # Permanent ones end the cell at once, with their own code.
    permanent = {
        "permanent": "MODEL_NOT_SERVED",
        "invalid": "ROUTER_REJECTED_REQUEST",
        "not_found": "ROUTER_NOT_FOUND",
    }
    for question_id, code in permanent.items():
        outcome = outcomes[question_id]
        assert outcome.status == job_pb2.CELL_STATUS_FAILED, question_id
        assert history(question_id) == [(code, False)]
    # A success from another region is a mismatch, never retried elsewhere.
    substituted = outcomes["other_region"]
    assert substituted.status == job_pb2.CELL_STATUS_REGION_MISMATCH
    assert history("other_region") == [("REGION_MISMATCH", False)]
    assert substituted.answer == ""


async def test_fault_run_ends_every_cell_once_through_kills_and_faults(
    tmp_path: Path,
) -> None:
    """The `make chaos` run, smaller: 20% failing calls, 2% hangs, the
    agent of one region killed twice and the coordinator once."""
    plan = ChaosPlan(questions=4, agent_capacity=2, latency_seconds=0.2, seed=3)

    report = await run_chaos(plan, tmp_path)

    assert report.cells == plan.cells
    assert report.open_cells == 0
    assert report.duplicate_successes == 0, report.lines()
    assert report.lost_receipts == 0, report.lost_detail
    assert report.unverified_receipts == 0
    assert len([e for e in report.events if "killed" in e]) == 3
    assert len([e for e in report.events if "stopped" in e]) == 2
    assert report.router_calls >= plan.cells
    assert sum(report.outcomes.values()) == plan.cells


async def submit(deployment: Deployment, spec: job_pb2.JobSpec) -> None:
    async with deployment.coordinator_channel() as channel:
        stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
        await stub.SubmitJob(pb.SubmitJobRequest(spec=spec))


def small_job(job_id: str, questions: int, job_seconds: float) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id,
        models=["llama3.2-1b", "mistral-7b"],
        regions=["us-east", "eu-west"],
        timeouts=job_pb2.Timeouts(
            router_call_seconds=2, cell_attempt_seconds=3, job_seconds=job_seconds
        ),
    )
    for i in range(questions):
        spec.questions.add(id=f"q{i}", text=f"[{job_id}] question {i}?")
    return spec


async def test_a_lost_replica_moves_its_cells_to_the_other(tmp_path: Path) -> None:
    deployment = Deployment(
        tmp_path,
        ("us-east", "eu-west"),
        replicas={"us-east": 2},
        router_args=("--offline-latency", "0.2"),
        agent_capacity=2,
    )
    await asyncio.to_thread(deployment.start)
    try:
        spec = small_job("replicas", questions=10, job_seconds=120)
        await submit(deployment, spec)
        kill = KillAgent(deployment, "us-east", after_cells=spec_cells(spec) // 4)
        finals: dict[str, job_pb2.CellStatus.ValueType] = {}
        result = await watch_to_the_end(
            deployment, spec.job_id, on_progress=kill, reported_final=finals
        )
    finally:
        await asyncio.to_thread(deployment.stop)
    report = build_report(result, read_calls(deployment.call_log), finals)

    assert kill.killed
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert report.outcomes == {"completed": spec_cells(spec)}
    assert report.duplicate_successes == 0 and report.lost_receipts == 0
    used = {
        attempt.agent_address
        for outcome in result.outcomes
        if outcome.region == "us-east"
        for attempt in outcome.attempts
    }
    # Cells went to both replicas, and the survivor finished them all.
    assert used == {agent.address for agent in deployment.agents_of("us-east")}


class KillAgent:
    """A progress callback that SIGKILLs the first agent of `region` once
    `after_cells` cells are final."""

    def __init__(self, deployment: Deployment, region: str, after_cells: int) -> None:
        self._deployment = deployment
        self.agent = deployment.agents_of(region)[0]
        self._after = after_cells
        self.killed = False

    async def __call__(self, counts: job_pb2.JobCounts) -> bool:
        if not self.killed and counts.total - counts.open >= self._after:
            self._deployment.kill_agent(self.agent)
            self.killed = True
        return False


def spec_cells(spec: job_pb2.JobSpec) -> int:
    return len(spec.regions) * len(spec.models) * len(spec.questions)


async def test_a_region_whose_agent_never_returns_fails_alone_at_the_deadline(
    tmp_path: Path,
) -> None:
    deployment = Deployment(
        tmp_path,
        ("us-east", "eu-west"),
        router_args=("--offline-latency", "0.3"),
        agent_capacity=1,
    )
    await asyncio.to_thread(deployment.start)
    try:
        spec = small_job("lost-region", questions=6, job_seconds=25)
        await submit(deployment, spec)
        kill = KillAgent(deployment, "eu-west", after_cells=2)
        finals: dict[str, job_pb2.CellStatus.ValueType] = {}
        result = await watch_to_the_end(
            deployment, spec.job_id, on_progress=kill, reported_final=finals
        )
    finally:
        await asyncio.to_thread(deployment.stop)

    assert kill.killed
    assert result.status == job_pb2.JOB_STATUS_TIMED_OUT
    by_region: dict[str, list[job_pb2.CellOutcome]] = {}
    for outcome in result.outcomes:
        by_region.setdefault(outcome.region, []).append(outcome)
    assert {o.status for o in by_region["us-east"]} == {job_pb2.CELL_STATUS_COMPLETED}
    lost = [
        o for o in by_region["eu-west"] if o.status != job_pb2.CELL_STATUS_COMPLETED
    ]
    assert lost
    for outcome in lost:
        assert outcome.status in (
            job_pb2.CELL_STATUS_FAILED,
            job_pb2.CELL_STATUS_NOT_RUN,
        )
        assert kill.agent.address in outcome.reason
    # us-east was not held up: all its cells were announced final before the
    # deadline ended the first of eu-west's.
    announced = list(finals)
    first_lost = min(announced.index(o.cell_id) for o in lost)
    assert all(announced.index(o.cell_id) < first_lost for o in by_region["us-east"])


async def run_in_process(
    tmp_path: Path, router_url: str, spec: job_pb2.JobSpec
) -> job_pb2.JobResult:
    agent = await start_agent(tmp_path, "us-east", router_url)
    coordinator = await start_coordinator(tmp_path, [agent], retry_base_seconds=0.05)
    return await run_then_stop(coordinator, [agent], spec)


def one_cell(job_id: str, **fields: object) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id, models=["llama3.2-1b"], regions=["us-east"], **fields
    )
    spec.questions.add(id="q", text=f"[{job_id}] a question?")
    return spec


async def test_a_router_refusing_connections_fails_the_cell_after_its_attempts(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # Bound, not listening: connections are refused.
        result = await run_in_process(
            tmp_path, nobody, one_cell("refused", max_attempts=3)
        )

    (outcome,) = result.outcomes
    assert outcome.status == job_pb2.CELL_STATUS_FAILED
    assert [(a.failure.code, a.failure.retryable) for a in outcome.attempts] == [
        ("ROUTER_UNREACHABLE", True)
    ] * 3


async def test_hung_calls_end_at_each_layers_deadline(
    tmp_path: Path, router: RunningRouter
) -> None:
    add_fault_rules(router.url, {"shape": "hang", "count": 100})
    timeouts = job_pb2.Timeouts(
        router_call_seconds=1, cell_attempt_seconds=2, job_seconds=6
    )
    result = await run_in_process(
        tmp_path, router.url, one_cell("deadlines", max_attempts=10, timeouts=timeouts)
    )

    (outcome,) = result.outcomes
    assert result.status == job_pb2.JOB_STATUS_TIMED_OUT
    assert outcome.status == job_pb2.CELL_STATUS_TIMED_OUT
    assert "(layer: job)" in outcome.reason
    # Each attempt ended at the router call's deadline, inside the attempt's.
    ended = [a for a in outcome.attempts if a.failure.code]
    assert ended
    assert {(a.failure.code, a.failure.stage) for a in ended} == {
        ("ROUTER_TIMEOUT", "router_call")
    }


def one_region_job(
    job_id: str, questions: int, router_call: float, attempt: float
) -> job_pb2.JobSpec:
    spec = small_job(job_id, questions=questions, job_seconds=120)
    spec.regions[:] = ["us-east"]
    spec.timeouts.router_call_seconds = router_call
    spec.timeouts.cell_attempt_seconds = attempt
    return spec


async def submit_with_slow_calls(
    deployment: Deployment, spec: job_pb2.JobSpec, slow_calls: int
) -> None:
    """Submit `spec` with its first calls slow (3 s), and return once all of
    them are under way at the router."""
    add_fault_rules(deployment.router_url, {"shape": "slow", "count": slow_calls})
    await submit(deployment, spec)
    await eventually(
        lambda: pending_fault_rules(deployment.router_url) == [],
        what=f"{slow_calls} slow calls",
    )


async def test_a_stopping_coordinator_keeps_the_receipts_of_cells_in_flight(
    tmp_path: Path,
) -> None:
    """SIGTERM: no new cell goes out, the cells already at agents are
    answered and stored before the coordinator exits, and the restarted
    coordinator finishes the rest."""
    deployment = Deployment(
        tmp_path, ("us-east",), router_args=("--fault-control",), agent_capacity=3
    )
    await asyncio.to_thread(deployment.start)
    try:
        spec = one_region_job("drain", questions=4, router_call=10, attempt=15)
        await submit_with_slow_calls(deployment, spec, slow_calls=3)
        code = await asyncio.to_thread(deployment.stop_coordinator)

        # Read the store the stopped coordinator left behind.
        store = await SqliteJobStore.open(tmp_path / "beacon.db")
        try:
            cells = await store.cells(spec.job_id)
        finally:
            await store.close()
        completed = [c for c in cells if c.status == job_pb2.CELL_STATUS_COMPLETED]

        await asyncio.to_thread(deployment.start_coordinator)
        result = await watch_to_the_end(deployment, spec.job_id)
    finally:
        await asyncio.to_thread(deployment.stop)
    calls = read_calls(deployment.call_log)

    assert code == 0
    assert len(completed) == 3, "the three slow cells were kept before the exit"
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert len(calls) == spec_cells(spec)
    assert not any(c["replayed"] for c in calls)


async def test_receipts_that_came_in_while_the_coordinator_was_paused_count(
    tmp_path: Path,
) -> None:
    """A coordinator frozen past the attempt deadline reads the receipts that
    arrived in time before it judges the attempts: nothing is sent twice."""
    deployment = Deployment(tmp_path, ("us-east",), router_args=("--fault-control",))
    await asyncio.to_thread(deployment.start)
    try:
        spec = one_region_job("paused", questions=2, router_call=4, attempt=5)
        await submit_with_slow_calls(deployment, spec, slow_calls=4)
        # Frozen well past the attempt deadline (and its grace).
        deployment.signal_coordinator(signal.SIGSTOP)
        await asyncio.sleep(10)
        deployment.signal_coordinator(signal.SIGCONT)

        result = await watch_to_the_end(deployment, spec.job_id)
    finally:
        await asyncio.to_thread(deployment.stop)

    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert [len(o.attempts) for o in result.outcomes] == [1] * 4
    assert len(read_calls(deployment.call_log)) == 4


async def test_beacon_watch_follows_a_job_across_a_coordinator_restart(
    tmp_path: Path,
) -> None:
    deployment = Deployment(
        tmp_path,
        ("us-east",),
        router_args=("--offline-latency", "0.3"),
        agent_capacity=1,
    )
    await asyncio.to_thread(deployment.start)
    try:
        spec = small_job("watched", questions=5, job_seconds=120)
        spec.regions[:] = ["us-east"]
        await submit(deployment, spec)
        watcher = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "beacon"),
            "watch",
            spec.job_id,
            "--coordinator",
            deployment.coordinator_address,
            env={**os.environ, TOKEN_ENV: deployment.token},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await asyncio.sleep(1.0)
        deployment.kill_coordinator()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(deployment.start_coordinator)
        output, _ = await asyncio.wait_for(watcher.communicate(), timeout=120)
    finally:
        await asyncio.to_thread(deployment.stop)
    text = output.decode()

    assert watcher.returncode == 0, text
    assert "trying again" in text
    assert "completed" in text
