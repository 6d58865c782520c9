"""Fuzzing the real servers: thousands of random and mutated JobSpecs and
ExecuteRequests. Nothing crashes, nothing is INTERNAL or UNKNOWN, every
stream ends within its deadline, every request gets its receipt, and both
servers stay SERVING.

The servers run on an event loop of their own in a background thread, so
hypothesis drives them from plain (synchronous) tests.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.bearer import bearer_interceptors
from beacon.signing import PublicKey
from beacon.timestamps import timestamp
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import (
    coordinator_service_pb2_grpc,
    job_pb2,
    receipt_pb2,
    region_agent_service_pb2_grpc,
)
from tests.support.execute import execute_request
from tests.support.router_process import RunningRouter
from tests.support.servers import (
    RunningAgent,
    RunningCoordinator,
    start_agent,
    start_coordinator,
)

T = TypeVar("T")

# The servers' own retry jitter draws from `random` in the background thread
# while hypothesis generates examples; that is not the strategies' doing.
pytestmark = pytest.mark.filterwarnings(
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)

CALL_SECONDS = 30.0
OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
# What a submission may answer: accepted, refused with field violations, or
# the same id already holding another spec.
SUBMIT_ANSWERS = {OK, INVALID, grpc.StatusCode.ALREADY_EXISTS}
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# Counts for the report at the end: examples, statuses, receipts.
SEEN: Counter[str] = Counter()


class Background:
    """An event loop in a thread, running the servers and their clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T], timeout: float = 120.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Servers:
    background: Background
    coordinator: RunningCoordinator
    agents: list[RunningAgent]
    coordinator_channel: grpc.aio.Channel
    agent_channel: grpc.aio.Channel

    @property
    def coordinator_stub(self) -> coordinator_service_pb2_grpc.CoordinatorServiceStub:
        return coordinator_service_pb2_grpc.CoordinatorServiceStub(
            self.coordinator_channel
        )

    @property
    def agent_stub(self) -> region_agent_service_pb2_grpc.RegionAgentServiceStub:
        return region_agent_service_pb2_grpc.RegionAgentServiceStub(self.agent_channel)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, router: RunningRouter
) -> Iterator[Servers]:
    background = Background()
    tmp_path = tmp_path_factory.mktemp("fuzz")

    async def start() -> Servers:
        agents = [
            await start_agent(tmp_path, "us-east", router.url, capacity=8),
            await start_agent(tmp_path, "eu-west", router.url, capacity=8),
        ]
        # A small cell cap keeps the jobs that pass validation short.
        coordinator = await start_coordinator(tmp_path, agents, max_cells_per_job=4)
        return Servers(
            background,
            coordinator,
            agents,
            grpc.aio.insecure_channel(
                coordinator.address,
                interceptors=bearer_interceptors(coordinator.token),
            ),
            grpc.aio.insecure_channel(agents[0].address),
        )

    running = background.run(start())
    yield running

    async def stop() -> None:
        await running.coordinator_channel.close()
        await running.agent_channel.close()
        await running.coordinator.stop()
        for agent in running.agents:
            await agent.stop()

    background.run(stop())
    background.close()


# Strategies

ANY_TEXT = st.text(max_size=40)
ID = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), ANY_TEXT
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INT32 = st.integers(-(2**31), 2**31 - 1)
# Around the question limit (4,000) and the system prompt limit (8,000);
# built, not drawn character by character, to keep examples cheap.
LONG_TEXT = st.sampled_from([3999, 4000, 4001, 7999, 8000, 8001]).map(lambda n: "é" * n)
REGION_NAMES = st.one_of(
    st.sampled_from(["us-east", "eu-west", "US", "EU", "eu", "APAC", "ASIA", ""]),
    ANY_TEXT,
)
MODELS = st.one_of(st.sampled_from(["llama3.2-1b", "mistral-7b", ""]), ANY_TEXT)
QUESTION = st.builds(
    job_pb2.Question,
    id=ID,
    text=st.one_of(ANY_TEXT, LONG_TEXT),
    group=ANY_TEXT,
)


@st.composite
def random_specs(draw: st.DrawFn) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=draw(st.one_of(st.just(""), ID, st.text(min_size=60, max_size=70))),
        title=draw(ANY_TEXT),
        models=draw(st.lists(MODELS, max_size=3)),
        regions=draw(st.lists(REGION_NAMES, max_size=3)),
        system_prompt=draw(st.one_of(st.just(""), ANY_TEXT)),
        samples=draw(st.integers(-3, 120)),
        max_attempts=draw(st.integers(-3, 12)),
    )
    spec.questions.extend(draw(st.lists(QUESTION, max_size=3)))
    if draw(st.booleans()):
        spec.generation.temperature = draw(FLOATS)
    spec.generation.max_tokens = draw(st.integers(-10, 40_000))
    for name in ("router_call_seconds", "cell_attempt_seconds", "job_seconds"):
        if draw(st.booleans()):
            setattr(spec.timeouts, name, draw(FLOATS))
    return spec


def valid_spec(job_id: str) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id=job_id, models=["llama3.2-1b"], regions=["us-east", "EU"]
    )
    spec.questions.add(id="capital", text="What is the capital of France?")
    return spec


MUTATIONS: list[tuple[str, Any]] = [
    ("duplicate-region", lambda s, d: s.regions.append("us-east")),
    ("unknown-region", lambda s, d: s.regions.append(d(ANY_TEXT))),
    ("duplicate-model", lambda s, d: s.models.append("llama3.2-1b")),
    ("odd-model", lambda s, d: s.models.append(d(ANY_TEXT))),
    ("duplicate-question", lambda s, d: s.questions.add(id="capital", text="x?")),
    ("empty-text", lambda s, d: setattr(s.questions[0], "text", "")),
    ("long-text", lambda s, d: setattr(s.questions[0], "text", "q" * 4001)),
    ("question-id", lambda s, d: setattr(s.questions[0], "id", d(ANY_TEXT))),
    ("job-id", lambda s, d: setattr(s, "job_id", d(ANY_TEXT))),
    ("temperature", lambda s, d: setattr(s.generation, "temperature", d(FLOATS))),
    ("max-tokens", lambda s, d: setattr(s.generation, "max_tokens", d(INT32))),
    (
        "samples",
        lambda s, d: setattr(s, "samples", d(INT32)),
    ),
    ("attempts", lambda s, d: setattr(s, "max_attempts", d(st.integers(-50, 50)))),
    ("job-timeout", lambda s, d: setattr(s.timeouts, "job_seconds", d(FLOATS))),
    (
        "call-timeout",
        lambda s, d: setattr(s.timeouts, "router_call_seconds", d(FLOATS)),
    ),
    ("too-many-cells", lambda s, d: s.models.extend(["mistral-7b", "qwen2.5-1.5b"])),
    ("title", lambda s, d: setattr(s, "title", d(ANY_TEXT))),
    (
        "system-prompt",
        lambda s, d: setattr(s, "system_prompt", d(LONG_TEXT)),
    ),
    ("nothing", lambda s, d: None),
]


@st.composite
def mutated_specs(draw: st.DrawFn) -> job_pb2.JobSpec:
    spec = valid_spec(draw(st.from_regex(r"fz-[a-z0-9]{10}", fullmatch=True)))
    for _, mutate in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        mutate(spec, draw)
    return spec


SPECS = st.one_of(random_specs(), mutated_specs())


# Calls


async def submit(servers: Servers, spec: job_pb2.JobSpec) -> grpc.StatusCode:
    try:
        await servers.coordinator_stub.SubmitJob(
            pb.SubmitJobRequest(spec=spec), timeout=CALL_SECONDS
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


async def submit_bytes(servers: Servers, data: bytes) -> grpc.StatusCode:
    call = servers.coordinator_channel.unary_unary(
        "/beacon.v1.CoordinatorService/SubmitJob"
    )
    try:
        await call(data, timeout=CALL_SECONDS)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


async def run(servers: Servers, spec: job_pb2.JobSpec) -> tuple[grpc.StatusCode, int]:
    """The stream's status and, when it ended well, its job's status."""
    last = pb.JobEvent()
    try:
        async for event in servers.coordinator_stub.RunJob(
            pb.RunJobRequest(spec=spec), timeout=CALL_SECONDS
        ):
            last = event
    except grpc.aio.AioRpcError as exc:
        return exc.code(), 0
    return OK, last.result.status


def record(kind: str, code: grpc.StatusCode) -> None:
    SEEN[f"{kind} examples"] += 1
    SEEN[f"{kind} {code.name}"] += 1


@settings(FUZZ, max_examples=1500)
@given(spec=SPECS)
def test_submitted_specs_are_accepted_or_refused_clearly(
    servers: Servers, spec: job_pb2.JobSpec
) -> None:
    code = servers.background.run(submit(servers, spec))

    record("SubmitJob", code)
    assert code in SUBMIT_ANSWERS


@settings(FUZZ, max_examples=500)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda spec, flips: _flipped(
                pb.SubmitJobRequest(spec=spec).SerializeToString(), flips
            ),
            mutated_specs(),
            st.lists(
                st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4
            ),
        ),
    )
)
def test_corrupt_request_bytes_are_refused_clearly(
    servers: Servers, data: bytes
) -> None:
    code = servers.background.run(submit_bytes(servers, data))

    record("SubmitJob(bytes)", code)
    assert code in SUBMIT_ANSWERS


def _flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(data)
    for position, mask in flips:
        if mutable:
            mutable[position % len(mutable)] ^= mask
    return bytes(mutable)


@settings(FUZZ, max_examples=150)
@given(spec=SPECS)
def test_run_streams_end_with_a_result_or_a_clear_refusal(
    servers: Servers, spec: job_pb2.JobSpec
) -> None:
    code, status = servers.background.run(run(servers, spec), CALL_SECONDS + 10)

    record("RunJob", code)
    assert code in SUBMIT_ANSWERS
    if code == OK:
        SEEN[f"RunJob job {job_pb2.JobStatus.Name(status)}"] += 1
        assert status == job_pb2.JOB_STATUS_COMPLETED


# ExecuteRequests sent straight to an agent


REQUEST_MUTATIONS: list[tuple[str, Any]] = [
    ("region", lambda r, d: setattr(r, "region", d(REGION_NAMES))),
    ("model", lambda r, d: setattr(r, "model", d(MODELS))),
    ("prompt", lambda r, d: setattr(r, "prompt", d(ANY_TEXT))),
    ("digest", lambda r, d: setattr(r, "prompt_sha256", d(ANY_TEXT))),
    (
        "attempt",
        lambda r, d: setattr(r, "attempt", d(INT32)),
    ),
    ("temperature", lambda r, d: setattr(r, "temperature", d(FLOATS))),
    (
        "max-tokens",
        lambda r, d: setattr(r, "max_tokens", d(INT32)),
    ),
    ("router-timeout", lambda r, d: setattr(r, "router_timeout_seconds", d(FLOATS))),
    ("attempt-seconds", lambda r, d: setattr(r, "attempt_seconds", d(FLOATS))),
    (
        "deadline",
        lambda r, d: r.deadline.CopyFrom(
            timestamp(time.time() + d(st.integers(-(10**6), 10)))
        ),
    ),
    ("no-deadline", lambda r, d: r.ClearField("deadline")),
    ("ids", lambda r, d: setattr(r, "cell_id", d(ANY_TEXT))),
    ("empty", lambda r, d: r.Clear()),
    ("nothing", lambda r, d: None),
]


@st.composite
def execute_requests(draw: st.DrawFn) -> receipt_pb2.ExecuteRequest:
    job_id = draw(st.from_regex(r"fx-[a-z0-9]{8}", fullmatch=True))
    question = draw(st.sampled_from(["capital", "sum"]))
    request = execute_request(
        job_id, question, f"[{job_id}] {question}", attempt=draw(st.integers(1, 3))
    )
    mutations = draw(st.lists(st.sampled_from(REQUEST_MUTATIONS), max_size=2))
    for _, mutate in mutations:
        mutate(request, draw)
    return request


async def execute(
    servers: Servers, requests: list[receipt_pb2.ExecuteRequest]
) -> tuple[grpc.StatusCode, list[receipt_pb2.Receipt]]:
    receipts: list[receipt_pb2.Receipt] = []
    try:
        async for receipt in servers.agent_stub.Execute(
            iter(requests), timeout=CALL_SECONDS
        ):
            receipts.append(receipt)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), receipts
    return OK, receipts


@settings(FUZZ, max_examples=300)
@given(requests=st.lists(execute_requests(), min_size=1, max_size=8))
def test_every_execute_request_gets_a_signed_receipt(
    servers: Servers, requests: list[receipt_pb2.ExecuteRequest]
) -> None:
    code, receipts = servers.background.run(
        execute(servers, requests), CALL_SECONDS + 10
    )

    record("Execute", code)
    SEEN["Execute requests"] += len(requests)
    assert code == OK
    assert len(receipts) == len(requests)
    key: PublicKey = servers.agents[0].key.public
    answered = Counter()
    for receipt in receipts:
        assert key.verify(receipt.signature, receipt.body)
        body = receipt_pb2.ReceiptBody.FromString(receipt.body)
        assert body.region == "us-east", "an agent signs only for its own region"
        outcome = receipt_pb2.AttemptResult.Name(body.result)
        answered[(body.cell_id, body.attempt)] += 1
        SEEN[f"Execute receipt {outcome} {body.failure.code}".strip()] += 1
        if body.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS:
            assert not math.isnan(body.temperature)
    sent = Counter((r.cell_id, r.attempt) for r in requests)
    assert answered == sent, "one receipt per request, for that request"


def test_servers_stay_serving_and_still_run_a_job(servers: Servers) -> None:
    """Runs after the fuzz tests above (file order)."""

    async def check() -> tuple[list[int], int]:
        statuses = []
        for channel in (servers.coordinator_channel, servers.agent_channel):
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            statuses.append(reply.status)
        _, status = await run(servers, valid_spec("after-fuzz"))
        return statuses, status

    statuses, status = servers.background.run(check())

    serving = health_pb2.HealthCheckResponse.SERVING
    assert statuses == [serving, serving]
    assert status == job_pb2.JOB_STATUS_COMPLETED
    print("\nfuzz counts:")
    for name, count in sorted(SEEN.items()):
        print(f"  {name}: {count}")
