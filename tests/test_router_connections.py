"""Connection faults between an agent and its router, each against a real
server on loopback: a certificate the agent rejects, TLS spoken to one side
only, a kept-alive connection the router closes, a router killed during a
call, and a redirect."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from beacon.certs import issue, new_authority, write_pair
from beacon.v1 import receipt_pb2
from region_agent.openai_client import OpenAIChatClient
from region_agent.router_client import HybridRouterClient, RouterReply
from region_agent.router_reply import InferenceCall
from tests.support.canned_router import CannedReply, ServerTls, serve_canned_router
from tests.support.openai_server import pieces_of
from tests.support.router_process import (
    add_fault_rules,
    pending_fault_rules,
    start_router,
)

TIMEOUT = 20.0
# model, prompt, region, temperature, max_tokens
CALL = InferenceCall("llama3.2-1b", "What is 2+2?", "eu-west", 0.1, 64)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    for_loopback: ServerTls
    for_another_host: ServerTls


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    out = tmp_path_factory.mktemp("router-certs")
    authority = new_authority()
    (out / "ca.crt").write_bytes(
        authority.cert.public_bytes(serialization.Encoding.PEM)
    )
    for stem, host in (("loopback", "127.0.0.1"), ("other", "router.example")):
        key, cert = issue(authority, "router", (host,))
        write_pair(out, stem, key, cert)
    return Certificates(
        ca=out / "ca.crt",
        for_loopback=ServerTls(out / "loopback.crt", out / "loopback.key"),
        for_another_host=ServerTls(out / "other.crt", out / "other.key"),
    )


async def call_once(url: str) -> tuple[RouterReply, str]:
    """One call and one health check from a new client."""
    client = HybridRouterClient(url)
    try:
        reply = await client.infer(CALL, TIMEOUT)
        _, health = await client.health()
    finally:
        await client.aclose()
    return reply, health


def failure_of(reply: RouterReply) -> receipt_pb2.Failure:
    assert reply.result == receipt_pb2.ATTEMPT_RESULT_FAILURE
    assert reply.failure is not None
    return reply.failure


@dataclass(frozen=True)
class TlsFault:
    server: str  # "loopback", "other" (a certificate for another host), "plain"
    scheme: str  # what the agent speaks
    trust_ca: bool
    code: str
    says: tuple[str, ...]


TLS_FAULTS = {
    "unknown CA": TlsFault(
        "loopback",
        "https",
        False,
        "ROUTER_TLS_REJECTED",
        (
            "certificate was rejected",
            "unable to get local issuer certificate",
            "SSL_CERT_FILE",
        ),
    ),
    "another host": TlsFault(
        "other",
        "https",
        True,
        "ROUTER_TLS_REJECTED",
        ("certificate was rejected", "mismatch", "does not name '127.0.0.1'"),
    ),
    "TLS to plain HTTP": TlsFault(
        "plain", "https", False, "ROUTER_TLS_MISMATCH", ("should start with http://",)
    ),
    "plain HTTP to TLS": TlsFault(
        "loopback",
        "http",
        False,
        "ROUTER_TLS_MISMATCH",
        ("speaks TLS", "should start with https://"),
    ),
}


@pytest.mark.parametrize("fault", TLS_FAULTS.values(), ids=TLS_FAULTS.keys())
async def test_a_tls_fault_is_not_retryable_and_says_what_to_fix(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch, fault: TlsFault
) -> None:
    if fault.trust_ca:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    tls = {
        "loopback": certificates.for_loopback,
        "other": certificates.for_another_host,
        "plain": None,
    }[fault.server]
    with serve_canned_router(tls) as router:
        url = f"{fault.scheme}://{router.url.split('://', 1)[1]}"
        reply, health = await call_once(url)

    failure = failure_of(reply)
    assert (failure.code, failure.retryable) == (fault.code, False)
    for words in fault.says:
        assert words in failure.message
        assert words in health


async def test_the_ca_named_by_ssl_cert_file_is_trusted(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    with serve_canned_router(certificates.for_loopback) as router:
        reply, _ = await call_once(router.url)

    assert reply.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS


# A router that answers one call on a connection, then closes it when the
# next call arrives on it, as a router closing an idle connection does.

SUCCESS = json.dumps(
    {
        "success": True,
        "response": "4",
        "provider_used": "raw-eu-west",
        "metadata": {"region": "eu-west", "model": "llama3.2-1b"},
    }
).encode()


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)


@pytest.fixture(params=["closed", "reset"])
async def closes_kept_alive(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(SUCCESS), SUCCESS)
        )
        await writer.drain()
        if request.param == "reset":
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        else:
            await read_request(reader)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_a_kept_alive_connection_closed_before_the_reply_says_so(
    closes_kept_alive: str,
) -> None:
    client = HybridRouterClient(closes_kept_alive, max_connections=1)
    try:
        first = await client.infer(CALL, TIMEOUT)
        second = await client.infer(CALL, TIMEOUT)
    finally:
        await client.aclose()

    assert first.result == receipt_pb2.ATTEMPT_RESULT_SUCCESS
    failure = failure_of(second)
    assert (failure.code, failure.retryable) == ("ROUTER_CONNECTION_CLOSED", True)
    assert "closed the connection before replying" in failure.message
    assert "kept-alive" in failure.message
    assert "ReadError('')" not in failure.message


async def test_a_router_killed_during_the_call_is_a_lost_connection(
    tmp_path: Path,
) -> None:
    with start_router(tmp_path, "--fault-control") as router:
        add_fault_rules(router.url, {"shape": "hang", "count": 1})
        client = HybridRouterClient(router.url)
        try:
            call = asyncio.create_task(client.infer(CALL, TIMEOUT))
            # The rule is used up once the router holds the call.
            for _ in range(400):
                if not await asyncio.to_thread(pending_fault_rules, router.url):
                    break
                await asyncio.sleep(0.025)
            router.process.kill()
            reply = await call
        finally:
            await client.aclose()

    failure = failure_of(reply)
    assert (failure.code, failure.retryable) == ("ROUTER_CONNECTION_LOST", True)
    assert "lost during the call, after the request was sent" in failure.message
    assert "cannot reach" not in failure.message


LONG_KEY = "sk-proj-Q7w2Er5Ty8Ui1Op4As6Df9Gh3Jk0Lz"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_names_its_target_and_is_not_followed(status: int) -> None:
    target = "https://elsewhere.example/v1/chat/completions?key=" + LONG_KEY
    with serve_canned_router() as router:
        router.enqueue(
            CannedReply(status, b"", headers={"location": target + "&" + "p" * 400}),
            path="/v1/chat/completions",
        )
        client = OpenAIChatClient(router.url + "/v1", api_key=LONG_KEY)
        try:
            reply = await client.infer(CALL, TIMEOUT)
        finally:
            await client.aclose()
        assert len(router.requests) == 1, "the redirect was not followed"

    failure = failure_of(reply)
    assert (failure.code, failure.retryable) == (f"ROUTER_HTTP_{status}", False)
    assert "https://elsewhere.example/v1/chat/completions?key=[redacted]" in (
        failure.message
    )
    assert "redirects are not followed" in failure.message
    assert "router URL" in failure.message
    assert "p" * 300 not in failure.message, "the Location is cut"
    assert [piece for piece in pieces_of(LONG_KEY) if piece in failure.message] == []


async def test_a_handshake_nobody_answers_ends_at_the_connect_limit() -> None:
    """https:// to a port that reads and never answers (a plain HTTP server
    waiting for the end of a request line): the call gives up on the
    handshake after the connect limit, not at its own deadline, and says
    what is probably wrong."""
    held: list[asyncio.StreamWriter] = []

    async def listen_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(listen_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HybridRouterClient(f"https://127.0.0.1:{port}", connect_seconds=0.5)
    try:
        # A deadline far past the connect limit: reaching it fails the test.
        reply = await asyncio.wait_for(client.infer(CALL, timeout_seconds=600), 60)
    finally:
        await client.aclose()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()

    assert reply.failure is not None
    assert reply.failure.code == "ROUTER_UNREACHABLE"
    assert reply.failure.retryable
    assert "did not answer the TLS handshake within 0.5s" in reply.failure.message
    assert "should start with http://" in reply.failure.message
