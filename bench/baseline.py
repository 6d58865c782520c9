"""The floor: the same calls made straight to the router from one event loop.

No gRPC, no receipts, no store: `per_region` workers per region take that
region's cells from a queue and POST each to the router with httpx, with
the same body an agent sends, and check the reply says success. What Beacon
adds is measured against this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import httpx

from beacon.cells import Cell
from beacon.http_lanes import ConnectionLanes
from beacon.jobspec import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from bench.cpu import CpuUse

logger = logging.getLogger(__name__)

# Lends a client for one call.
Lend = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@dataclass(frozen=True)
class BaselineRun:
    seconds: float
    succeeded: int
    failed: int
    cpu: CpuUse | None = None
    # When this loop had read and checked each cell's reply (this host's
    # clock): the floor for the first stretch of Beacon's added latency.
    read_at: dict[str, float] = field(default_factory=dict)


async def run_baseline(
    router_url: str,
    cells: list[Cell],
    per_region: int,
    timeout_seconds: float,
    *,
    lanes: bool = True,
) -> BaselineRun:
    """With `lanes`, connections are arranged as an agent arranges them (a
    client of one connection per call in flight, beacon.http_lanes), so the
    floor pays for HTTP what an agent pays. Without, each region has one
    client and httpx's own pool of `per_region` connections: httpx out of
    the box. Either way one set per region, as each agent has its own, all
    driven by this one event loop."""
    queues: dict[str, asyncio.Queue[Cell]] = {}
    for cell in cells:
        queues.setdefault(cell.region, asyncio.Queue()).put_nowait(cell)
    outcomes: list[bool] = []
    read_at: dict[str, float] = {}
    tls_context = httpx.create_ssl_context()

    def make_client(connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=router_url,
            verify=tls_context,
            limits=httpx.Limits(
                max_connections=connections, max_keepalive_connections=connections
            ),
            timeout=timeout_seconds,
            trust_env=False,
        )

    closers: list[Callable[[], Awaitable[None]]] = []
    lenders: list[Lend] = []
    for _ in queues:
        if lanes:
            region = ConnectionLanes(lambda: make_client(1), per_region)
            lenders.append(region.lend)
            closers.append(region.aclose)
        else:
            shared = make_client(per_region)
            lenders.append(_always(shared))
            closers.append(shared.aclose)

    async def worker(lend: Lend, queue: asyncio.Queue[Cell]) -> None:
        while not queue.empty():
            cell = queue.get_nowait()
            async with lend() as client:
                outcomes.append(await _call(client, cell))
                read_at[cell.cell_id] = time.time()

    try:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for lend, queue in zip(lenders, queues.values(), strict=True):
                for _ in range(per_region):
                    group.create_task(worker(lend, queue))
        seconds = time.perf_counter() - started
    finally:
        for close in closers:
            await close()
    succeeded = sum(outcomes)
    return BaselineRun(seconds, succeeded, len(outcomes) - succeeded, read_at=read_at)


def _always(client: httpx.AsyncClient) -> Lend:
    """Lends the same client to every call: httpx's pool shares it out."""

    @contextlib.asynccontextmanager
    async def lend() -> AsyncIterator[httpx.AsyncClient]:
        yield client

    return lend


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
