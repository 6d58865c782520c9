"""Connection lanes: a client per call in flight, never more than the limit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from beacon.http_lanes import (
    ConnectionLanes,
    json_post,
    send,
)


def _lanes(
    limit: int, made: list[httpx.AsyncClient]
) -> ConnectionLanes[httpx.AsyncClient]:
    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient()
        made.append(client)
        return client

    return ConnectionLanes(make, limit)


async def test_concurrent_calls_get_clients_of_their_own() -> None:
    made: list[httpx.AsyncClient] = []
    lanes = _lanes(3, made)
    async with lanes.lend() as a, lanes.lend() as b, lanes.lend() as c:
        assert len({id(a), id(b), id(c)}) == 3
    assert lanes.lanes == 3
    await lanes.aclose()
    assert all(client.is_closed for client in made)


async def test_a_returned_client_is_lent_again_instead_of_a_new_one() -> None:
    made: list[httpx.AsyncClient] = []
    lanes = _lanes(4, made)
    for _ in range(5):
        async with lanes.lend() as client:
            assert client is made[0]
    assert lanes.lanes == 1
    await lanes.aclose()


async def test_a_call_past_the_limit_waits_for_a_client_to_come_back() -> None:
    made: list[httpx.AsyncClient] = []
    lanes = _lanes(1, made)
    release = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with lanes.lend():
            order.append("first has it")
            await release.wait()
        order.append("first gave it back")

    async def second() -> None:
        async with lanes.lend():
            order.append("second has it")

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.05)
    assert order == ["first has it"]
    release.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first has it", "first gave it back", "second has it"]
    assert lanes.lanes == 1
    await lanes.aclose()


async def test_a_cancelled_call_gives_its_slot_back_on_a_fresh_client() -> None:
    """A deadline cancels the call, possibly while its response is being
    closed: httpcore may then keep the connection for good (httpcore#1115),
    so the client is closed rather than trusted, and the slot freed."""
    made: list[httpx.AsyncClient] = []
    lanes = _lanes(1, made)
    inside = asyncio.Event()

    async def hang() -> None:
        async with lanes.lend():
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made[0].is_closed
    async with asyncio.timeout(5):
        async with lanes.lend() as client:
            assert client is made[1] and not client.is_closed
    await lanes.aclose()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionLanes(httpx.AsyncClient, 0)


async def test_a_json_post_carries_what_an_httpx_client_would_send() -> None:
    payload = {"prompt": "Où est-ce ?", "max_tokens": 64, "temperature": 0.5}
    ours = json_post("http://router.test/inference", payload, {"x-extra": "1"})
    async with httpx.AsyncClient() as client:
        theirs = client.build_request(
            "POST", "http://router.test/inference", json=payload
        )
    assert ours.content == theirs.content
    for name in ("content-type", "content-length", "host"):
        assert ours.headers[name] == theirs.headers[name]
    assert ours.headers["x-extra"] == "1"
    # The caller's deadline bounds the call, not socket timeouts.
    assert ours.extensions["timeout"] == httpx.Timeout(None).as_dict()


async def test_a_lent_transport_sends_the_request_and_hands_back_its_reply() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    lanes = ConnectionLanes(lambda: httpx.MockTransport(answer), 2)
    async with lanes.lend() as lane:
        reply = await send(lane, json_post("http://router.test/inference", {}))
        assert reply.request.url.path == "/inference"
        assert (await reply.aread()) == b'{"ok":true}'
        await reply.aclose()
    await lanes.aclose()
    assert seen == ["/inference"]


class _Lane:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_lane_whose_call_failed_is_closed_and_not_lent_again() -> None:
    made: list[_Lane] = []

    def make() -> _Lane:
        made.append(_Lane())
        return made[-1]

    lanes = ConnectionLanes(make, 1)
    with pytest.raises(httpx.ReadError):
        async with lanes.lend():
            raise httpx.ReadError("the router went away")
    assert made[0].closed
    async with lanes.lend() as lane:
        assert lane is not made[0]
    assert lanes.lanes == 1
    await lanes.aclose()
