"""Prometheus metrics of every server: scraped during and after a real job run
by separate processes, the counters add up to the job's cells; retries,
failures and rejected receipts are counted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from beacon.local import LocalDeployment, start_local
from beacon.processes import ProcessGroup
from beacon.signing import SigningKey
from beacon.v1 import job_pb2
from coordinator import metrics as coordinator_metrics
from region_agent import metrics as agent_metrics
from tests.support.openai_server import FakeUpstream
from tests.support.router_process import read_call_log
from tests.support.servers import run_then_stop, start_agent, start_coordinator

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "examples" / "cross-region-minimal.yaml"  # 2 x 3 x 3 = 18 cells
BIN = Path(sys.executable).parent
RUN_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    state_dir = tmp_path_factory.mktemp("metrics")
    group = ProcessGroup(state_dir / "run")
    try:
        # A little latency keeps cells in flight while the job is scraped.
        yield start_local(group, state_dir, router_args=("--offline-latency", "0.2"))
    finally:
        group.stop_all()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)] of one /metrics page."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    page = httpx.get(url, timeout=10).text
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


@pytest.mark.e2e
def test_every_server_counts_the_job_cells(deployment: LocalDeployment) -> None:
    urls = deployment.metrics
    assert set(urls) == {
        "router",
        "agent-us-east",
        "agent-eu-west",
        "agent-asia-pacific",
        "coordinator",
    }
    run = subprocess.Popen(
        [
            str(BIN / "beacon"),
            "run",
            str(MINIMAL),
            "--coordinator",
            deployment.coordinator,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "BEACON_TOKEN": deployment.token},
    )

    # During the run: never more cells final or in flight than the job has.
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    seen_final = 0.0
    while run.poll() is None:
        assert time.monotonic() < deadline, "the job did not finish"
        during = scrape(urls["coordinator"])
        final = total(during, "beacon_cells_total")
        in_flight = total(during, "beacon_cells_in_flight")
        assert seen_final <= final <= 18 and 0 <= in_flight <= 18
        seen_final = final
        time.sleep(0.1)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""

    # After: each server's counters add up to the job's 18 cells.
    coordinator = scrape(urls["coordinator"])
    assert total(coordinator, "beacon_cells_total") == 18
    assert total(coordinator, "beacon_cells_total", outcome="completed") == 18
    answered = total(coordinator, "beacon_cells_total", classification="answered")
    refused = total(coordinator, "beacon_cells_total", classification="refused")
    assert answered + refused == 18
    for region in ("us-east", "eu-west"):
        assert total(coordinator, "beacon_cells_total", region=region) == 9
        for model in ("llama3.2-1b", "mistral-7b", "qwen2.5-1.5b"):
            assert (
                total(coordinator, "beacon_cells_total", region=region, model=model)
                == 3
            )
    assert total(coordinator, "beacon_cells_in_flight") == 0
    assert total(coordinator, "beacon_cell_retries_total") == 0
    assert total(coordinator, "beacon_receipts_rejected_total") == 0
    assert (
        total(
            coordinator,
            "beacon_job_duration_seconds_count",
            status="JOB_STATUS_COMPLETED",
        )
        == 1
    )
    writes = total(
        coordinator,
        "beacon_store_write_seconds_count",
        operation="record_attempt_end",
    )
    assert writes == 18, "one durable write per accepted receipt"

    for region, cells in (("us-east", 9), ("eu-west", 9), ("asia-pacific", 0)):
        agent = scrape(urls[f"agent-{region}"])
        assert total(agent, "beacon_agent_cells_total", result="success") == cells
        assert total(agent, "beacon_agent_cells_total") == cells
        assert (
            total(agent, "beacon_agent_router_call_seconds_count", region=region)
            == cells
        )
        assert total(agent, "beacon_agent_cells_in_flight") == 0

    # Tracing is off by default: no trace context travels.
    calls = read_call_log(deployment.call_log)
    assert len(calls) == 18 and all(c["traceparent"] is None for c in calls)

    router = scrape(urls["router"])
    assert total(router, "beacon_router_calls_total", outcome="success") == 18
    for region in ("us-east", "eu-west"):
        assert total(router, "beacon_router_call_seconds_count", region=region) == 9


async def test_retries_and_failures_are_counted(tmp_path: Path) -> None:
    """In-process servers share each server kind's registry, so this test
    reads how much its job moved the counters."""
    upstream = FakeUpstream()
    upstream.start()
    agent = await start_agent(tmp_path, "us-east", upstream.url, router_kind="openai")
    coordinator = await start_coordinator(tmp_path, [agent], retry_base_seconds=0.05)
    spec = job_pb2.JobSpec(
        job_id="metrics-retry", models=["fail-500"], regions=["us-east"]
    )
    spec.questions.add(id="q", text="What is 2+2?")
    spec.max_attempts = 2
    retries = {"region": "us-east", "code": "ROUTER_HTTP_500"}
    failed = {
        "region": "us-east",
        "model": "fail-500",
        "outcome": "failed",
        "classification": "none",
    }
    agent_failures = {"region": "us-east", "model": "fail-500", "result": "failure"}
    calls = {"region": "us-east", "result": "failure"}
    before = [
        in_coordinator("beacon_cell_retries_total", retries),
        in_coordinator("beacon_cells_total", failed),
        in_agent("beacon_agent_cells_total", agent_failures),
        in_agent("beacon_agent_router_call_seconds_count", calls),
    ]
    try:
        result = await run_then_stop(coordinator, [agent], spec)
    finally:
        upstream.stop()

    assert result.outcomes[0].status == job_pb2.CELL_STATUS_FAILED
    after = [
        in_coordinator("beacon_cell_retries_total", retries),
        in_coordinator("beacon_cells_total", failed),
        in_agent("beacon_agent_cells_total", agent_failures),
        in_agent("beacon_agent_router_call_seconds_count", calls),
    ]
    # One retry, one failed cell, two attempts each with one router call.
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 2, 2]


def in_coordinator(name: str, labels: dict[str, str]) -> float:
    return coordinator_metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def in_agent(name: str, labels: dict[str, str]) -> float:
    return agent_metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_metrics_port_in_use_stops_the_server_with_one_line(tmp_path: Path) -> None:
    key = tmp_path / "us-east.key"
    SigningKey.generate().write(key)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        run = subprocess.run(
            [
                str(BIN / "beacon"),
                "agent",
                "--region",
                "us-east",
                "--router",
                "http://127.0.0.1:1",
                "--signing-key",
                str(key),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                address,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"beacon agent: cannot serve metrics on {address}: Address already in use"
    ]
