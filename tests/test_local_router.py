"""The local router, run as a real subprocess, against the hybrid router's API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.eventually import eventually
from tests.support.openai_server import FakeUpstream, closed_loopback_url, pieces_of
from tests.support.router_process import (
    REPO_ROOT,
    RunningRouter,
    add_fault_rules,
    pending_fault_rules,
    read_call_log,
    start_router,
    stop_process,
)

REGIONS = ["us-east", "eu-west", "asia-pacific"]
MODELS = ["llama3.2-1b", "mistral-7b", "qwen2.5-1.5b"]
QUESTIONS = [
    "What is 2+2?",
    "What is the capital of France?",
    "What happened at Tiananmen Square on June 4, 1989?",
]
OFFLINE_LABEL = "[offline provider, not model output]"
REPLY_KEYS = {
    "success",
    "response",
    "error",
    "error_code",
    "failure",
    "provider_used",
    "inference_time",
    "cost_estimate",
    "metadata",
}
FAILURE_KEYS = {
    "code",
    "stage",
    "component",
    "message",
    "transient",
    "region",
    "provider",
    "model",
    "timestamp",
}
UPSTREAM_KEY_ENV = "BEACON_TEST_UPSTREAM_KEY"
UPSTREAM_KEY = "test-key-not-secret"
UNSET_KEY_ENV = "BEACON_TEST_UNSET_VARIABLE"


def expected_digest(region: str, model: str, prompt: str) -> str:
    return hashlib.sha256(f"{region}|{model}|{prompt}".encode()).hexdigest()[:12]


def body(model: str, prompt: str, region: str | None, **extra: Any) -> dict[str, Any]:
    return {"model": model, "prompt": prompt, "region_preference": region, **extra}


def client_for(router: RunningRouter) -> httpx.Client:
    return httpx.Client(base_url=router.url, timeout=30.0, trust_env=False)


@pytest.fixture(scope="module")
def offline_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    with start_router(tmp_path_factory.mktemp("offline")) as router:
        yield router


@pytest.fixture
def client(offline_router: RunningRouter) -> Iterator[httpx.Client]:
    with client_for(offline_router) as http:
        yield http


# The router as a process.


def test_announces_its_url_once_on_stdout(offline_router: RunningRouter) -> None:
    assert offline_router.url.startswith("http://127.0.0.1:")
    assert not offline_router.url.endswith(":0")
    lines = offline_router.stdout().splitlines()
    assert lines == [f"beacon-router listening on {offline_router.url}"]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signal(tmp_path: Path, sig: str) -> None:
    with start_router(tmp_path) as router:
        ready_file = router.call_log.parent / "ready"
        assert ready_file.exists()
        router.process.send_signal(getattr(signal, sig))
        assert router.process.wait(timeout=20) == 0
        assert not ready_file.exists()
        assert "Traceback" not in router.stderr()


async def test_calls_still_hung_when_it_stops_are_answered_and_logged(
    tmp_path: Path,
) -> None:
    """After the shutdown's grace period: each call gets a 503 that says why
    and a line in the call log, and the router exits without a traceback."""
    env = {"BEACON_ROUTER_SHUTDOWN_TIMEOUT_SECONDS": "1"}
    with start_router(tmp_path, "--fault-control", env=env) as router:
        add_fault_rules(router.url, {"shape": "hang", "count": 2})
        async with httpx.AsyncClient(base_url=router.url, timeout=30) as client:
            calls = [
                asyncio.create_task(
                    client.post(
                        "/inference",
                        json={"model": "llama3.2-1b", "prompt": f"hung {i}?"},
                    )
                )
                for i in range(2)
            ]
            await eventually(lambda: not pending_fault_rules(router.url))
            router.process.send_signal(signal.SIGTERM)
            replies = await asyncio.gather(*calls)
        assert await asyncio.to_thread(router.process.wait, 20) == 0
        stderr = router.stderr()

    assert [r.status_code for r in replies] == [503, 503]
    assert all("router stopped" in r.json()["detail"] for r in replies)
    logged = read_call_log(router.call_log)
    assert sorted(c["prompt"] for c in logged) == ["hung 0?", "hung 1?"]
    assert not any(c["success"] for c in logged)
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--upstream", "eu-west"],
        ["--upstream", "eu-west=ftp://127.0.0.1/v1"],
        ["--region", "Mars"],
        ["--region", "eu-west", "--region", "eu-west"],
        ["--port", "99999"],
        ["--offline-latency", "soon"],
        ["--model-map", "eu-west:llama3.2-1b=llama3.2:1b"],
        ["--upstream-api-key-env", "eu-west=KEY"],
        ["--model-map", "eu-west-llama"],
        ["--no-such-flag"],
        [
            "--upstream",
            "eu-west=http://127.0.0.1:9/v1",
            "--upstream-api-key-env",
            f"eu-west={UNSET_KEY_ENV}",
        ],
    ],
)
def test_bad_flags_give_one_line_and_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local_router", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != UNSET_KEY_ENV},
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr


# Offline answers.


def test_offline_answer_is_labelled_and_attributed(client: httpx.Client) -> None:
    reply = client.post(
        "/inference", json=body("mistral-7b", "Who are you?", "eu-west")
    )
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == REPLY_KEYS
    assert data["success"] is True
    assert data["error"] is None and data["error_code"] is None
    assert data["failure"] is None
    assert data["response"].startswith(OFFLINE_LABEL)
    assert "mistral-7b in eu-west" in data["response"]
    assert expected_digest("eu-west", "mistral-7b", "Who are you?") in data["response"]
    assert data["provider_used"] == "offline-eu-west"
    assert data["cost_estimate"] == 0.0
    assert isinstance(data["inference_time"], float) and data["inference_time"] >= 0
    assert data["metadata"] == {
        "provider_type": "offline",
        "region": "eu-west",
        "model": "mistral-7b",
    }


def test_offline_answers_are_deterministic_and_differ_per_cell(
    client: httpx.Client,
) -> None:
    answers: dict[tuple[str, str, str], str] = {}
    for region in REGIONS:
        for model in MODELS:
            for question in QUESTIONS:
                first = client.post("/inference", json=body(model, question, region))
                again = client.post("/inference", json=body(model, question, region))
                assert first.json()["response"] == again.json()["response"]
                answers[(region, model, question)] = first.json()["response"]
    assert len(set(answers.values())) == len(REGIONS) * len(MODELS) * len(QUESTIONS)


def test_prompts_sharing_a_long_prefix_get_different_answers(
    client: httpx.Client,
) -> None:
    prefix = "x" * 300
    one = client.post("/inference", json=body("llama3.2-1b", prefix + "A", "us-east"))
    two = client.post("/inference", json=body("llama3.2-1b", prefix + "B", "us-east"))
    assert one.json()["response"] != two.json()["response"]


def test_multiline_prompt_gives_a_one_line_answer(client: httpx.Client) -> None:
    prompt = "System: be brief.\n\nUser: What is 2+2?\n"
    data = client.post(
        "/inference", json=body("qwen2.5-1.5b", prompt, "us-east")
    ).json()
    assert "\n" not in data["response"]
    assert "System: be brief. User: What is 2+2?" in data["response"]


async def test_concurrent_calls_each_get_their_own_cell(tmp_path: Path) -> None:
    with start_router(tmp_path, "--offline-latency", "0.05") as router:
        cells = [(r, m, q) for r in REGIONS for m in MODELS for q in QUESTIONS]
        async with httpx.AsyncClient(
            base_url=router.url, timeout=30.0, trust_env=False
        ) as http:
            replies = await asyncio.gather(
                *(http.post("/inference", json=body(m, q, r)) for r, m, q in cells)
            )
        for (region, model, question), reply in zip(cells, replies, strict=True):
            data = reply.json()
            assert data["metadata"]["region"] == region
            assert data["metadata"]["model"] == model
            assert expected_digest(region, model, question) in data["response"]
        logged = read_call_log(router.call_log)
        assert sorted(
            (e["region_preference"], e["model"], e["prompt"]) for e in logged
        ) == sorted(cells)


# Regions the router does not serve.


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"model": "llama3.2-1b", "prompt": "What is 2+2?"}, "REGION_REQUIRED"),
        (body("llama3.2-1b", "What is 2+2?", None), "REGION_REQUIRED"),
        (body("llama3.2-1b", "What is 2+2?", "sa-east"), "NO_PROVIDER_FOR_REGION"),
        (body("llama3.2-1b", "What is 2+2?", "EU"), "NO_PROVIDER_FOR_REGION"),
        (body("llama3.2-1b", "What is 2+2?", ""), "NO_PROVIDER_FOR_REGION"),
    ],
)
def test_unserved_region_fails_without_borrowing_another(
    client: httpx.Client, payload: dict[str, Any], code: str
) -> None:
    reply = client.post("/inference", json=payload)
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == REPLY_KEYS
    assert data["success"] is False
    assert data["response"] is None
    assert data["error_code"] == code
    assert data["provider_used"] is None
    assert data["metadata"]["region"] is None
    failure = data["failure"]
    assert set(failure) >= FAILURE_KEYS
    assert failure["code"] == code
    assert failure["transient"] is False
    assert failure["component"] == "local_router"
    assert failure["provider"] is None
    assert failure["model"] == "llama3.2-1b"
    for region in REGIONS:
        assert region in failure["message"]
    assert data["error"] == failure["message"]


# Malformed requests and other paths.


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"model": "llama3.2-1b", "region_preference": "eu-west"}),
        json.dumps(body("llama3.2-1b", "hi", "eu-west", max_tokens="many")),
        json.dumps(body("llama3.2-1b", "hi", "eu-west", temperature=-1)),
        json.dumps(["llama3.2-1b", "hi"]),
        "{not json",
    ],
)
def test_malformed_body_is_422(client: httpx.Client, content: str) -> None:
    reply = client.post(
        "/inference", content=content, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422
    assert isinstance(reply.json()["detail"], list)


def test_missing_prompt_is_named_in_422(client: httpx.Client) -> None:
    reply = client.post("/inference", json={"model": "llama3.2-1b"})
    assert reply.status_code == 422
    assert ["body", "prompt"] in [error["loc"] for error in reply.json()["detail"]]


def test_wrong_path_is_404(client: httpx.Client) -> None:
    assert client.post("/v1/inference", json={}).status_code == 404


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "regions": REGIONS,
        "providers": [f"offline-{region}" for region in REGIONS],
    }


def test_providers_all_and_by_region(client: httpx.Client) -> None:
    everyone = client.get("/providers").json()
    assert everyone == [
        {"name": f"offline-{r}", "provider_type": "offline", "region": r}
        for r in REGIONS
    ]
    assert client.get("/providers", params={"region": "asia-pacific"}).json() == [
        {
            "name": "offline-asia-pacific",
            "provider_type": "offline",
            "region": "asia-pacific",
        }
    ]
    assert client.get("/providers", params={"region": "sa-east"}).json() == []


def test_region_flags_choose_the_offline_regions(tmp_path: Path) -> None:
    with (
        start_router(tmp_path, "--region", "eu-west", "--region", "APAC") as router,
        client_for(router) as http,
    ):
        assert http.get("/health").json()["regions"] == ["eu-west", "asia-pacific"]
        data = http.post("/inference", json=body("m", "q", "us-east")).json()
        assert data["error_code"] == "NO_PROVIDER_FOR_REGION"


# The call log.


def test_call_log_has_one_line_per_call_with_the_exact_prompt(tmp_path: Path) -> None:
    prompts = ["What is 2+2?", '  Ünïcode "quoted"\nsecond line\t', "x"]
    with start_router(tmp_path) as router, client_for(router) as http:
        assert read_call_log(router.call_log) == []
        http.post("/inference", json=body("llama3.2-1b", prompts[0], "us-east"))
        first = read_call_log(router.call_log)
        assert len(first) == 1
        http.post(
            "/inference",
            json=body(
                "mistral-7b", prompts[1], "eu-west", temperature=0.7, max_tokens=64
            ),
        )
        http.post("/inference", json=body("qwen2.5-1.5b", prompts[2], "sa-east"))
        http.post("/inference", json={"model": "bad"})
        entries = read_call_log(router.call_log)
    assert [e["prompt"] for e in entries] == prompts
    assert entries[0] | {"ts": None} == {
        "ts": None,
        "model": "llama3.2-1b",
        "prompt": prompts[0],
        "region_preference": "us-east",
        "temperature": 0.1,
        "max_tokens": 512,
        "provider": "offline-us-east",
        "served_region": "us-east",
        "success": True,
        "error_code": None,
        "answer_sha256": entries[0]["answer_sha256"],
        "http_status": 200,
        "fault": None,
        "idempotency_key": None,
        "replayed": False,
        "abandoned": False,
        "traceparent": None,
    }
    assert (entries[1]["temperature"], entries[1]["max_tokens"]) == (0.7, 64)
    assert entries[1]["served_region"] == "eu-west"
    assert entries[2]["provider"] is None
    assert entries[2]["served_region"] is None
    assert entries[2]["success"] is False
    assert entries[2]["error_code"] == "NO_PROVIDER_FOR_REGION"


# An OpenAI-compatible upstream.


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def upstream_router(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[RunningRouter]:
    args = [
        "--region",
        "us-east",
        "--upstream",
        f"eu-west={fake_upstream.url}",
        "--model-map",
        "eu-west:llama3.2-1b=llama3.2:1b",
        "--upstream-api-key-env",
        f"eu-west={UPSTREAM_KEY_ENV}",
        "--upstream",
        f"asia-pacific={closed_loopback_url()}",
        "--upstream",
        f"af-south={fake_upstream.url}",
        "--upstream-timeout",
        "af-south=0.5",
    ]
    with start_router(
        tmp_path_factory.mktemp("upstream"), *args, env={UPSTREAM_KEY_ENV: UPSTREAM_KEY}
    ) as router:
        yield router


@pytest.fixture
def upstream_client(upstream_router: RunningRouter) -> Iterator[httpx.Client]:
    with client_for(upstream_router) as http:
        yield http


def test_upstream_regions_are_listed(upstream_client: httpx.Client) -> None:
    assert upstream_client.get("/health").json() == {
        "status": "ok",
        "regions": ["us-east", "eu-west", "asia-pacific", "af-south"],
        "providers": [
            "offline-us-east",
            "openai-eu-west",
            "openai-asia-pacific",
            "openai-af-south",
        ],
    }
    assert upstream_client.get("/providers", params={"region": "eu-west"}).json() == [
        {
            "name": "openai-eu-west",
            "provider_type": "openai-compatible",
            "region": "eu-west",
        }
    ]


def test_upstream_answer_with_mapped_model(
    upstream_client: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    prompt = "What is the capital of France?\nAnswer briefly."
    reply = upstream_client.post(
        "/inference",
        json=body("llama3.2-1b", prompt, "eu-west", temperature=0.3, max_tokens=99),
    )
    data = reply.json()
    assert set(data) == REPLY_KEYS
    assert data["success"] is True
    assert data["response"] == f"upstream answer to: {prompt}"
    assert data["provider_used"] == "openai-eu-west"
    assert data["metadata"] == {
        "provider_type": "openai-compatible",
        "region": "eu-west",
        "model": "llama3.2-1b",
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "upstream_model": "llama3.2:1b",
    }
    sent = fake_upstream.requests[-1]
    assert sent["json"] == {
        "model": "llama3.2:1b",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0.3,
        "max_tokens": 99,
    }
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize(
    "model",
    # Across the cut of the upstream body's snippet (200 bytes), near it,
    # and in an answer.
    [
        "echo-key-at-170-error",
        "echo-key-at-176-error",
        "echo-key-at-190-text",
        "echo-key-at-10-answer",
    ],
)
def test_no_piece_of_an_echoed_upstream_key_survives_the_cut(
    upstream_client: httpx.Client, model: str
) -> None:
    data = upstream_client.post("/inference", json=body(model, "hi", "eu-west")).json()

    failure = data["failure"] or {}
    text = f"{data['response']} {data['error']} {failure.get('message')}"
    assert "x" * 10 in text
    assert [piece for piece in pieces_of(UPSTREAM_KEY) if piece in text] == []


def test_unmapped_model_is_sent_as_is(
    upstream_client: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    data = upstream_client.post(
        "/inference", json=body("mistral-7b", "hi", "eu-west")
    ).json()
    assert data["success"] is True
    assert data["metadata"]["model"] == "mistral-7b"
    assert fake_upstream.requests[-1]["json"]["model"] == "mistral-7b"


def test_substituted_model_is_visible(upstream_client: httpx.Client) -> None:
    data = upstream_client.post(
        "/inference", json=body("substitute-me", "hi", "eu-west")
    ).json()
    assert data["success"] is True
    assert data["metadata"]["model"] == "qwen2.5-0.5b-instruct"


def test_empty_upstream_answer_is_a_success(upstream_client: httpx.Client) -> None:
    data = upstream_client.post(
        "/inference", json=body("empty", "hi", "eu-west")
    ).json()
    assert data["success"] is True
    assert data["response"] == ""


@pytest.mark.parametrize(
    ("model", "region", "code", "transient"),
    [
        ("fail-500", "eu-west", "UPSTREAM_HTTP_500", True),
        ("fail-429", "eu-west", "UPSTREAM_HTTP_429", True),
        ("fail-502", "eu-west", "UPSTREAM_HTTP_502", True),
        ("fail-501", "eu-west", "UPSTREAM_HTTP_501", False),
        ("fail-505", "eu-west", "UPSTREAM_HTTP_505", False),
        ("fail-400", "eu-west", "UPSTREAM_HTTP_400", False),
        ("not-json", "eu-west", "UPSTREAM_BAD_REPLY", True),
        ("no-choices", "eu-west", "UPSTREAM_BAD_REPLY", False),
        ("llama3.2-1b", "asia-pacific", "UPSTREAM_UNREACHABLE", True),
        ("slow", "af-south", "UPSTREAM_TIMEOUT", True),
    ],
)
def test_upstream_failures_say_whether_transient(
    upstream_client: httpx.Client, model: str, region: str, code: str, transient: bool
) -> None:
    reply = upstream_client.post("/inference", json=body(model, "hi", region))
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == REPLY_KEYS
    assert data["success"] is False
    assert data["response"] is None
    assert data["error_code"] == code
    assert data["provider_used"] == f"openai-{region}"
    assert data["metadata"]["region"] == region
    failure = data["failure"]
    assert set(failure) >= FAILURE_KEYS
    assert failure["code"] == code
    assert failure["transient"] is transient
    assert failure["stage"] == "provider_call"
    assert failure["component"] == "local_router"
    assert failure["region"] == region
    assert failure["provider"] == f"openai-{region}"
    assert failure["model"] == model
    assert failure["message"] and data["error"] == failure["message"]


@pytest.mark.parametrize(
    ("model", "note"),
    [
        ("fail-501", " (Not Implemented), which a retry will not change"),
        ("fail-502", ""),
    ],
)
def test_an_upstream_error_page_is_quoted_on_one_line(
    upstream_client: httpx.Client, model: str, note: str
) -> None:
    status = model[5:]
    reply = upstream_client.post("/inference", json=body(model, "hi", "eu-west"))

    assert reply.json()["failure"]["message"] == (
        f"upstream returned HTTP {status}{note}: <html> <head><title>{status} "
        f"Error</title></head> <body> <center><h1>{status} Error</h1></center> "
        "<hr><center>nginx</center> </body> </html>"
    )


def test_upstream_region_is_never_served_offline_and_vice_versa(
    upstream_client: httpx.Client, upstream_router: RunningRouter
) -> None:
    failed = upstream_client.post("/inference", json=body("fail-500", "q", "eu-west"))
    offline = upstream_client.post("/inference", json=body("fail-500", "q", "us-east"))
    assert failed.json()["success"] is False
    assert failed.json()["provider_used"] == "openai-eu-west"
    assert offline.json()["success"] is True
    assert offline.json()["provider_used"] == "offline-us-east"
    logged = read_call_log(upstream_router.call_log)[-2:]
    assert [(e["provider"], e["served_region"]) for e in logged] == [
        ("openai-eu-west", "eu-west"),
        ("offline-us-east", "us-east"),
    ]


def test_stop_helper_reports_exit_code(tmp_path: Path) -> None:
    with start_router(tmp_path) as router:
        assert stop_process(router.process) == 0
