"""The floor: the same calls made straight to the router from one event loop.

No gRPC, no receipts, no store: `per_region` workers per region take that
region's cells from a queue and POST each to the router with httpx, with
the same body an agent sends, and check the reply says success. What Beacon
adds is measured against this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from beacon.cells import Cell
from beacon.http_lanes import ConnectionLanes, json_post, one_connection_transport, send
from beacon.jobspec import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from bench.cpu import CpuUse
from region_agent.router_client import INFERENCE_PATH

logger = logging.getLogger(__name__)

# Makes one cell's call and says whether the router answered it.
Call = Callable[[Cell], Awaitable[bool]]


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
    """With `lanes`, calls are made as an agent makes them (straight to a
    transport of one connection per call in flight, beacon.http_lanes), so
    the floor pays for HTTP what an agent pays. Without, each region has one
    httpx client and its own pool of `per_region` connections: httpx out of
    the box. Either way one set per region, as each agent has its own, all
    driven by this one event loop."""
    queues: dict[str, asyncio.Queue[Cell]] = {}
    for cell in cells:
        queues.setdefault(cell.region, asyncio.Queue()).put_nowait(cell)
    outcomes: list[bool] = []
    read_at: dict[str, float] = {}
    tls_context = httpx.create_ssl_context()
    url = router_url.rstrip("/") + INFERENCE_PATH

    closers: list[Callable[[], Awaitable[None]]] = []
    callers: list[Call] = []
    for _ in queues:
        if lanes:
            region = ConnectionLanes(
                lambda: one_connection_transport(tls_context), per_region
            )
            callers.append(_on_lanes(region, url, timeout_seconds))
            closers.append(region.aclose)
        else:
            shared = httpx.AsyncClient(
                verify=tls_context,
                limits=httpx.Limits(
                    max_connections=per_region, max_keepalive_connections=per_region
                ),
                timeout=timeout_seconds,
                trust_env=False,
            )
            callers.append(_on_client(shared, url))
            closers.append(shared.aclose)

    async def worker(call: Call, queue: asyncio.Queue[Cell]) -> None:
        while not queue.empty():
            cell = queue.get_nowait()
            outcomes.append(await call(cell))
            read_at[cell.cell_id] = time.time()

    try:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for call, queue in zip(callers, queues.values(), strict=True):
                for _ in range(per_region):
                    group.create_task(worker(call, queue))
        seconds = time.perf_counter() - started
    finally:
        for close in closers:
            await close()
    succeeded = sum(outcomes)
    return BaselineRun(seconds, succeeded, len(outcomes) - succeeded, read_at=read_at)


def _body(cell: Cell) -> dict[str, object]:
    """What an agent sends for the cell."""
    return {
        "model": cell.model,
        "prompt": cell.prompt,
        "temperature": DEFAULT_TEMPERATURE,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "region_preference": cell.region,
        "cost_priority": True,
    }


def _on_lanes(
    lanes: ConnectionLanes[httpx.AsyncHTTPTransport], url: str, timeout: float
) -> Call:
    async def call(cell: Cell) -> bool:
        request = json_post(url, _body(cell), {"accept": "application/json"})
        async with asyncio.timeout(timeout), lanes.lend() as lane:
            reply = await send(lane, request)
            try:
                await reply.aread()
            finally:
                await reply.aclose()
        return _succeeded(reply, cell)

    return call


def _on_client(client: httpx.AsyncClient, url: str) -> Call:
    async def call(cell: Cell) -> bool:
        return _succeeded(await client.post(url, json=_body(cell)), cell)

    return call


def _succeeded(reply: httpx.Response, cell: Cell) -> bool:
    # The reply is read and checked as an agent would, short of signing it.
    ok = reply.status_code == 200 and reply.json().get("success") is True
    if not ok:
        logger.warning("baseline call failed cell_id=%s", cell.cell_id)
    return bool(ok)
