"""Logs: text or JSON lines, lifecycle at INFO, cells at DEBUG, ids on every
line about a job or a cell, nothing secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon import log_context, logs
from beacon.v1 import job_pb2
from region_agent.openai_client import OpenAIChatClient
from region_agent.router_reply import InferenceCall
from tests.support.openai_server import FakeUpstream
from tests.support.router_process import RunningRouter, start_router, stop_process
from tests.support.servers import run_then_stop, start_agent, start_coordinator


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Root logging as `--log-format json --log-level DEBUG` sets it up."""
    stream = io.StringIO()
    logs.configure("DEBUG", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    logs.configure("INFO", "text")


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_text_lines_end_with_the_ids_the_message_does_not_name() -> None:
    formatter = logs.TextFormatter()
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "sent job_id=%s", ("j",), None
    )
    with log_context.ids(job_id="j", cell_id="c-1"):
        log_context.IdsFilter().filter(record)
    line = formatter.format(record)
    assert line.endswith("x: sent job_id=j cell_id=c-1")


async def test_ids_reach_lines_logged_in_tasks_started_for_a_cell(
    json_lines: io.StringIO,
) -> None:
    log = logging.getLogger("tests.cell")

    async def work() -> None:
        log.debug("router call ok")

    with log_context.ids(job_id="j-1", cell_id="c-7", attempt=2):
        await asyncio.create_task(work())
    log.info("between jobs")

    first, second = [r for r in records(json_lines) if r["logger"] == "tests.cell"]
    assert (first["job_id"], first["cell_id"], first["attempt"]) == ("j-1", "c-7", "2")
    assert first["level"] == "DEBUG" and first["message"] == "router call ok"
    assert "job_id" not in second


async def test_a_real_job_logs_ids_on_every_cell_line_and_cells_only_at_debug(
    tmp_path: Path, router: RunningRouter, json_lines: io.StringIO
) -> None:
    agents = [
        await start_agent(tmp_path, region, router.url)
        for region in ("us-east", "eu-west")
    ]
    coordinator = await start_coordinator(tmp_path, agents)
    spec = job_pb2.JobSpec(
        job_id="logs-1", models=["llama3.2-1b"], regions=["us-east", "eu-west"]
    )
    spec.questions.add(id="q1", text="What is 2+2?")
    spec.questions.add(id="q2", text="Who are you?")
    result = await run_then_stop(coordinator, agents, spec)
    assert result.counts.completed == 4

    lines = records(json_lines)
    cell_lines = [r for r in lines if r["logger"] == "region_agent.executor"]
    assert len(cell_lines) == 4, "one DEBUG line per executed cell"
    router_lines = [r for r in lines if r["logger"] == "region_agent.router_client"]
    assert len(router_lines) == 4
    for line in cell_lines + router_lines:
        assert line["level"] == "DEBUG"
        assert line["job_id"] == "logs-1" and line["cell_id"], line
    about_jobs = {
        "coordinator.jobs",
        "coordinator.job_runner",
        "coordinator.region_stream",
        "coordinator.observe",
    }
    job_lines = [r for r in lines if r["logger"] in about_jobs]
    assert job_lines
    for line in job_lines:
        assert line.get("job_id") == "logs-1" or "job_id=logs-1" in line["message"]
    finals = [r for r in job_lines if r["message"].startswith("cell final")]
    assert len(finals) == 4
    assert all(r["level"] == "DEBUG" and r["job_id"] == "logs-1" for r in finals)
    info_about_cells = [r for r in lines if r["level"] != "DEBUG" and r.get("cell_id")]
    assert not info_about_cells, "a clean job logs no cell at INFO"
    assert coordinator.token not in json_lines.getvalue()


def test_router_logs_json_at_debug_without_the_upstream_key(tmp_path: Path) -> None:
    secret = "sk-test-" + "9f3a" * 8
    upstream = FakeUpstream()
    upstream.start()
    try:
        with start_router(
            tmp_path,
            "--upstream",
            f"eu-west={upstream.url}",
            "--upstream-api-key-env",
            "eu-west=BEACON_TEST_UPSTREAM_KEY",
            "--log-level",
            "DEBUG",
            "--log-format",
            "json",
            env={"BEACON_TEST_UPSTREAM_KEY": secret},
        ) as router:
            reply = httpx.post(
                f"{router.url}/inference",
                json={"model": "m", "prompt": "hi", "region_preference": "eu-west"},
                timeout=30,
            )
            assert reply.json()["success"] is True
            assert upstream.requests[-1]["authorization"] == f"Bearer {secret}"
            stop_process(router.process)
            stderr = router.stderr()
    finally:
        upstream.stop()
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any(line["level"] == "DEBUG" for line in lines)
    assert secret not in stderr


async def test_agent_logs_at_debug_without_its_api_key(
    json_lines: io.StringIO,
) -> None:
    secret = "sk-agent-" + "77ab" * 8
    upstream = FakeUpstream()
    upstream.start()
    chat = OpenAIChatClient(upstream.url, api_key=secret)
    try:
        call = InferenceCall(
            model="m", prompt="hi", region="eu-west", temperature=0.1, max_tokens=8
        )
        with log_context.ids(job_id="j-key", cell_id="c-key"):
            ok = await chat.infer(call, timeout_seconds=10)
            failed = await chat.infer(
                replace(call, model="fail-400"), timeout_seconds=10
            )
            # The HTTP library's own debug lines quote every header raw.
            echoed = await chat.infer(
                replace(call, model="echo-key-in-headers"), timeout_seconds=10
            )
    finally:
        await chat.aclose()
        upstream.stop()
    assert ok.failure is None and failed.failure is not None
    assert echoed.failure is not None
    assert upstream.requests[0]["authorization"] == f"Bearer {secret}"
    lines = records(json_lines)
    mine = [r for r in lines if r["logger"] == "region_agent.router_client"]
    assert len(mine) == 3 and all(r["cell_id"] == "c-key" for r in mine)
    assert secret not in json_lines.getvalue()


def test_what_a_peer_sent_cannot_make_a_text_line_of_its_own() -> None:
    """A router's error body quoted in a message: its line breaks, terminal
    escapes and bidi overrides are escaped, not written."""
    body = "boom\n2026-12-05 01:00:00,000 ERROR fake: FORGED\x1b[31m\u202eevil"
    record = logging.LogRecord(
        "x", logging.WARNING, "f", 1, "router failed: %s", (body,), None
    )
    line = logs.TextFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert line.endswith(
        "x: router failed: boom\\n2026-12-05 01:00:00,000 ERROR fake: "
        "FORGED\\x1b[31m\\u202eevil"
    )
    assert logs.escaped_controls("plain text, as most lines are") == (
        "plain text, as most lines are"
    )


def test_a_traceback_keeps_its_lines() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, "f", 1, "failed", (), sys.exc_info()
        )
    assert logs.TextFormatter().format(record).count("\n") >= 3
