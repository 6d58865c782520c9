"""The region agent over real gRPC, calling the real local router process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from beacon.cells import cell_id_for
from beacon.channels import client_options
from beacon.digests import sha256_hex
from beacon.v1 import (
    receipt_pb2,
    region_agent_service_pb2,
    region_agent_service_pb2_grpc,
)
from chaos.deployment import free_port
from tests.support.router_process import RunningRouter, read_call_log
from tests.support.servers import RunningAgent, start_agent


@pytest.fixture
async def agent(tmp_path: Path, router: RunningRouter) -> AsyncIterator[RunningAgent]:
    running = await start_agent(tmp_path, "eu-west", router.url, capacity=4)
    yield running
    await running.stop()


@pytest.fixture
async def stub(
    agent: RunningAgent,
) -> AsyncIterator[region_agent_service_pb2_grpc.RegionAgentServiceStub]:
    async with grpc.aio.insecure_channel(
        agent.address, options=client_options()
    ) as channel:
        yield region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)


def request(
    job_id: str,
    question_id: str,
    text: str,
    *,
    region: str = "eu-west",
    attempt: int = 1,
) -> receipt_pb2.ExecuteRequest:
    message = receipt_pb2.ExecuteRequest(
        job_id=job_id,
        cell_id=cell_id_for(job_id, region, "llama3.2-1b", question_id, 0),
        attempt=attempt,
        region=region,
        model="llama3.2-1b",
        question_id=question_id,
        prompt=text,
        prompt_sha256=sha256_hex(text),
        temperature=0.1,
        max_tokens=64,
        router_timeout_seconds=10,
    )
    message.deadline.FromNanoseconds(int((time.time() + 30) * 1e9))
    return message


async def execute(
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub,
    requests: list[receipt_pb2.ExecuteRequest],
) -> list[receipt_pb2.ReceiptBody]:
    receipts = [r async for r in stub.Execute(iter(requests))]
    return [receipt_pb2.ReceiptBody.FromString(r.body) for r in receipts]


def calls_for(router: RunningRouter, job_marker: str) -> list[dict[str, object]]:
    return [c for c in read_call_log(router.call_log) if job_marker in str(c["prompt"])]


async def test_describe_names_region_key_and_capacity(
    agent: RunningAgent, stub: region_agent_service_pb2_grpc.RegionAgentServiceStub
) -> None:
    reply = await stub.Describe(region_agent_service_pb2.DescribeRequest())

    assert reply.region == "eu-west"
    assert reply.key_id == agent.key.key_id
    assert reply.public_key == agent.key.public.raw
    assert reply.capacity == 4
    assert reply.router_healthy


async def test_each_cell_is_executed_with_its_own_prompt(
    agent: RunningAgent,
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub,
    router: RunningRouter,
) -> None:
    """Three cells, three router calls, three signed receipts with their own text."""
    texts = {f"q{i}": f"[agent-own-prompt] question {i}?" for i in range(3)}
    requests = [request("job-own", qid, text) for qid, text in texts.items()]

    bodies = await execute(stub, requests)

    assert sorted(b.question_id for b in bodies) == sorted(texts)
    for body in bodies:
        assert body.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
        assert body.prompt == texts[body.question_id]
        assert body.router.served_region == "eu-west"
        assert body.router.offline, "offline answers must say so"
        assert body.output_sha256 == sha256_hex(body.output)
        assert texts[body.question_id] in body.output
    assert len({b.output for b in bodies}) == 3
    calls = calls_for(router, "[agent-own-prompt]")
    assert sorted(str(c["prompt"]) for c in calls) == sorted(texts.values())
    assert {c["region_preference"] for c in calls} == {"eu-west"}


async def test_cell_for_another_region_is_refused(
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub, router: RunningRouter
) -> None:
    """Invariant 2: the agent refuses a cell of another region without calling out."""
    bodies = await execute(
        stub, [request("job-wrong", "q", "[wrong-region] hi?", region="us-east")]
    )

    assert bodies[0].result == receipt_pb2.ATTEMPT_RESULT_FAILURE
    assert bodies[0].failure.code == "WRONG_REGION"
    assert not bodies[0].failure.retryable
    assert calls_for(router, "[wrong-region]") == []


async def test_empty_request_is_invalid_not_wrong_region(
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub,
) -> None:
    bodies = await execute(stub, [receipt_pb2.ExecuteRequest()])

    assert bodies[0].failure.code == "INVALID_REQUEST"
    assert "region" in bodies[0].failure.message


async def test_bad_request_fails_its_cell_only(
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub, router: RunningRouter
) -> None:
    """A request whose digest does not match its prompt fails; the stream goes on."""
    bad = request("job-mixed", "bad", "[mixed] bad?")
    bad.prompt_sha256 = sha256_hex("something else")
    good = request("job-mixed", "good", "[mixed] good?")

    bodies = {b.question_id: b for b in await execute(stub, [bad, good])}

    assert bodies["bad"].failure.code == "PROMPT_DIGEST_MISMATCH"
    assert bodies["good"].result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
    assert [c["prompt"] for c in calls_for(router, "[mixed]")] == ["[mixed] good?"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_tokens", 0, "allows no answer"),
        ("max_tokens", -3, "outside 1 to 32768"),
        ("max_tokens", 2**31 - 1, "outside 1 to 32768"),
        ("temperature", float("nan"), "not a number"),
        ("temperature", 2.5, "outside 0 to 2"),
        ("temperature", float("inf"), "outside 0 to 2"),
    ],
)
async def test_generation_settings_out_of_bounds_fail_their_cell_only(
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub,
    router: RunningRouter,
    field: str,
    value: float,
    words: str,
) -> None:
    bad = request("job-bounds", "bad", f"[bounds-{field}-{value}] bad?")
    setattr(bad, field, value)
    good = request("job-bounds", "good", f"[bounds-{field}-{value}] good?")

    bodies = {b.question_id: b for b in await execute(stub, [bad, good])}

    failure = bodies["bad"].failure
    assert (failure.code, failure.retryable) == ("INVALID_REQUEST", False)
    assert f"ExecuteRequest.{field}" in failure.message
    assert words in failure.message
    assert bodies["good"].result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
    prompts = [c["prompt"] for c in calls_for(router, f"[bounds-{field}-{value}]")]
    assert prompts == [f"[bounds-{field}-{value}] good?"]


async def test_repeated_attempt_replays_the_signed_receipt(
    agent: RunningAgent,
    stub: region_agent_service_pb2_grpc.RegionAgentServiceStub,
    router: RunningRouter,
) -> None:
    """The same attempt sent twice (even on a new stream) runs once."""
    same = request("job-replay", "q", "[replay] once?")

    first = [r async for r in stub.Execute(iter([same, same]))]
    second = [r async for r in stub.Execute(iter([same]))]

    assert len(first) == 2
    assert first[0].SerializeToString() == first[1].SerializeToString()
    assert second[0].SerializeToString() == first[0].SerializeToString()
    assert len(calls_for(router, "[replay]")) == 1

    retry = [
        r
        async for r in stub.Execute(
            iter([request("job-replay", "q", "[replay] once?", attempt=2)])
        )
    ]
    assert receipt_pb2.ReceiptBody.FromString(retry[0].body).attempt == 2
    assert len(calls_for(router, "[replay]")) == 2


async def test_unreachable_router_is_a_retryable_failure_receipt(
    tmp_path: Path,
) -> None:
    """A router that cannot be reached fails the cell in a receipt, not the stream."""
    dead = await start_agent(tmp_path, "eu-west", f"http://127.0.0.1:{free_port()}")
    try:
        async with grpc.aio.insecure_channel(dead.address) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            bodies = await execute(stub, [request("job-dead", "q", "[dead] hi?")])
            description = await stub.Describe(
                region_agent_service_pb2.DescribeRequest()
            )
    finally:
        await dead.stop()

    assert bodies[0].result == receipt_pb2.ATTEMPT_RESULT_FAILURE
    assert bodies[0].failure.code == "ROUTER_UNREACHABLE"
    assert bodies[0].failure.retryable
    assert not description.router_healthy
