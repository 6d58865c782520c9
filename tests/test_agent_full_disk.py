"""An agent whose receipts file cannot be written (a full disk): no answer
goes out that it could not replay, it says so once, reports NOT_SERVING,
and comes back by itself once the file can be written again.

SQLite's `max_page_count` makes a write fail with SQLITE_FULL ("database or
disk is full") exactly as a full disk does, without root or a mount.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from beacon.v1 import receipt_pb2
from region_agent import metrics
from region_agent.receipt_store import ReceiptStore
from region_agent.receipts import attempt_key
from tests.support.eventually import eventually
from tests.support.execute import execute_all, execute_request
from tests.support.health import health_of
from tests.support.router_process import RunningRouter, read_call_log
from tests.support.servers import start_agent

DAY = 86_400.0
NOT_STORED = "beacon_agent_receipts_not_stored_total"
# The receipt holds the prompt: this one needs pages a full file has not got.
LONG_PROMPT = "[full-disk] " + "Describe the weather in detail. " * 400


def _fill(store: ReceiptStore, pages: int) -> None:
    """Cap the file at `pages` (SQLite keeps it at least its current size)."""
    assert store._writer is not None
    store._writer.execute(f"PRAGMA max_page_count={pages}")


async def test_an_unkept_receipt_is_a_retryable_failure_and_the_agent_recovers(
    tmp_path: Path, router: RunningRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = await ReceiptStore.open(tmp_path / "receipts.db", DAY)
    agent = await start_agent(tmp_path, "us-east", router.url, kept_receipts=store)
    not_stored_before = metrics.REGISTRY.get_sample_value(NOT_STORED) or 0.0
    calls_before = len(read_call_log(router.call_log))
    first = execute_request("full-disk", "q1", LONG_PROMPT)
    try:
        _fill(store, 1)
        with caplog.at_level(logging.INFO):
            [body] = await execute_all(agent.address, [first])

            # Not an unkept success: a failure the coordinator retries.
            assert body.result == receipt_pb2.ATTEMPT_RESULT_FAILURE
            assert body.failure.code == "RECEIPT_NOT_KEPT"
            assert body.failure.retryable
            assert await store.get(attempt_key(first)) is None
            assert metrics.REGISTRY.get_sample_value(NOT_STORED) == (
                not_stored_before + 1
            )

            await eventually(
                lambda: _is(agent.address, health_pb2.HealthCheckResponse.NOT_SERVING),
                what="NOT_SERVING while receipts cannot be written",
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await execute_all(
                    agent.address, [execute_request("full-disk", "q2", "[fd] q2")]
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "receipts file" in (refused.value.details() or "")

            # Space returns; nothing is sent, the agent finds out by itself.
            _fill(store, 1_000_000)
            await eventually(
                lambda: _is(agent.address, health_pb2.HealthCheckResponse.SERVING),
                what="SERVING once receipts can be written",
            )

            # The same attempt again gets the same receipt, without a call.
            [again] = await execute_all(agent.address, [first])
            assert again.SerializeToString() == body.SerializeToString()
            second = execute_request("full-disk", "q1", LONG_PROMPT, attempt=2)
            [answered] = await execute_all(agent.address, [second])
            assert answered.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
            assert await store.get(attempt_key(second)) is not None
    finally:
        await agent.stop()
        await store.close()

    calls = read_call_log(router.call_log)[calls_before:]
    assert len(calls) == 2
    records = [
        r for r in caplog.records if r.name.startswith(("region_agent", "beacon"))
    ]
    assert not [r for r in records if r.exc_info], "no traceback per cell"
    failing = [r for r in records if "cannot write the receipts file" in r.message]
    assert len(failing) == 1
    assert "disk is full" in failing[0].message
    assert "Free space" in failing[0].message
    assert len([r for r in records if "can be written again" in r.message]) == 1


async def _is(address: str, status: int) -> bool:
    return await health_of(address) == status


async def test_a_repeat_waiting_on_an_unkept_receipt_gets_the_same_failure(
    tmp_path: Path, router: RunningRouter
) -> None:
    """Two copies of one attempt on one stream: one router call, and both
    get the one failure receipt."""
    store = await ReceiptStore.open(tmp_path / "receipts.db", DAY)
    agent = await start_agent(tmp_path, "us-east", router.url, kept_receipts=store)
    calls_before = len(read_call_log(router.call_log))
    request = execute_request("full-disk-twice", "q1", LONG_PROMPT)
    try:
        _fill(store, 1)
        bodies = await execute_all(agent.address, [request, request])
    finally:
        await agent.stop()
        await store.close()

    assert len(bodies) == 2
    assert bodies[0].SerializeToString() == bodies[1].SerializeToString()
    assert bodies[0].failure.code == "RECEIPT_NOT_KEPT"
    assert len(read_call_log(router.call_log)) - calls_before == 1
