"""One bad receipt, write, stream or agent never strands a cell or runs it twice."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from beacon.cells import cell_id_for
from beacon.client import open_channel
from beacon.digests import sha256_hex
from beacon.local import agent_command
from beacon.processes import ProcessGroup
from beacon.serving import DEFAULT_GRACE_SECONDS, ServingServer
from beacon.signing import SigningKey
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import (
    coordinator_service_pb2_grpc,
    job_pb2,
    receipt_pb2,
    region_agent_service_pb2_grpc,
)
from chaos.deployment import free_port
from coordinator import metrics as coordinator_metrics
from coordinator.jobs import CoordinatorStopping
from region_agent.receipts import seal
from region_agent.service import RegionAgentService
from tests.support.canned_router import (
    CannedReply,
    RecordedRequest,
    serve_canned_router,
)
from tests.support.eventually import eventually
from tests.support.flaky_store import FlakyStore
from tests.support.router_process import (
    RunningRouter,
    add_fault_rules,
    read_call_log,
    start_router,
)
from tests.support.servers import start_agent, start_coordinator

SHORT = job_pb2.Timeouts(
    router_call_seconds=1, cell_attempt_seconds=1.5, job_seconds=30
)


def one_region_job(job_id: str, questions: int = 1, **fields: Any) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id, models=["llama3.2-1b"], regions=["us-east"], **fields
    )
    for i in range(questions):
        spec.questions.add(id=f"q{i}", text=f"[{job_id}] question {i}?")
    return spec


class ReceiptFilter(RegionAgentService):
    """A real agent whose outgoing receipts pass through `change`, which may
    alter one or return None to drop it."""

    def __init__(self, inner: RegionAgentService, change: Callable[[Any], Any]) -> None:
        self._inner = inner
        self._change = change

    async def Describe(self, request: Any, context: Any) -> Any:
        return await self._inner.Describe(request, context)

    async def Execute(self, request_iterator: Any, context: Any) -> Any:
        async for receipt in self._inner.Execute(request_iterator, context):
            changed = self._change(receipt)
            if changed is not None:
                yield changed


async def run_job(
    tmp_path: Path,
    router_url: str,
    job: job_pb2.JobSpec,
    *,
    change: Callable[[Any], Any] | None = None,
    wrap_store: Callable[[Any], Any] | None = None,
    capacity: int = 4,
) -> job_pb2.JobResult:
    wrap = (lambda inner: ReceiptFilter(inner, change)) if change else None
    agent = await start_agent(
        tmp_path, "us-east", router_url, capacity=capacity, wrap=wrap
    )
    coordinator = await start_coordinator(
        tmp_path, [agent], wrap_store=wrap_store, retry_base_seconds=0.1
    )
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
    finally:
        await coordinator.stop()
        await agent.stop()
    return events[-1].result


def first_attempt_only(alter: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def change(receipt: receipt_pb2.Receipt) -> Any:
        body = receipt_pb2.ReceiptBody.FromString(receipt.body)
        return alter(receipt) if body.attempt == 1 else receipt

    return change


KEYS: dict[str, SigningKey] = {}


def tampered_output(receipt: receipt_pb2.Receipt) -> receipt_pb2.Receipt:
    body = receipt_pb2.ReceiptBody.FromString(receipt.body)
    body.output = "edited on the way"
    return seal(body, KEYS[receipt.key_id])


def metric(name: str, labels: dict[str, str]) -> float:
    return coordinator_metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rejected_receipt_is_retried_not_stranded(
    tmp_path: Path, router: RunningRouter
) -> None:
    """A receipt failing the content checks leaves its attempt to time out
    and the cell is retried; it is never stuck until the job deadline."""
    keys_before = dict(KEYS)

    def change(receipt: receipt_pb2.Receipt) -> Any:
        return first_attempt_only(tampered_output)(receipt)

    def remember_key(inner: RegionAgentService) -> ReceiptFilter:
        KEYS[inner._key.key_id] = inner._key
        return ReceiptFilter(inner, change)

    agent = await start_agent(tmp_path, "us-east", router.url, wrap=remember_key)
    coordinator = await start_coordinator(tmp_path, [agent], retry_base_seconds=0.1)
    job = one_region_job("rejected-retry", timeouts=SHORT)
    rejected = {"region": "us-east", "reason": "output_digest_mismatch"}
    before = metric("beacon_receipts_rejected_total", rejected)
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
    finally:
        await coordinator.stop()
        await agent.stop()
        KEYS.clear()
        KEYS.update(keys_before)

    outcome = events[-1].result.outcomes[0]
    assert outcome.status == job_pb2.CELL_STATUS_COMPLETED
    assert [a.attempt for a in outcome.attempts] == [1, 2]
    assert outcome.attempts[0].failure.code == "ATTEMPT_TIMEOUT"
    assert coordinator.jobs.rejections["output_digest_mismatch"] == 1
    assert metric("beacon_receipts_rejected_total", rejected) == before + 1


async def test_lost_receipt_frees_its_slot(
    tmp_path: Path, router: RunningRouter
) -> None:
    """With capacity 1, a receipt that never comes must not block the region."""
    dropped: list[str] = []

    def drop_first(receipt: receipt_pb2.Receipt) -> Any:
        if not dropped:
            dropped.append(receipt_pb2.ReceiptBody.FromString(receipt.body).cell_id)
            return None
        return receipt

    result = await run_job(
        tmp_path,
        router.url,
        one_region_job("lost-receipt", questions=3, timeouts=SHORT),
        change=drop_first,
        capacity=1,
    )

    assert result.counts.completed == 3
    lost = next(o for o in result.outcomes if o.cell_id == dropped[0])
    assert lost.attempts[0].failure.code == "ATTEMPT_TIMEOUT"
    assert len(lost.attempts) == 2


async def test_failed_store_write_is_not_accepted_and_cell_is_retried(
    tmp_path: Path, router: RunningRouter
) -> None:
    """Not durable means not accepted: the cell stays open and the same
    attempt is sent again (the agent replays its receipt), the stream lives."""
    flaky: list[FlakyStore] = []

    def wrap_store(store: Any) -> FlakyStore:
        flaky.append(FlakyStore(store, record_attempt_end=1))
        return flaky[0]

    result = await run_job(
        tmp_path,
        router.url,
        one_region_job("flaky-write", questions=2, timeouts=SHORT),
        wrap_store=wrap_store,
    )

    assert flaky[0].failed["record_attempt_end"] == 1
    assert result.counts.completed == 2
    assert [len(o.attempts) for o in result.outcomes] == [1, 1]


async def test_watchers_end_and_cancel_works_when_a_runner_fails(
    tmp_path: Path, router: RunningRouter
) -> None:
    """A runner that dies (its store failing) ends RunJob with the stored state,
    and the job can still be cancelled."""
    flaky: list[FlakyStore] = []

    def wrap_store(store: Any) -> FlakyStore:
        flaky.append(FlakyStore(store, set_job_status=1))
        return flaky[0]

    agent = await start_agent(tmp_path, "us-east", router.url)
    coordinator = await start_coordinator(tmp_path, [agent], wrap_store=wrap_store)
    job = one_region_job("dead-runner", questions=2)
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = await asyncio.wait_for(
                _collect(stub.RunJob(pb.RunJobRequest(spec=job))), timeout=20
            )
            cancelled = await stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id))
    finally:
        await coordinator.stop()
        await agent.stop()

    assert events[-1].result.counts.open == 2
    assert cancelled.job.status == job_pb2.JOB_STATUS_CANCELLED
    assert cancelled.job.counts.cancelled == 2


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def test_unanswered_cells_time_out_at_the_job_deadline(
    tmp_path: Path, router: RunningRouter
) -> None:
    """An agent that stays connected but never answers: cells end TIMED_OUT
    naming the job deadline, not 'agent unreachable'."""
    result = await run_job(
        tmp_path,
        router.url,
        one_region_job(
            "never-answers",
            questions=2,
            timeouts=job_pb2.Timeouts(
                router_call_seconds=1, cell_attempt_seconds=2.5, job_seconds=3
            ),
        ),
        change=lambda receipt: None,
    )

    assert result.status == job_pb2.JOB_STATUS_TIMED_OUT
    for outcome in result.outcomes:
        assert outcome.status == job_pb2.CELL_STATUS_TIMED_OUT
        assert "job deadline of 3s passed (layer: job)" in outcome.reason


async def test_mismatched_region_answer_is_kept_but_never_the_cells_answer(
    tmp_path: Path,
) -> None:
    """Invariant 6: a success served by another region is a mismatch; its text
    stays in the receipt for audit and is not shown as the cell's answer."""

    def other_region(request: RecordedRequest) -> CannedReply:
        sent = request.json()
        return CannedReply(
            body={
                "success": True,
                "response": "answer from elsewhere",
                "provider_used": "modal-eu-west",
                "metadata": {
                    "provider_type": "modal",
                    "region": "eu-west",
                    "model": sent["model"],
                },
            }
        )

    with serve_canned_router() as canned:
        canned.set_default(other_region)
        result = await run_job(tmp_path, canned.url, one_region_job("substituted"))
        calls = len(canned.requests_to("/inference"))

    outcome = result.outcomes[0]
    body = receipt_pb2.ReceiptBody.FromString(outcome.receipt.body)
    assert outcome.status == job_pb2.CELL_STATUS_REGION_MISMATCH
    assert outcome.answer == ""
    assert body.output == "answer from elsewhere"
    assert "eu-west" in outcome.reason
    assert calls == 1, "a mismatch is never retried"


def execute_request(
    text: str, *, temperature: float = 0.1
) -> receipt_pb2.ExecuteRequest:
    request = receipt_pb2.ExecuteRequest(
        job_id="agent-replay",
        cell_id=cell_id_for("agent-replay", "us-east", "llama3.2-1b", "q", 0),
        attempt=1,
        region="us-east",
        model="llama3.2-1b",
        question_id="q",
        prompt=text,
        prompt_sha256=sha256_hex(text),
        temperature=temperature,
        max_tokens=64,
        router_timeout_seconds=10,
        attempt_seconds=20,
    )
    return request


async def test_agent_replays_only_for_the_same_request(
    tmp_path: Path, router: RunningRouter
) -> None:
    """Reused ids with other settings are a new execution, not a stale replay."""
    agent = await start_agent(tmp_path, "us-east", router.url)
    try:
        async with grpc.aio.insecure_channel(agent.address) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            first = [
                r async for r in stub.Execute(iter([execute_request("[settings] a?")]))
            ]
            again = [
                r async for r in stub.Execute(iter([execute_request("[settings] a?")]))
            ]
            hotter = [
                r
                async for r in stub.Execute(
                    iter([execute_request("[settings] a?", temperature=0.9)])
                )
            ]
    finally:
        await agent.stop()

    assert again[0].body == first[0].body
    assert receipt_pb2.ReceiptBody.FromString(hotter[0].body).temperature == 0.9
    calls = [
        c for c in read_call_log(router.call_log) if c["prompt"] == "[settings] a?"
    ]
    assert [c["temperature"] for c in calls] == [0.1, 0.9]


async def test_lost_stream_does_not_run_a_cell_twice(tmp_path: Path) -> None:
    """The agent finishes work of a stream that dies; the attempt sent again on
    a new stream is answered from its book, not by a second router call."""
    with start_router(tmp_path, "--offline-latency", "0.5") as slow:
        agent = await start_agent(tmp_path, "us-east", slow.url)
        request = execute_request("[lost-stream] once?")
        try:
            async with grpc.aio.insecure_channel(agent.address) as channel:
                stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
                call = stub.Execute()
                await call.write(request)
                # Cancel while the router is still answering (it takes 0.5 s).
                await eventually(
                    lambda: (
                        len(read_call_log(slow.call_log)) == 0
                        and agent.servicer._slots._value == 3
                    ),
                    what="the call to be under way",
                )
                call.cancel()
                replay = [r async for r in stub.Execute(iter([request]))]
        finally:
            await agent.stop()
        calls = read_call_log(slow.call_log)

    assert receipt_pb2.ReceiptBody.FromString(replay[0].body).result == (
        receipt_pb2.ATTEMPT_RESULT_SUCCESS
    )
    assert [c["prompt"] for c in calls] == ["[lost-stream] once?"]


async def test_agent_capacity_recovers_after_streams_end(
    tmp_path: Path, router: RunningRouter
) -> None:
    agent = await start_agent(tmp_path, "us-east", router.url, capacity=2)
    try:
        async with grpc.aio.insecure_channel(agent.address) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            for n in range(3):
                call = stub.Execute()
                for i in range(4):
                    await call.write(execute_request(f"[capacity] {n}-{i}?"))
                call.cancel()
        await eventually(lambda: agent.servicer._slots._value == 2, what="slots back")
    finally:
        await agent.stop()


def test_sigterm_lets_an_agent_finish_its_cells_and_take_no_more(
    tmp_path: Path,
) -> None:
    """A graceful stop answers the cell in flight, reads no new ones, and
    keeps its router client until that cell is done."""
    key = SigningKey.generate()
    key.write(tmp_path / "agent.key")
    group = ProcessGroup(tmp_path / "run")
    with start_router(tmp_path, "--offline-latency", "1.0") as slow:
        try:
            agent = group.start(
                "agent",
                agent_command(
                    "us-east", slow.url, tmp_path / "agent.key", "--capacity", "1"
                ),
            )
            address = agent.wait_ready()
            receipts, status, health = asyncio.run(
                _execute_then_stop(address, agent.signal)
            )
        finally:
            group.stop_all()
        calls = read_call_log(slow.call_log)

    # While it finishes the cell in flight, it tells load balancers to go away.
    assert health == health_pb2.HealthCheckResponse.NOT_SERVING
    assert len(receipts) == 1
    body = receipt_pb2.ReceiptBody.FromString(receipts[0].body)
    assert body.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS, body.failure
    assert status == grpc.StatusCode.OK
    assert [c["prompt"] for c in calls] == ["[sigterm] 0?"]


async def _execute_then_stop(
    address: str, send_signal: Callable[[signal.Signals], None]
) -> tuple[list[receipt_pb2.Receipt], grpc.StatusCode, int]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        call = stub.Execute()
        for i in range(3):
            await call.write(execute_request(f"[sigterm] {i}?"))
        await asyncio.sleep(0.3)
        send_signal(signal.SIGTERM)

        async def not_serving() -> bool:
            reply = await health.Check(health_pb2.HealthCheckRequest())
            return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)

        await eventually(not_serving, within=5, what="health NOT_SERVING")
        status = (await health.Check(health_pb2.HealthCheckRequest())).status
        receipts = [receipt async for receipt in call]
        return receipts, await call.code(), status


async def test_an_expired_attempt_is_not_executed(
    tmp_path: Path, router: RunningRouter
) -> None:
    """A request read after its deadline (the agent was paused, say) is
    answered DEADLINE_EXCEEDED without a router call."""
    late = execute_request("[expired] too late?")
    late.deadline.FromSeconds(int(time.time()) - 5)
    agent = await start_agent(tmp_path, "us-east", router.url)
    try:
        async with grpc.aio.insecure_channel(agent.address) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            receipts = [r async for r in stub.Execute(iter([late]))]
    finally:
        await agent.stop()

    body = receipt_pb2.ReceiptBody.FromString(receipts[0].body)
    assert body.failure.code == "DEADLINE_EXCEEDED"
    assert not [c for c in read_call_log(router.call_log) if "[expired]" in c["prompt"]]


async def test_stopping_coordinator_tells_watchers_the_job_goes_on(
    tmp_path: Path,
) -> None:
    with start_router(tmp_path, "--offline-latency", "2") as slow:
        agent = await start_agent(tmp_path, "us-east", slow.url)
        coordinator = await start_coordinator(tmp_path, [agent])
        job = one_region_job("stopping", questions=2)
        try:
            async with open_channel(coordinator.endpoint) as channel:
                stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
                call = stub.RunJob(pb.RunJobRequest(spec=job))
                await call.read()
                await coordinator.jobs.shutdown()
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    while await call.read() is not grpc.aio.EOF:
                        pass
        finally:
            await coordinator.stop()
            await agent.stop()

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "beacon watch stopping" in caught.value.details()


async def test_a_port_in_use_is_refused() -> None:
    first = ServingServer(["test"])
    address = first.bind("127.0.0.1:0")
    second = ServingServer(["test"])
    try:
        with pytest.raises(OSError, match="in use"):
            second.bind(address)
    finally:
        await first.stop(0)
        await second.stop(0)


async def test_a_job_stored_afresh_is_executed_afresh(
    tmp_path: Path, router: RunningRouter
) -> None:
    """The same job id on a new store is a new job: agents that still hold
    receipts of the earlier one must not have them taken as its results."""
    agent = await start_agent(tmp_path, "us-east", router.url)
    job = one_region_job("stored-afresh", questions=2)
    results = []
    try:
        for store_dir in ("first", "second"):
            (tmp_path / store_dir).mkdir()
            coordinator = await start_coordinator(tmp_path / store_dir, [agent])
            try:
                async with open_channel(coordinator.endpoint) as channel:
                    stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
                    events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
                    results.append(events[-1].result)
            finally:
                await coordinator.stop()
    finally:
        await agent.stop()

    calls = [
        c for c in read_call_log(router.call_log) if "[stored-afresh]" in c["prompt"]
    ]
    assert len(calls) == 4
    for first, second in zip(results[0].outcomes, results[1].outcomes, strict=True):
        assert second.status == job_pb2.CELL_STATUS_COMPLETED
        assert second.receipt.body != first.receipt.body


async def test_a_stream_ending_mid_decision_does_not_strand_the_cell(
    tmp_path: Path, router: RunningRouter
) -> None:
    """The store is slow to record a receipt while the next send fails and
    ends the stream: the receipt's decision still completes."""
    flaky: list[FlakyStore] = []

    def wrap_store(store: Any) -> FlakyStore:
        flaky.append(
            FlakyStore(store, delays={"record_attempt_end": 0.3}, record_attempt_sent=0)
        )
        return flaky[0]

    agent = await start_agent(tmp_path, "us-east", router.url, capacity=1)
    coordinator = await start_coordinator(tmp_path, [agent], wrap_store=wrap_store)
    job = one_region_job("mid-decision", questions=2, timeouts=SHORT)
    original_sent = coordinator.jobs._context.store.record_attempt_sent

    sends = 0

    async def fail_second_send(*args: Any) -> None:
        nonlocal sends
        sends += 1
        if sends == 2:
            raise OSError("injected: the second send cannot be recorded")
        await original_sent(*args)

    flaky[0].record_attempt_sent = fail_second_send  # type: ignore[method-assign]
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
    finally:
        await coordinator.stop()
        await agent.stop()

    result = events[-1].result
    assert sends >= 3
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert result.counts.completed == 2


async def test_an_idle_job_holds_none_of_an_agents_slots(
    tmp_path: Path, router: RunningRouter
) -> None:
    """A job waiting on another region must not keep the shared agent busy."""
    agent = await start_agent(tmp_path, "us-east", router.url, capacity=1)
    coordinator = await start_coordinator(
        tmp_path,
        [agent, _unreachable("eu-west")],
        reconnect_max_seconds=0.5,
    )
    waiting = job_pb2.JobSpec(
        job_id="waits-on-eu", models=["m"], regions=["us-east", "eu-west"]
    )
    waiting.questions.add(id="q", text="[idle-slot] waiting?")
    quick = one_region_job("quick-after")
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            await stub.SubmitJob(pb.SubmitJobRequest(spec=waiting))

            async def us_east_done() -> bool:
                reply = await stub.GetJobResult(
                    pb.GetJobResultRequest(job_id="waits-on-eu")
                )
                return reply.result.counts.completed == 1

            await eventually(us_east_done, what="us-east cell of the waiting job")
            events = await asyncio.wait_for(
                _collect(stub.RunJob(pb.RunJobRequest(spec=quick))), timeout=5
            )
            still = await stub.GetJobResult(
                pb.GetJobResultRequest(job_id="waits-on-eu")
            )
            await stub.CancelJob(pb.CancelJobRequest(job_id="waits-on-eu"))
    finally:
        await coordinator.stop()
        await agent.stop()

    assert events[-1].result.counts.completed == 1
    assert still.result.status == job_pb2.JOB_STATUS_RUNNING


def _unreachable(region: str) -> Any:
    """An agent entry whose address answers nothing."""

    class Unreachable:
        def __init__(self) -> None:
            self.region = region
            self.address = f"127.0.0.1:{free_port()}"
            self.key = SigningKey.generate()

    return Unreachable()


async def test_no_job_starts_once_the_coordinator_stops(
    tmp_path: Path, router: RunningRouter
) -> None:
    agent = await start_agent(tmp_path, "us-east", router.url)
    coordinator = await start_coordinator(tmp_path, [agent])
    try:
        await coordinator.jobs.shutdown()
        with pytest.raises(CoordinatorStopping):
            await coordinator.jobs.submit(one_region_job("too-late"))
    finally:
        await coordinator.stop()
        await agent.stop()


async def test_short_attempt_timeouts_still_send_cells(
    tmp_path: Path, router: RunningRouter
) -> None:
    """An attempt timeout under a second is valid and must not stall the job."""
    result = await run_job(
        tmp_path,
        router.url,
        one_region_job(
            "short-attempts",
            questions=2,
            timeouts=job_pb2.Timeouts(
                router_call_seconds=0.5, cell_attempt_seconds=0.9, job_seconds=20
            ),
        ),
    )

    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert result.counts.completed == 2


def test_a_restarted_agent_replays_the_receipt_it_signed_before(
    tmp_path: Path, router: RunningRouter
) -> None:
    """Receipts kept on disk outlive a SIGKILL: the attempt sent again to the
    restarted agent gets the very same signed bytes, and no second call."""
    key = SigningKey.generate()
    key.write(tmp_path / "agent.key")
    group = ProcessGroup(tmp_path / "run")
    args = agent_command(
        "us-east",
        router.url,
        tmp_path / "agent.key",
        "--receipts-file",
        str(tmp_path / "receipts.db"),
    )
    request = execute_request("[kept across a restart] what is 2+2?")
    calls_before = len(read_call_log(router.call_log))
    receipts = []
    try:
        for _ in range(2):
            agent = group.start("agent", args)
            receipts.append(asyncio.run(_execute_one(agent.wait_ready(), request)))
            agent.signal(signal.SIGKILL)
            agent.process.wait()
    finally:
        group.stop_all()
    calls = read_call_log(router.call_log)[calls_before:]

    assert receipts[0].body and receipts[0] == receipts[1]
    assert [c["prompt"] for c in calls] == [request.prompt]


async def _execute_one(
    address: str, request: receipt_pb2.ExecuteRequest
) -> receipt_pb2.Receipt:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        call = stub.Execute()
        await call.write(request)
        receipt: receipt_pb2.Receipt = await call.read()
        call.cancel()
        return receipt


def test_sigterm_gives_up_hung_calls_within_one_grace_period(tmp_path: Path) -> None:
    """Calls that never end are cancelled once the grace period is over, so
    the agent exits in one grace period, not in several."""
    key = SigningKey.generate()
    key.write(tmp_path / "agent.key")
    group = ProcessGroup(tmp_path / "run")
    with start_router(tmp_path, "--fault-control") as hanging:
        add_fault_rules(hanging.url, {"shape": "hang", "count": 10})
        try:
            agent = group.start(
                "agent",
                agent_command("us-east", hanging.url, tmp_path / "agent.key"),
            )
            address = agent.wait_ready()
            asyncio.run(_send_then_stop(address, agent.signal))
            # Three grace periods in a row used to add up to 30 s.
            code = agent.process.wait(timeout=DEFAULT_GRACE_SECONDS + 10)
        finally:
            group.stop_all()
        calls = read_call_log(hanging.call_log)

    assert code == 0
    assert [c["abandoned"] for c in calls] == [True, True]


async def _send_then_stop(
    address: str, send_signal: Callable[[signal.Signals], None]
) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        call = stub.Execute()
        for i in range(2):
            request = execute_request(f"[hung at stop] {i}?")
            request.router_timeout_seconds = 120
            request.attempt_seconds = 150
            await call.write(request)
        await asyncio.sleep(0.5)
        send_signal(signal.SIGTERM)
        async for _ in call:
            pass
