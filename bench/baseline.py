"""The floor: the same calls made straight to the router from one event loop.

No gRPC, no receipts, no store: `per_region` workers per region take that
region's cells from a queue and POST each to the router with httpx, the
same body an agent sends, and check the reply says success. What Beacon
adds is measured against this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from beacon.cells import Cell
from beacon.jobspec import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineRun:
    seconds: float
    succeeded: int
    failed: int


async def run_baseline(
    router_url: str, cells: list[Cell], per_region: int, timeout_seconds: float
) -> BaselineRun:
    queues: dict[str, asyncio.Queue[Cell]] = {}
    for cell in cells:
        queues.setdefault(cell.region, asyncio.Queue()).put_nowait(cell)
    outcomes: list[bool] = []
    # One connection pool per region, as each agent has its own, all driven
    # by this one event loop.
    clients = [
        httpx.AsyncClient(
            base_url=router_url,
            limits=httpx.Limits(
                max_connections=per_region, max_keepalive_connections=per_region
            ),
            timeout=timeout_seconds,
            trust_env=False,
        )
        for _ in queues
    ]

    async def worker(client: httpx.AsyncClient, queue: asyncio.Queue[Cell]) -> None:
        while not queue.empty():
            outcomes.append(await _call(client, queue.get_nowait()))

    try:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for client, queue in zip(clients, queues.values(), strict=True):
                for _ in range(per_region):
                    group.create_task(worker(client, queue))
        seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    succeeded = sum(outcomes)
    return BaselineRun(seconds, succeeded, len(outcomes) - succeeded)


async def _call(client: httpx.AsyncClient, cell: Cell) -> bool:
    reply = await client.post(
        "/inference",
        json={
            "model": cell.model,
            "prompt": cell.prompt,
            "temperature": DEFAULT_TEMPERATURE,
            "max_tokens": DEFAULT_MAX_TOKENS,
            "region_preference": cell.region,
            "cost_priority": True,
        },
    )
    # The reply is read and checked as an agent would, short of signing it.
    ok = reply.status_code == 200 and reply.json().get("success") is True
    if not ok:
        logger.warning("baseline call failed cell_id=%s", cell.cell_id)
    return bool(ok)
