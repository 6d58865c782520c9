"""OpenTelemetry traces across processes: the trace context the router
receives for a cell belongs to the coordinator's trace for that job, through
job -> region stream -> cell attempt -> agent cell -> router call."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest

from beacon.local import LocalDeployment, start_local
from beacon.processes import ProcessGroup
from tests.support.commands import beacon
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.router_process import read_call_log, start_router, stop_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "examples" / "cross-region-minimal.yaml"
CONSOLE_TRACES = {
    f"BEACON_{server}_TRACE_EXPORTER": "console"
    for server in ("COORDINATOR", "AGENT", "ROUTER")
}


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalDeployment, ProcessGroup]]:
    state_dir = tmp_path_factory.mktemp("tracing")
    group = ProcessGroup(state_dir / "run")
    try:
        # The servers read BEACON_*_TRACE_EXPORTER from the environment.
        with mock.patch.dict(os.environ, CONSOLE_TRACES):
            deployment = start_local(group, state_dir, regions=("us-east", "eu-west"))
        yield deployment, group
    finally:
        group.stop_all()


def spans_in(log: Path) -> list[dict[str, Any]]:
    """Spans the console exporter wrote, one JSON object per line."""
    spans = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("{") and '"context"' in line:
            spans.append(json.loads(line))
    return spans


def hex_id(value: str) -> str:
    return value.removeprefix("0x")


def test_router_calls_carry_the_trace_of_their_job(
    traced: tuple[LocalDeployment, ProcessGroup], tmp_path: Path
) -> None:
    deployment, group = traced
    output = tmp_path / "result.json"
    run = beacon(
        "run",
        str(MINIMAL),
        "--coordinator",
        deployment.coordinator,
        "--output",
        str(output),
        token=deployment.token,
    )
    assert run.returncode == 0, run.stderr
    job_id = json.loads(output.read_text())["jobId"]
    group.stop_all()  # every span has been exported once the servers are gone

    by_process = {
        path.stem: spans_in(path) for path in sorted(group.run_dir.glob("*.log"))
    }
    assert {"coordinator", "router"} <= set(by_process)
    coordinator = by_process["coordinator"]
    jobs = [
        s
        for s in coordinator
        if s["name"] == "job" and s["attributes"]["beacon.job_id"] == job_id
    ]
    assert len(jobs) == 1, "one job span for the job"
    job = jobs[0]
    trace_id = hex_id(job["context"]["trace_id"])
    streams = {
        hex_id(s["context"]["span_id"]): s
        for s in coordinator
        if s["name"] == "region stream"
        and hex_id(s["parent_id"] or "") == hex_id(job["context"]["span_id"])
    }
    assert {s["attributes"]["beacon.region"] for s in streams.values()} == {
        "us-east",
        "eu-west",
    }
    attempts = {
        hex_id(s["context"]["span_id"]): s
        for s in coordinator
        if s["name"] == "cell attempt" and hex_id(s["parent_id"] or "") in streams
    }
    assert len(attempts) == 18

    agent_spans = [
        s
        for name, spans in by_process.items()
        if name.startswith("agent-")
        for s in spans
    ]
    cells = {
        hex_id(s["context"]["span_id"]): s for s in agent_spans if s["name"] == "cell"
    }
    router_calls = {
        hex_id(s["context"]["span_id"]): s
        for s in agent_spans
        if s["name"] == "router call"
    }

    calls = read_call_log(deployment.call_log)
    assert len(calls) == 18
    for call in calls:
        version, call_trace, parent, _flags = call["traceparent"].split("-")
        assert version == "00"
        assert call_trace == trace_id, "the router's call is in the job's trace"
        # The router was called from the agent's router-call span, inside the
        # agent's cell span, which continues the coordinator's attempt span.
        router_call = router_calls[parent]
        cell = cells[hex_id(router_call["parent_id"])]
        attempt = attempts[hex_id(cell["parent_id"])]
        assert (
            cell["attributes"]["beacon.cell_id"]
            == (attempt["attributes"]["beacon.cell_id"])
        )
        assert call["region_preference"] == attempt["attributes"]["beacon.region"]

    router_spans = by_process["router"]
    served = [s for s in router_spans if s["name"] == "router /inference"]
    assert len(served) == 18
    assert all(hex_id(s["context"]["trace_id"]) == trace_id for s in served)
    assert {hex_id(s["parent_id"]) for s in served} == set(router_calls)


def test_spans_go_to_an_otlp_collector(tmp_path: Path) -> None:
    """The router exports over OTLP/HTTP and continues the caller's trace."""
    collector = OtlpReceiver()
    collector.start()
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        with start_router(
            tmp_path,
            env={
                "BEACON_ROUTER_TRACE_EXPORTER": "otlp",
                "BEACON_ROUTER_OTLP_ENDPOINT": collector.url,
            },
        ) as router:
            reply = httpx.post(
                f"{router.url}/inference",
                json={"model": "m", "prompt": "hi", "region_preference": "us-east"},
                headers={"traceparent": f"00-{trace_id}-{parent}-01"},
                timeout=30,
            )
            assert reply.json()["success"] is True
            # Stopping flushes the spans still batched.
            assert stop_process(router.process) == 0, router.stderr()
    finally:
        collector.stop()

    spans = collector.spans()
    assert {service for service, _ in spans} == {"beacon-router"}
    served = [span for _, span in spans if span.name == "router /inference"]
    assert len(served) == 1
    assert served[0].trace_id.hex() == trace_id
    assert served[0].parent_span_id.hex() == parent
    # Spans the web framework adds inside the call join the same trace.
    assert {span.trace_id.hex() for _, span in spans} == {trace_id}


async def test_with_tracing_off_nothing_is_recorded_or_sent_on() -> None:
    """Off (the default), the helpers cost nothing: no span records, no
    trace context goes out, and a task in a span is just a task."""

    from opentelemetry import trace

    from beacon import tracing

    with tracing.span("cell", {"beacon.region": "us-east"}) as current:
        assert not current.is_recording()
        assert tracing.outgoing_headers() == {}
        assert tracing.outgoing_metadata() == ()
    started = tracing.start_span("attempt", {})
    assert started is trace.INVALID_SPAN
    assert tracing.traceparent_of(started) == ""

    async def answer() -> int:
        return 42

    task = tracing.task_in_span("job", answer(), attributes={}, task_name="job-task")
    assert await task == 42
    assert task.get_name() == "job-task"
