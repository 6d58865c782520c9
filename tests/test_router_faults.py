"""The local router's fault injection, idempotent replays and abandoned calls,
against a real router process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.router_process import RunningRouter, read_call_log, start_router


def call(model: str = "llama3.2-1b", prompt: str = "What is 2+2?") -> dict[str, Any]:
    return {"model": model, "prompt": prompt, "region_preference": "eu-west"}


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    with start_router(tmp_path_factory.mktemp("faults"), "--fault-control") as r:
        yield r


@pytest.fixture
def http(router: RunningRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=30.0, trust_env=False) as client:
        client.delete("/faults")
        yield client


def inject(http: httpx.Client, shape: str, count: int = 1, **match: str) -> None:
    reply = http.post(
        "/faults", json={"rules": [{"shape": shape, "count": count, **match}]}
    )
    reply.raise_for_status()


@pytest.mark.parametrize(
    ("shape", "status", "check"),
    [
        ("transient", 200, lambda r: r.json()["failure"]["transient"] is True),
        ("permanent", 200, lambda r: r.json()["failure"]["transient"] is False),
        ("unavailable", 503, lambda r: "detail" in r.json()),
        ("invalid", 422, lambda r: r.json()["detail"][0]["loc"][0] == "body"),
        ("not-found", 404, lambda r: r.json() == {"detail": "Not Found"}),
        ("not-json", 200, lambda r: r.text.startswith("<html>")),
        (
            "other-region",
            200,
            lambda r: (
                r.json()["success"] and r.json()["metadata"]["region"] != "eu-west"
            ),
        ),
    ],
)
def test_each_fault_shape_is_served_once_then_calls_are_honest(
    router: RunningRouter, http: httpx.Client, shape: str, status: int, check: Any
) -> None:
    before = len(read_call_log(router.call_log))
    inject(http, shape)

    faulty = http.post("/inference", json=call())
    honest = http.post("/inference", json=call())

    assert faulty.status_code == status
    assert check(faulty)
    assert honest.status_code == 200 and honest.json()["success"] is True
    assert honest.json()["metadata"]["region"] == "eu-west"
    logged = read_call_log(router.call_log)[before:]
    assert [e["fault"] for e in logged] == [shape, None]
    assert [e["http_status"] for e in logged] == [status, 200]


def test_a_rule_only_hits_the_calls_it_matches(http: httpx.Client) -> None:
    inject(http, "transient", count=2, model="mistral-7b")

    other_model = http.post("/inference", json=call("llama3.2-1b")).json()
    first = http.post("/inference", json=call("mistral-7b")).json()
    second = http.post("/inference", json=call("mistral-7b")).json()
    third = http.post("/inference", json=call("mistral-7b")).json()

    assert other_model["success"] is True
    assert (first["success"], second["success"], third["success"]) == (
        False,
        False,
        True,
    )
    assert http.get("/faults").json() == []


def test_a_hung_call_is_recorded_as_abandoned_when_the_caller_gives_up(
    router: RunningRouter, http: httpx.Client
) -> None:
    before = len(read_call_log(router.call_log))
    inject(http, "hang")

    with pytest.raises(httpx.ReadTimeout):
        http.post("/inference", json=call(prompt="hang here"), timeout=0.5)

    deadline = time.monotonic() + 20
    while not (logged := read_call_log(router.call_log)[before:]):
        assert time.monotonic() < deadline, "the abandoned call was never recorded"
        time.sleep(0.05)
    assert logged[0]["abandoned"] is True
    assert logged[0]["fault"] == "hang"
    assert logged[0]["success"] is False


def test_a_repeated_key_replays_a_success_without_running_the_model_again(
    router: RunningRouter, http: httpx.Client
) -> None:
    before = len(read_call_log(router.call_log))
    headers = {"Idempotency-Key": "job-1/cell-7"}

    first = http.post("/inference", json=call(prompt="replay me"), headers=headers)
    again = http.post("/inference", json=call(prompt="replay me"), headers=headers)

    assert first.content == again.content
    logged = read_call_log(router.call_log)[before:]
    assert [e["replayed"] for e in logged] == [False, True]


def test_a_repeated_key_after_a_failure_runs_the_call_afresh(
    router: RunningRouter, http: httpx.Client
) -> None:
    before = len(read_call_log(router.call_log))
    headers = {"Idempotency-Key": "job-1/cell-8"}
    inject(http, "transient")

    failed = http.post("/inference", json=call(prompt="retry me"), headers=headers)
    retried = http.post("/inference", json=call(prompt="retry me"), headers=headers)

    assert failed.json()["success"] is False
    assert retried.json()["success"] is True
    logged = read_call_log(router.call_log)[before:]
    assert [(e["fault"], e["replayed"]) for e in logged] == [
        ("transient", False),
        (None, False),
    ]


def test_fault_rates_are_drawn_from_a_seed(tmp_path: Path) -> None:
    outcomes = []
    for _ in range(2):
        with (
            start_router(
                tmp_path,
                "--fault-rate",
                "transient=0.5",
                "--fault-seed",
                "7",
            ) as router,
            httpx.Client(base_url=router.url, timeout=30.0, trust_env=False) as http,
        ):
            outcomes.append(
                [
                    http.post("/inference", json=call()).json()["success"]
                    for _ in range(20)
                ]
            )
            assert http.post("/faults", json={"rules": []}).status_code == 404
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(False) < 20


def test_an_unknown_fault_shape_is_refused_at_start(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="unknown fault shapes melt"),
        start_router(tmp_path, "--fault-rate", "melt=0.1", ready_timeout=10),
    ):
        pass


def test_fault_rates_above_one_in_total_are_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="add up to 1"),
        start_router(
            tmp_path, "--fault-rate", "hang=0.6", "--fault-rate", "transient=0.6"
        ),
    ):
        pass
