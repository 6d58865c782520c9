"""The coordinator over real gRPC, with real agents and the real router process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from beacon.client import open_channel
from beacon.digests import sha256_hex
from beacon.signing import SigningKey
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2, receipt_pb2
from region_agent.receipts import seal
from region_agent.service import RegionAgentService
from tests.support.eventually import eventually
from tests.support.router_process import RunningRouter, read_call_log
from tests.support.servers import (
    RunningAgent,
    RunningCoordinator,
    start_agent,
    start_coordinator,
)

REGIONS = ("us-east", "eu-west")


@dataclass
class Deployment:
    coordinator: RunningCoordinator
    agents: list[RunningAgent]
    stub: coordinator_service_pb2_grpc.CoordinatorServiceStub


@pytest.fixture
async def make_deployment(
    tmp_path: Path, router: RunningRouter
) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Deployment, grpc.aio.Channel]] = []

    async def make(
        wrap: Callable[[RegionAgentService], Any] | None = None, **settings: Any
    ) -> Deployment:
        agents = [
            await start_agent(tmp_path, region, router.url, wrap=wrap)
            for region in REGIONS
        ]
        coordinator = await start_coordinator(tmp_path, agents, **settings)
        channel = open_channel(coordinator.endpoint)
        deployment = Deployment(
            coordinator,
            agents,
            coordinator_service_pb2_grpc.CoordinatorServiceStub(channel),
        )
        started.append((deployment, channel))
        return deployment

    yield make
    for deployment, channel in started:
        await channel.close()
        await deployment.coordinator.stop()
        for agent in deployment.agents:
            await agent.stop()


def spec(job_id: str, marker: str, **fields: Any) -> job_pb2.JobSpec:
    message = job_pb2.JobSpec(
        job_id=job_id,
        models=["llama3.2-1b", "mistral-7b"],
        regions=list(REGIONS),
        **fields,
    )
    message.questions.add(id="capital", text=f"{marker} What is the capital of France?")
    message.questions.add(id="math", text=f"{marker} What is 2+2?")
    return message


def calls_with(router: RunningRouter, marker: str) -> list[dict[str, Any]]:
    return [
        c for c in read_call_log(router.call_log) if str(c["prompt"]).startswith(marker)
    ]


async def run_to_result(
    stub: coordinator_service_pb2_grpc.CoordinatorServiceStub, job: job_pb2.JobSpec
) -> tuple[list[pb.JobEvent], job_pb2.JobResult]:
    events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=job))]
    assert events[-1].HasField("result"), "the stream must end with the JobResult"
    return events, events[-1].result


async def test_run_job_streams_progress_and_ends_with_the_result(
    make_deployment: Callable[..., Any], router: RunningRouter
) -> None:
    deployment = await make_deployment()

    events, result = await run_to_result(deployment.stub, spec("run-1", "[run-1]"))

    finished = [e for e in events if e.HasField("cell_finished")]
    assert len(finished) == 8
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert not result.partial
    assert result.counts.total == result.counts.completed == 8
    assert len(result.outcomes) == 8
    for outcome in result.outcomes:
        body = receipt_pb2.ReceiptBody.FromString(outcome.receipt.body)
        assert outcome.status == job_pb2.CELL_STATUS_COMPLETED
        assert body.region == outcome.region
        assert body.model == outcome.model
        assert outcome.answer == body.output
        assert len(outcome.attempts) == 1
        key = result.public_keys[outcome.receipt.key_id]
        assert key, "the result carries the public key of every receipt"
    assert len(calls_with(router, "[run-1]")) == 8


async def submit_violations(deployment: Any, bad: job_pb2.JobSpec) -> dict[str, str]:
    """The field violations SubmitJob refuses `bad` with (INVALID_ARGUMENT)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deployment.stub.SubmitJob(pb.SubmitJobRequest(spec=bad))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_tokens", 0, "allows no answer"),
        ("max_tokens", -1, "outside 1 to 32768"),
        ("max_tokens", 1_000_000, "outside 1 to 32768"),
        ("temperature", float("nan"), "not a number"),
        ("temperature", -0.5, "outside 0 to 2"),
    ],
)
async def test_generation_settings_out_of_bounds_are_refused_at_submit(
    make_deployment: Callable[..., Any], field: str, value: float, words: str
) -> None:
    bad = spec("bad-generation", "[bad-generation]")
    setattr(bad.generation, field, value)

    fields = await submit_violations(await make_deployment(), bad)

    assert words in fields[f"generation.{field}"]
    assert "leave it out" in fields[f"generation.{field}"]


async def test_invalid_spec_gets_field_violations(
    make_deployment: Callable[..., Any],
) -> None:
    bad = spec("bad-1", "[bad]")
    bad.regions.append("mars")
    bad.models.append("mistral-7b")

    fields = await submit_violations(await make_deployment(), bad)

    assert "regions[2]" in fields and "us-east" in fields["regions[2]"]
    assert "models[2]" in fields and "duplicate" in fields["models[2]"]


@pytest.mark.parametrize(
    ("call", "request_message", "code"),
    [
        (
            "GetJobResult",
            pb.GetJobResultRequest(job_id="no-such-job"),
            grpc.StatusCode.NOT_FOUND,
        ),
        ("GetJobResult", pb.GetJobResultRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "CancelJob",
            pb.CancelJobRequest(job_id="no-such-job"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            "ListJobs",
            pb.ListJobsRequest(page_size=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "ListJobs",
            pb.ListJobsRequest(page_token="no-such-job"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "GetJobResult",
            pb.GetJobResultRequest(job_id="x" * 5000),
            grpc.StatusCode.NOT_FOUND,
        ),
    ],
    ids=[
        "result-unknown",
        "result-no-id",
        "cancel-unknown",
        "list-negative-page",
        "list-unknown-token",
        "result-huge-id",
    ],
)
async def test_bad_requests_get_the_right_status(
    make_deployment: Callable[..., Any],
    call: str,
    request_message: Any,
    code: grpc.StatusCode,
) -> None:
    deployment = await make_deployment()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(deployment.stub, call)(request_message)

    assert caught.value.code() == code
    assert caught.value.details()
    assert len(caught.value.details()) < 300, "a huge id is not echoed back"


async def test_watch_unknown_job_is_not_found(
    make_deployment: Callable[..., Any],
) -> None:
    deployment = await make_deployment()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [
            e async for e in deployment.stub.WatchJob(pb.WatchJobRequest(job_id="nope"))
        ]

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_same_job_twice_executes_once(
    make_deployment: Callable[..., Any], router: RunningRouter
) -> None:
    """Invariant 10: resubmitting a job attaches to it; nothing runs twice."""
    deployment = await make_deployment()
    job = spec("twice-1", "[twice-1]")

    _, first = await run_to_result(deployment.stub, job)
    again = await deployment.stub.SubmitJob(pb.SubmitJobRequest(spec=job))
    _, second = await run_to_result(deployment.stub, job)

    assert not again.created
    assert again.job_id == "twice-1"
    assert [o.answer for o in second.outcomes] == [o.answer for o in first.outcomes]
    assert len(calls_with(router, "[twice-1]")) == 8

    changed = spec("twice-1", "[twice-1] changed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deployment.stub.SubmitJob(pb.SubmitJobRequest(spec=changed))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_list_jobs_pages_through_every_job(
    make_deployment: Callable[..., Any],
) -> None:
    deployment = await make_deployment()
    for i in range(3):
        await deployment.stub.SubmitJob(
            pb.SubmitJobRequest(spec=spec(f"list-{i}", "[list]"))
        )

    first = await deployment.stub.ListJobs(pb.ListJobsRequest(page_size=2))
    second = await deployment.stub.ListJobs(
        pb.ListJobsRequest(page_size=2, page_token=first.next_page_token)
    )

    ids = [j.job_id for j in first.jobs] + [j.job_id for j in second.jobs]
    assert ids == ["list-2", "list-1", "list-0"], "newest first"
    assert not second.next_page_token


class TamperingAgent(RegionAgentService):
    """A real agent whose receipts are altered on the way out."""

    def __init__(self, inner: RegionAgentService, alter: Callable[[Any], Any]) -> None:
        self._inner = inner
        self._alter = alter
        self.sent = 0

    async def Describe(self, request: Any, context: Any) -> Any:
        return await self._inner.Describe(request, context)

    async def Execute(self, request_iterator: Any, context: Any) -> Any:
        async for receipt in self._inner.Execute(request_iterator, context):
            self.sent += 1
            yield self._alter(receipt)


def _resign(change: Callable[[receipt_pb2.ReceiptBody], None]) -> Callable[[Any], Any]:
    """Alter the body and sign it again with the agent's own (pinned) key."""

    def alter(receipt: receipt_pb2.Receipt) -> receipt_pb2.Receipt:
        body = receipt_pb2.ReceiptBody.FromString(receipt.body)
        change(body)
        return seal(body, KEYS[receipt.key_id])

    return alter


def _flip_output(receipt: receipt_pb2.Receipt) -> receipt_pb2.Receipt:
    body = receipt_pb2.ReceiptBody.FromString(receipt.body)
    body.output = "a different answer"
    body.output_sha256 = sha256_hex(body.output)
    return receipt_pb2.Receipt(
        body=body.SerializeToString(),
        signature=receipt.signature,
        key_id=receipt.key_id,
    )


def _other_key(receipt: receipt_pb2.Receipt) -> receipt_pb2.Receipt:
    return seal(receipt_pb2.ReceiptBody.FromString(receipt.body), SigningKey.generate())


def _set(field: str, value: Any) -> Callable[[receipt_pb2.ReceiptBody], None]:
    return lambda body: setattr(body, field, value)


def _other_prompt(body: receipt_pb2.ReceiptBody) -> None:
    body.prompt = "What is 3+3?"
    body.prompt_sha256 = sha256_hex(body.prompt)


def _tampered_output(body: receipt_pb2.ReceiptBody) -> None:
    body.output = "edited after the call"


KEYS: dict[str, SigningKey] = {}


@pytest.mark.parametrize(
    ("alter", "reason"),
    [
        (_flip_output, "bad_signature"),
        (_other_key, "unknown_key"),
        (_resign(_set("cell_id", "c_not_a_cell_of_this_job")), "cell_not_open"),
        (_resign(_other_prompt), "prompt_sha256_mismatch"),
        (_resign(_tampered_output), "output_digest_mismatch"),
        (_resign(_set("job_id", "another-job")), "job_id_mismatch"),
    ],
    ids=[
        "bad-signature",
        "unpinned-key",
        "unknown-cell",
        "mismatched-prompt-digest",
        "tampered-output",
        "replayed-from-another-job",
    ],
)
async def test_rejected_receipts_leave_cells_open(
    make_deployment: Callable[..., Any],
    alter: Callable[[Any], Any],
    reason: str,
) -> None:
    """Invariant 4: a receipt that fails any check is refused; its cell stays open."""
    tamperers: list[TamperingAgent] = []

    def wrap(inner: RegionAgentService) -> TamperingAgent:
        KEYS[inner._key.key_id] = inner._key
        tamperer = TamperingAgent(inner, alter)
        tamperers.append(tamperer)
        return tamperer

    deployment = await make_deployment(wrap=wrap)
    job = spec(f"tamper-{reason}", f"[tamper-{reason}]")
    await deployment.stub.SubmitJob(pb.SubmitJobRequest(spec=job))

    rejections = deployment.coordinator.jobs.rejections
    await eventually(lambda: rejections[reason] >= 8, what=f"8 {reason} rejections")
    reply = await deployment.stub.GetJobResult(
        pb.GetJobResultRequest(job_id=job.job_id)
    )

    result = reply.result
    assert sum(t.sent for t in tamperers) >= 8
    assert result.counts.open == 8
    for outcome in result.outcomes:
        assert outcome.status == job_pb2.CELL_STATUS_OPEN
        assert not outcome.receipt.body
        assert not outcome.answer

    cancelled = await deployment.stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id))
    assert cancelled.job.status == job_pb2.JOB_STATUS_CANCELLED
    assert cancelled.job.counts.cancelled == 8


async def test_cancel_keeps_finished_cells_and_marks_the_rest(
    make_deployment: Callable[..., Any],
) -> None:
    deployment = await make_deployment()
    done = spec("cancel-done", "[cancel-done]")
    await run_to_result(deployment.stub, done)

    reply = await deployment.stub.CancelJob(pb.CancelJobRequest(job_id="cancel-done"))

    assert reply.job.status == job_pb2.JOB_STATUS_COMPLETED
    assert reply.job.counts.completed == 8


async def test_agent_of_another_region_never_gets_cells(
    tmp_path: Path, router: RunningRouter
) -> None:
    """Invariant 2: a misconfigured address pointing at eu-west's agent for
    us-east is refused at connect, and us-east's cells fail with the reason."""
    eu_agent = await start_agent(tmp_path, "eu-west", router.url)
    misplaced = RunningAgent(
        "us-east",
        eu_agent.address,
        eu_agent.key,
        eu_agent.servicer,
        eu_agent.serving,
        eu_agent.router,
    )
    coordinator = await start_coordinator(
        tmp_path, [eu_agent, misplaced], reconnect_max_seconds=0.5
    )
    job = spec(
        "misplaced-1",
        "[misplaced]",
        timeouts=job_pb2.Timeouts(
            router_call_seconds=1, cell_attempt_seconds=2, job_seconds=4
        ),
    )
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            _, result = await run_to_result(stub, job)
    finally:
        await coordinator.stop()
        await eu_agent.stop()

    by_region: dict[str, set[int]] = {}
    for outcome in result.outcomes:
        by_region.setdefault(outcome.region, set()).add(outcome.status)
        if outcome.region == "us-east":
            assert "never sent" in outcome.reason
            assert "serves 'eu-west'" in outcome.reason
    assert by_region == {
        "eu-west": {job_pb2.CELL_STATUS_COMPLETED},
        "us-east": {job_pb2.CELL_STATUS_NOT_RUN},
    }
    assert result.status == job_pb2.JOB_STATUS_TIMED_OUT
    assert result.partial
    served = {c["region_preference"] for c in calls_with(router, "[misplaced]")}
    assert served == {"eu-west"}
