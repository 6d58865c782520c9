"""Reading a router reply within its size limit, compressed or not, against
a real HTTP server."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from region_agent.router_client import HybridRouterClient, InferenceCall, RouterReply
from region_agent.router_reply import MAX_REPLY_BYTES
from tests.support.canned_router import CannedReply, CannedRouter, serve_canned_router

SUCCESS_BODY = (
    Path(__file__).parent / "data" / "router_replies" / "success.json"
).read_bytes()
CALL = InferenceCall(
    model="llama3.2-1b",
    prompt="Capital?",
    region="eu-west",
    temperature=0.1,
    max_tokens=16,
)


@pytest.fixture(scope="module")
def canned_server() -> Iterator[CannedRouter]:
    with serve_canned_router() as router:
        yield router


@pytest.fixture
async def client(canned_server: CannedRouter) -> AsyncIterator[HybridRouterClient]:
    canned_server.reset()
    router_client = HybridRouterClient(canned_server.url)
    yield router_client
    await router_client.aclose()


def _coded(body: bytes, coding: str) -> CannedReply:
    return CannedReply(
        200, body, "application/json", headers={"content-encoding": coding}
    )


async def test_a_compressed_reply_is_read_whole(
    canned_server: CannedRouter, client: HybridRouterClient
) -> None:
    plain = (await _plain_success(canned_server, client)).output
    for coding, body in (
        ("gzip", gzip.compress(SUCCESS_BODY)),
        ("deflate", zlib.compress(SUCCESS_BODY)),
    ):
        canned_server.enqueue(_coded(body, coding))
        reply = await client.infer(CALL, 10.0)
        assert reply.failure is None, (coding, reply.failure)
        assert reply.output == plain


async def test_a_small_reply_that_inflates_past_the_limit_is_refused_unexpanded(
    canned_server: CannedRouter, client: HybridRouterClient
) -> None:
    """A few kilobytes of gzip that would inflate to 64 MiB: refused as too
    large, without ever holding much more than the limit."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    canned_server.enqueue(_coded(bomb, "gzip"))
    tracemalloc.start()
    try:
        reply = await client.infer(CALL, 30.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.failure is not None
    assert reply.failure.code == "ROUTER_REPLY_TOO_LARGE"
    # The limit's worth of output, and little else: never the 64 MiB.
    assert peak < 1.5 * MAX_REPLY_BYTES


async def test_a_compressed_reply_cut_short_or_unknown_is_invalid(
    canned_server: CannedRouter, client: HybridRouterClient
) -> None:
    whole = gzip.compress(SUCCESS_BODY)
    for reply_body, coding in (
        (whole[:-8], "gzip"),  # no trailer: its checksum and length are gone
        (whole + b"junk", "gzip"),
        (SUCCESS_BODY, "br-unknown"),
    ):
        canned_server.enqueue(_coded(reply_body, coding))
        reply = await client.infer(CALL, 10.0)
        assert reply.failure is not None, coding
        assert reply.failure.code == "ROUTER_REPLY_INVALID", reply.failure


async def _plain_success(
    canned_server: CannedRouter, client: HybridRouterClient
) -> RouterReply:
    canned_server.enqueue(CannedReply(200, SUCCESS_BODY, "application/json"))
    reply = await client.infer(CALL, 10.0)
    assert reply.failure is None, reply.failure
    return reply


async def test_a_health_reply_is_read_within_the_same_limit(
    canned_server: CannedRouter, client: HybridRouterClient
) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    canned_server.enqueue(_coded(bomb, "gzip"), path="/health")
    tracemalloc.start()
    try:
        healthy, detail = await client.health()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert healthy is False
    assert "reply larger than" in detail
    assert peak < 1.5 * MAX_REPLY_BYTES
