"""An agent calling an OpenAI-compatible chat-completions server directly,
against a real local HTTP server that speaks that API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from beacon.settings import ConfigError
from beacon.v1 import job_pb2, receipt_pb2
from region_agent.config import AgentConfig, load_agent_config
from region_agent.openai_client import OpenAIChatClient
from region_agent.router_reply import InferenceCall
from tests.support.openai_server import (
    FILLER,
    FakeUpstream,
    closed_loopback_url,
    pieces_of,
)
from tests.support.servers import run_then_stop, start_agent, start_coordinator


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture
async def client(server: FakeUpstream) -> AsyncIterator[OpenAIChatClient]:
    chat = OpenAIChatClient(
        server.url, model_map={"llama3.2-1b": "llama3.2:1b"}, api_key="sk-local"
    )
    yield chat
    await chat.aclose()


def call(model: str, prompt: str = "What is 2+2?") -> InferenceCall:
    return InferenceCall(
        model=model, prompt=prompt, region="eu-west", temperature=0.1, max_tokens=64
    )


async def test_answer_usage_and_served_model_go_into_the_receipt(
    server: FakeUpstream, client: OpenAIChatClient
) -> None:
    reply = await client.infer(call("llama3.2-1b"), timeout_seconds=10)

    assert reply.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
    assert reply.failure is None
    assert reply.output == "upstream answer to: What is 2+2?"
    sent = server.requests[-1]
    assert sent["json"]["model"] == "llama3.2:1b", "the server's own name is sent"
    assert sent["json"]["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert sent["authorization"] == "Bearer sk-local"
    router = reply.router
    assert router.router_kind == "openai-compatible"
    assert router.served_region == "eu-west" and router.served_model == "llama3.2-1b"
    assert (router.prompt_tokens, router.completion_tokens) == (11, 7)
    assert router.http_status == 200 and not router.offline
    assert router.provider.startswith("openai-compatible@127.0.0.1:")
    assert json.loads(router.provider_receipt_json) == {
        "id": "chatcmpl-test",
        "model": "llama3.2:1b",
    }


async def test_another_model_answering_is_a_mismatch_kept_for_audit(
    client: OpenAIChatClient,
) -> None:
    reply = await client.infer(call("substitute-me"), timeout_seconds=10)
    assert reply.result == receipt_pb2.ATTEMPT_RESULT_MODEL_MISMATCH
    assert reply.failure is not None and reply.failure.code == "MODEL_MISMATCH"
    assert not reply.failure.retryable
    assert "qwen2.5-0.5b-instruct" in reply.failure.message
    assert reply.output, "the answer is kept for audit"
    assert reply.router.served_model == "qwen2.5-0.5b-instruct"


async def test_an_empty_answer_is_a_result(client: OpenAIChatClient) -> None:
    reply = await client.infer(call("empty"), timeout_seconds=10)
    assert reply.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
    assert reply.output == ""


@pytest.mark.parametrize(
    ("model", "code", "retryable", "detail"),
    [
        ("fail-500", "ROUTER_HTTP_500", True, "model crashed"),
        ("fail-429", "ROUTER_RATE_LIMITED", True, "slow down"),
        ("fail-502", "ROUTER_HTTP_502", True, "<h1>502 Error</h1>"),
        ("fail-501", "ROUTER_HTTP_501", False, "(Not Implemented), which a retry"),
        ("fail-505", "ROUTER_HTTP_505", False, "(HTTP Version Not Supported)"),
        ("fail-400", "ROUTER_HTTP_400", False, "unknown model"),
        ("not-json", "ROUTER_REPLY_INVALID", True, "not JSON"),
        ("no-choices", "ROUTER_REPLY_INVALID", False, "no choices"),
    ],
)
async def test_server_errors_become_failures_with_a_retryable_flag(
    client: OpenAIChatClient, model: str, code: str, retryable: bool, detail: str
) -> None:
    reply = await client.infer(call(model), timeout_seconds=10)
    assert reply.result == receipt_pb2.ATTEMPT_RESULT_FAILURE
    assert reply.failure is not None
    assert (reply.failure.code, reply.failure.retryable) == (code, retryable)
    assert detail in reply.failure.message
    assert reply.router.router_kind == "openai-compatible"


async def test_an_error_page_is_quoted_on_one_line(client: OpenAIChatClient) -> None:
    reply = await client.infer(call("fail-501"), timeout_seconds=10)

    assert reply.failure is not None
    assert reply.failure.message == (
        "router failed with HTTP 501 (Not Implemented), which a retry will not "
        "change: <html> <head><title>501 Error</title></head> <body> <center>"
        "<h1>501 Error</h1></center> <hr><center>nginx</center> </body> </html>"
    )


async def test_a_slow_server_ends_at_the_deadline(client: OpenAIChatClient) -> None:
    reply = await client.infer(call("slow"), timeout_seconds=0.5)
    assert reply.failure is not None
    assert (reply.failure.code, reply.failure.retryable) == ("ROUTER_TIMEOUT", True)


async def test_an_unreachable_server_is_retryable() -> None:
    chat = OpenAIChatClient(closed_loopback_url())
    try:
        reply = await chat.infer(call("m"), timeout_seconds=5)
        healthy, detail = await chat.health()
    finally:
        await chat.aclose()
    assert reply.failure is not None
    assert (reply.failure.code, reply.failure.retryable) == ("ROUTER_UNREACHABLE", True)
    assert not healthy and "cannot reach" in detail


async def test_health_reads_the_model_list(client: OpenAIChatClient) -> None:
    healthy, detail = await client.health()
    assert healthy, detail


def test_a_missing_api_key_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEACON_TEST_MISSING_KEY", raising=False)
    config = AgentConfig(
        region="eu-west",
        router_url="http://127.0.0.1:1/v1",
        router_kind="openai",
        api_key_env="BEACON_TEST_MISSING_KEY",
        signing_key=tmp_path / "k.key",
    )
    with pytest.raises(ConfigError, match="BEACON_TEST_MISSING_KEY is not set"):
        config.api_key()


async def test_a_job_runs_through_an_agent_on_an_openai_server(
    tmp_path: Path, server: FakeUpstream
) -> None:
    agent = await start_agent(
        tmp_path,
        "eu-west",
        server.url,
        router_kind="openai",
        model_map={"llama3.2-1b": "llama3.2:1b"},
    )
    coordinator = await start_coordinator(tmp_path, [agent])
    spec = job_pb2.JobSpec(
        job_id="openai-1", models=["llama3.2-1b", "empty"], regions=["eu-west"]
    )
    spec.questions.add(id="math", text="What is 2+2?")
    spec.questions.add(id="capital", text="What is the capital of France?")
    result = await run_then_stop(coordinator, [agent], spec)
    assert result.counts.total == result.counts.completed == 4
    for outcome in result.outcomes:
        body = receipt_pb2.ReceiptBody.FromString(outcome.receipt.body)
        assert body.router.router_kind == "openai-compatible"
        assert body.router.served_region == "eu-west"
        assert body.router.served_model == outcome.model
        assert body.router.completion_tokens == 7
        question = {"math": "What is 2+2?", "capital": "What is the capital of France?"}
        if outcome.model == "empty":
            assert outcome.answer == ""
        else:
            assert (
                outcome.answer == f"upstream answer to: {question[outcome.question_id]}"
            )


async def test_a_key_the_server_echoes_never_reaches_the_receipt(
    client: OpenAIChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await client.infer(call("echo-key"), timeout_seconds=10)
    _, detail = await client.health()

    assert reply.failure is not None
    assert "[redacted]" in reply.failure.message
    assert "sk-local" not in reply.failure.message
    assert "sk-local" not in reply.router.provider_receipt_json
    assert "sk-local" not in caplog.text
    assert "sk-local" not in detail


LONG_KEY = "sk-proj-Z8q2LmX4vN7rT1wK9pB3cD6fG0hJ5yA"


@pytest.fixture
async def long_key_client(server: FakeUpstream) -> AsyncIterator[OpenAIChatClient]:
    chat = OpenAIChatClient(server.url, api_key=LONG_KEY)
    yield chat
    await chat.aclose()


@pytest.mark.parametrize(
    "model",
    [
        # Across the cut of an error's detail (500 characters), and near it.
        "echo-key-at-480-error",
        "echo-key-at-497-error",
        "echo-key-at-499-error",
        "echo-key-at-0-error",
        # Spelled in JSON escapes, which only decoding reveals.
        "echo-key-at-480-escaped",
        "echo-key-at-497-escaped",
        # Across the cut of a body excerpt (200 characters).
        "echo-key-at-190-text",
        "echo-key-at-198-text",
        # In an answer and in the completion's id.
        "echo-key-at-10-answer",
    ],
)
async def test_no_piece_of_an_echoed_key_survives_any_cut(
    long_key_client: OpenAIChatClient, caplog: pytest.LogCaptureFixture, model: str
) -> None:
    reply = await long_key_client.infer(call(model), timeout_seconds=10)

    texts = {
        "output": reply.output,
        "log": caplog.text,
        "receipt": reply.router.SerializeToString().decode("utf-8", "replace"),
    }
    if reply.failure is not None:
        texts["failure"] = reply.failure.SerializeToString().decode("utf-8", "replace")
    leaks = {
        where: piece
        for where, text in texts.items()
        for piece in pieces_of(LONG_KEY)
        if piece in text
    }
    assert leaks == {}
    assert FILLER * 10 in reply.output + (
        reply.failure.message if reply.failure else ""
    )


@pytest.mark.parametrize("key", ["sk-line\r\n", "sk-ünïcode", " sk-spaced"])
def test_an_api_key_a_header_cannot_carry_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("BEACON_TEST_ODD_KEY", key)
    config = AgentConfig(
        region="eu-west",
        router_url="http://127.0.0.1:1/v1",
        router_kind="openai",
        api_key_env="BEACON_TEST_ODD_KEY",
        signing_key=tmp_path / "k.key",
    )
    with pytest.raises(ConfigError, match="cannot carry") as raised:
        config.api_key()
    assert key.strip() not in str(raised.value)


def test_a_url_with_a_password_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="user name or password") as raised:
        load_agent_config(
            None,
            region="eu-west",
            router_url="http://user:hunter2@127.0.0.1:1/v1",
            signing_key=tmp_path / "k.key",
        )
    assert "hunter2" not in str(raised.value)
