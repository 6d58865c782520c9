"""HybridRouterClient against a real HTTP server that answers on cue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon.v1 import receipt_pb2
from chaos.deployment import free_port
from region_agent.router_client import (
    HybridRouterClient,
    InferenceCall,
    RouterClient,
    RouterReply,
)
from tests.support.canned_router import (
    INFERENCE,
    CannedReply,
    CannedRouter,
    serve_canned_router,
)

REPLIES = Path(__file__).parent / "data" / "router_replies"

SUCCESS = receipt_pb2.ATTEMPT_RESULT_SUCCESS
FAILURE = receipt_pb2.ATTEMPT_RESULT_FAILURE
REGION_MISMATCH = receipt_pb2.ATTEMPT_RESULT_REGION_MISMATCH
MODEL_MISMATCH = receipt_pb2.ATTEMPT_RESULT_MODEL_MISMATCH

TIMEOUT = 10.0
SHORT_TIMEOUT = 0.5


def example(name: str) -> bytes:
    return (REPLIES / name).read_bytes()


def example_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(example(name))
    return data


def call_for(region: str, model: str, prompt: str = "What is 2+2?") -> InferenceCall:
    return InferenceCall(
        model=model, prompt=prompt, region=region, temperature=0.1, max_tokens=256
    )


@pytest.fixture(scope="module")
def canned_server() -> Iterator[CannedRouter]:
    with serve_canned_router() as router:
        yield router


@pytest.fixture
def canned(canned_server: CannedRouter) -> CannedRouter:
    canned_server.reset()
    return canned_server


@pytest.fixture
async def client(canned: CannedRouter) -> AsyncIterator[HybridRouterClient]:
    router_client = HybridRouterClient(canned.url)
    yield router_client
    await router_client.aclose()


@dataclass(frozen=True)
class Expect:
    result: int
    code: str
    retryable: bool
    output: str
    http_status: int
    served_region: str = ""
    message_has: str = ""


@dataclass(frozen=True)
class Shape:
    reply: CannedReply
    call: InferenceCall
    expect: Expect
    timeout: float = TIMEOUT


def success_with_metadata(**changes: Any) -> dict[str, Any]:
    body = example_json("success.json")
    body["metadata"] = {**body["metadata"], **changes}
    return body


SHAPES: dict[str, Shape] = {
    "success": Shape(
        CannedReply(200, example("success.json"), "application/json"),
        call_for("eu-west", "llama3.2-1b", "What is the capital of France?"),
        Expect(SUCCESS, "", False, "The capital of France is Paris.", 200, "eu-west"),
    ),
    "success-other-region": Shape(
        CannedReply(200, example("success-other-region.json"), "application/json"),
        call_for("eu-west", "qwen2.5-1.5b", "What is the current status of Taiwan?"),
        Expect(
            REGION_MISMATCH,
            "REGION_MISMATCH",
            False,
            "Taiwan is governed by the Republic of China ...",
            200,
            "us-east",
            "'eu-west'",
        ),
    ),
    "success-empty": Shape(
        CannedReply(200, example("success-empty.json"), "application/json"),
        call_for("asia-pacific", "mistral-7b"),
        Expect(SUCCESS, "", False, "", 200, "asia-pacific"),
    ),
    "success-null-response": Shape(
        CannedReply(200, {**example_json("success-empty.json"), "response": None}),
        call_for("asia-pacific", "mistral-7b"),
        Expect(SUCCESS, "", False, "", 200, "asia-pacific"),
    ),
    "failure-transient": Shape(
        CannedReply(200, example("failure-transient.json"), "application/json"),
        call_for("us-east", "llama3.2-1b"),
        Expect(
            FAILURE,
            "PROVIDER_HTTP_502",
            True,
            "",
            200,
            "us-east",
            "Provider returned HTTP 502",
        ),
    ),
    "failure-permanent": Shape(
        CannedReply(200, example("failure-permanent.json"), "application/json"),
        call_for("eu-west", "gpt-9"),
        Expect(
            FAILURE,
            "PROVIDER_EXECUTION_FAILED",
            False,
            "",
            200,
            "eu-west",
            "Unknown model: gpt-9",
        ),
    ),
    "failure-error-code-only": Shape(
        CannedReply(
            200,
            {"success": False, "error": "quota exhausted", "error_code": "QUOTA"},
        ),
        call_for("us-east", "llama3.2-1b"),
        Expect(FAILURE, "QUOTA", False, "", 200, "", "quota exhausted"),
    ),
    "unavailable": Shape(
        CannedReply(503, example("unavailable.json"), "application/json"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(
            FAILURE,
            "ROUTER_UNAVAILABLE",
            True,
            "",
            503,
            "",
            "No healthy providers available",
        ),
    ),
    "invalid-request": Shape(
        CannedReply(422, example("invalid-request.json"), "application/json"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(
            FAILURE,
            "ROUTER_REJECTED_REQUEST",
            False,
            "",
            422,
            "",
            "body.prompt: Field required",
        ),
    ),
    "not-json": Shape(
        CannedReply(200, example("not-json.txt"), "text/html"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", True, "", 200, "", "502 Bad Gateway"),
    ),
    "cut-off-json": Shape(
        CannedReply(200, example("success.json")[:120], "application/json"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", True, "", 200, "", "not JSON"),
    ),
    "json-wrong-schema": Shape(
        CannedReply(200, {"success": "yes", "response": 42}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "success"),
    ),
    "json-not-an-object": Shape(
        CannedReply(200, ["success", True]),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "reply schema"),
    ),
    "success-without-region": Shape(
        CannedReply(200, success_with_metadata(region=None)),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "metadata.region"),
    ),
    "success-without-metadata": Shape(
        CannedReply(200, {**example_json("success.json"), "metadata": None}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "metadata.region"),
    ),
    "model-mismatch": Shape(
        CannedReply(200, example("success.json"), "application/json"),
        call_for("eu-west", "mistral-7b"),
        Expect(
            MODEL_MISMATCH,
            "MODEL_MISMATCH",
            False,
            "The capital of France is Paris.",
            200,
            "eu-west",
            "'llama3.2-1b'",
        ),
    ),
    "region-and-model-mismatch": Shape(
        CannedReply(200, example("success-other-region.json"), "application/json"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(
            REGION_MISMATCH,
            "REGION_MISMATCH",
            False,
            "Taiwan is governed by the Republic of China ...",
            200,
            "us-east",
            "'qwen2.5-1.5b'",
        ),
    ),
    "deeply-nested-json": Shape(
        CannedReply(200, b"[" * 100_000 + b"]" * 100_000, "application/json"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "nested"),
    ),
    "lone-surrogate": Shape(
        CannedReply(
            200,
            b'{"success": true, "response": "\\ud800", "metadata": '
            b'{"region": "eu-west", "model": "llama3.2-1b"}}',
            "application/json",
        ),
        call_for("eu-west", "llama3.2-1b"),
        Expect(
            FAILURE, "ROUTER_REPLY_INVALID", False, "", 200, "", "not valid Unicode"
        ),
    ),
    "invalid-request-odd-detail": Shape(
        CannedReply(422, {"detail": [{"loc": 5, "msg": "bad temperature"}]}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(
            FAILURE, "ROUTER_REJECTED_REQUEST", False, "", 422, "", "bad temperature"
        ),
    ),
    "http-404": Shape(
        CannedReply(404, {"detail": "Not Found"}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_NOT_FOUND", False, "", 404, "", "probably wrong"),
    ),
    "http-429": Shape(
        CannedReply(429, {"detail": "slow down"}, headers={"Retry-After": "7"}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_RATE_LIMITED", True, "", 429, "", "Retry-After: 7"),
    ),
    "http-500": Shape(
        CannedReply(500, "Internal Server Error"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_HTTP_500", True, "", 500, "", "Internal Server Error"),
    ),
    "http-502-html": Shape(
        CannedReply(502, example("not-json.txt"), "text/html"),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_HTTP_502", True, "", 502, "", "Bad Gateway"),
    ),
    "http-403": Shape(
        CannedReply(403, {"detail": "forbidden"}),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_HTTP_403", False, "", 403, "", "forbidden"),
    ),
    "http-500-with-router-body": Shape(
        CannedReply(500, example("failure-transient.json"), "application/json"),
        call_for("us-east", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_HTTP_500", True, "", 500, "us-east"),
    ),
    "hang-past-timeout": Shape(
        CannedReply(200, example("success.json"), "application/json", hang=True),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_TIMEOUT", True, "", 0, "", "0.5s"),
        SHORT_TIMEOUT,
    ),
    "body-stalls-past-timeout": Shape(
        CannedReply(200, example("success.json"), body_delay_seconds=30.0),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_TIMEOUT", True, "", 200, "", "headers arrived"),
        SHORT_TIMEOUT,
    ),
    "delay-past-timeout": Shape(
        CannedReply(200, example("success.json"), delay_seconds=30.0),
        call_for("eu-west", "llama3.2-1b"),
        Expect(FAILURE, "ROUTER_TIMEOUT", True, "", 0, "", "deadline"),
        SHORT_TIMEOUT,
    ),
}


def check(reply: RouterReply, expect: Expect) -> None:
    assert reply.result == expect.result
    assert reply.output == expect.output
    assert reply.router.router_kind == "hybrid"
    assert reply.router.http_status == expect.http_status
    assert reply.router.served_region == expect.served_region
    assert reply.latency_seconds >= 0
    if expect.code == "":
        assert reply.failure is None
        return
    assert reply.failure is not None
    assert reply.failure.code == expect.code
    assert reply.failure.retryable is expect.retryable
    assert reply.failure.http_status == expect.http_status
    assert reply.failure.stage in {"router_call", "router_reply"}
    assert expect.message_has in reply.failure.message


@pytest.mark.parametrize("name", list(SHAPES))
async def test_reply_shape(
    name: str, canned: CannedRouter, client: HybridRouterClient
) -> None:
    shape = SHAPES[name]
    canned.enqueue(shape.reply)
    reply = await client.infer(shape.call, shape.timeout)
    check(reply, shape.expect)
    # Never retried: the router saw exactly one call.
    assert len(canned.requests_to(INFERENCE)) == 1


def test_every_example_file_has_a_shape() -> None:
    assert {path.stem for path in REPLIES.iterdir()} <= set(SHAPES)


async def test_request_body_has_exactly_the_contract_fields(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    prompt = "Describe the situation in Hong Kong in 2019."
    call = InferenceCall(
        model="qwen2.5-1.5b",
        prompt=prompt,
        region="asia-pacific",
        temperature=0.3,
        max_tokens=128,
    )
    reply = await client.infer(call, TIMEOUT)
    assert reply.result == SUCCESS
    (request,) = canned.requests_to(INFERENCE)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["user-agent"].startswith("beacon-agent/")
    assert request.json() == {
        "model": "qwen2.5-1.5b",
        "prompt": prompt,
        "temperature": 0.3,
        "max_tokens": 128,
        "region_preference": "asia-pacific",
        "cost_priority": True,
    }


async def test_each_call_sends_its_own_prompt_and_region(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    calls = [
        call_for(region, model, f"{question} ({region}, {model})")
        for region in ("us-east", "eu-west")
        for model in ("llama3.2-1b", "mistral-7b")
        for question in ("What is 2+2?", "Who are you?")
    ]
    replies = await asyncio.gather(*(client.infer(call, TIMEOUT) for call in calls))
    sent = sorted(
        (r.json()["prompt"], r.json()["region_preference"], r.json()["model"])
        for r in canned.requests_to(INFERENCE)
    )
    assert sent == sorted((c.prompt, c.region, c.model) for c in calls)
    for call, reply in zip(calls, replies, strict=True):
        assert reply.result == SUCCESS
        assert reply.output == f"canned answer to: {call.prompt}"
        assert reply.router.served_region == call.region


async def test_router_call_fields_from_success(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    canned.enqueue(CannedReply(200, example("success.json"), "application/json"))
    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    router = reply.router
    assert router.provider == "modal-eu-west"
    assert router.provider_type == "modal"
    assert router.served_model == "llama3.2-1b"
    assert router.inference_seconds == pytest.approx(2.41)
    assert router.cost_estimate == pytest.approx(0.000723)
    assert router.offline is False
    assert router.completion_tokens == 8
    receipt = example_json("success.json")["metadata"]["receipt"]
    assert router.provider_receipt_json == json.dumps(receipt, sort_keys=True)


async def test_offline_provider_and_tokens(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    body = success_with_metadata(
        provider_type="offline", prompt_tokens=5, completion_tokens=11, receipt=None
    )
    canned.enqueue(CannedReply(200, body))
    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    assert reply.result == SUCCESS
    assert reply.router.offline is True
    assert reply.router.prompt_tokens == 5
    assert reply.router.completion_tokens == 11
    assert reply.router.provider_receipt_json == ""


async def test_out_of_range_token_count_is_invalid(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    canned.enqueue(CannedReply(200, success_with_metadata(prompt_tokens=2**40)))
    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    assert reply.failure is not None
    assert reply.failure.code == "ROUTER_REPLY_INVALID"


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    router_client = HybridRouterClient(url)
    try:
        reply = await router_client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
        healthy, detail = await router_client.health()
    finally:
        await router_client.aclose()
    check(
        reply,
        Expect(FAILURE, "ROUTER_UNREACHABLE", True, "", 0, "", url + "/inference"),
    )
    assert healthy is False
    assert url in detail


async def test_wrong_base_path_is_not_found(canned: CannedRouter) -> None:
    router_client = HybridRouterClient(canned.url + "/v2/")
    try:
        reply = await router_client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    finally:
        await router_client.aclose()
    check(reply, Expect(FAILURE, "ROUTER_NOT_FOUND", False, "", 404, "", "/v2/"))


async def test_deadline_already_passed_sends_nothing(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), 0.0)
    check(reply, Expect(FAILURE, "ROUTER_TIMEOUT", True, "", 0, "", "nothing was sent"))
    assert canned.requests == []


async def test_cancellation_propagates(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    canned.enqueue(CannedReply(hang=True))
    task = asyncio.create_task(client.infer(call_for("eu-west", "llama3.2-1b"), 30.0))
    for _ in range(200):
        if canned.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_timeout_then_next_call_works(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    canned.enqueue(CannedReply(hang=True))
    first = await client.infer(call_for("eu-west", "llama3.2-1b"), SHORT_TIMEOUT)
    second = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    assert first.failure is not None
    assert first.failure.code == "ROUTER_TIMEOUT"
    assert second.result == SUCCESS


async def test_health(canned: CannedRouter, client: HybridRouterClient) -> None:
    assert (await client.health())[0] is True
    canned.enqueue(CannedReply(200, {"status": "degraded"}), path="/health")
    assert (await client.health())[0] is False
    canned.enqueue(CannedReply(503, {"detail": "starting"}), path="/health")
    healthy, detail = await client.health()
    assert healthy is False
    assert "503" in detail


async def test_health_is_answered_while_every_connection_is_busy(
    canned: CannedRouter,
) -> None:
    """A router busy with slow calls is still healthy: the health check does
    not wait behind them for a connection."""
    router_client = HybridRouterClient(canned.url, max_connections=1)
    canned.enqueue(CannedReply(hang=True))
    call = asyncio.create_task(
        router_client.infer(call_for("eu-west", "llama3.2-1b"), 30.0)
    )
    try:
        for _ in range(200):
            if canned.requests:
                break
            await asyncio.sleep(0.01)
        healthy, detail = await router_client.health()
    finally:
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        await router_client.aclose()
    assert healthy is True, detail


async def test_satisfies_protocol(client: HybridRouterClient) -> None:
    as_protocol: RouterClient = client
    assert as_protocol.kind == "hybrid"


async def test_injected_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=example("success.json"))

    router_client = HybridRouterClient(
        "http://router.test/base", transport=httpx.MockTransport(handler)
    )
    try:
        reply = await router_client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    finally:
        await router_client.aclose()
    assert reply.result == SUCCESS
    assert [str(request.url) for request in seen] == [
        "http://router.test/base/inference"
    ]


def test_rejects_non_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        HybridRouterClient("router.local:8000")


async def test_calls_one_after_another_share_one_kept_alive_connection(
    canned: CannedRouter, client: HybridRouterClient
) -> None:
    for _ in range(5):
        reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
        assert reply.result == SUCCESS
    peers = {request.peer for request in canned.requests_to(INFERENCE)}
    assert len(peers) == 1 and "" not in peers


async def test_calls_in_flight_never_exceed_max_connections() -> None:
    """The router sees at most `max_connections` calls at once from one
    client, however many are started."""
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, content=example("success.json"))

    router_client = HybridRouterClient(
        "http://router.test",
        max_connections=2,
        transport=httpx.MockTransport(handler),
    )
    try:
        replies = await asyncio.gather(
            *(
                router_client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
                for _ in range(8)
            )
        )
    finally:
        await router_client.aclose()
    assert [reply.result for reply in replies] == [SUCCESS] * 8
    assert most == 2


@pytest.mark.parametrize(
    ("status", "retryable", "said"),
    [
        (500, True, "router failed with HTTP 500: "),
        (502, True, "router failed with HTTP 502: "),
        (
            501,
            False,
            "router failed with HTTP 501 (Not Implemented), which a retry will "
            "not change: ",
        ),
        (
            505,
            False,
            "router failed with HTTP 505 (HTTP Version Not Supported), which a "
            "retry will not change: ",
        ),
    ],
)
async def test_a_server_error_page_is_one_line_and_permanent_ones_not_retried(
    canned: CannedRouter,
    client: HybridRouterClient,
    status: int,
    retryable: bool,
    said: str,
) -> None:
    page = (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"\t<h1>{status}   Error</h1>\r\n</body>\r\n</html>\r\n"
    )
    canned.enqueue(CannedReply(status, page, "text/html"))

    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)

    assert reply.failure is not None
    assert reply.failure.retryable is retryable
    assert reply.failure.message == (
        f"{said}<html> <head><title>{status}</title></head> <body> "
        f"<h1>{status} Error</h1> </body> </html>"
    )


@pytest.mark.parametrize(
    ("status", "body", "quoted"),
    [
        (200, b"partial\n\n   reply", "'partial reply'"),
        (422, {"detail": "bad\n\tprompt"}, ": bad prompt"),
        (
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "too\nlong"}]},
            ": body.prompt: too long",
        ),
    ],
)
async def test_every_quoted_body_is_one_line(
    canned: CannedRouter,
    client: HybridRouterClient,
    status: int,
    body: Any,
    quoted: str,
) -> None:
    canned.enqueue(CannedReply(status, body))

    reply = await client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)

    assert reply.failure is not None
    assert reply.failure.message.endswith(quoted)


async def test_a_secret_is_blanked_before_the_one_line_excerpt_is_cut(
    canned: CannedRouter,
) -> None:
    secret = "sk-0123456789abcdef"
    router_client = HybridRouterClient(canned.url, secrets=(secret,))
    canned.enqueue(CannedReply(502, f"bad key\n\n\n{secret}\n" + "x " * 300))
    try:
        reply = await router_client.infer(call_for("eu-west", "llama3.2-1b"), TIMEOUT)
    finally:
        await router_client.aclose()

    assert reply.failure is not None
    message = reply.failure.message
    assert message.startswith("router failed with HTTP 502: bad key [redacted] x x")
    assert "\n" not in message and secret[:8] not in message
