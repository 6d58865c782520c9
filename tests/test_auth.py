"""Bearer tokens on the coordinator: who may call what, and nothing leaks."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from beacon.cli import main
from beacon.client import Endpoint, open_channel
from beacon.secret_files import SecretFileError
from beacon.tokens import Role, add_token, load_tokens, token_digest
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc
from coordinator.auth import TokenCheck, bearer_token
from tests.support.servers import RunningCoordinator, start_agent, start_coordinator

# No router is called: every request here is refused or invalid.
NO_ROUTER = "http://127.0.0.1:9"

CALLS: dict[str, Any] = {
    "SubmitJob": pb.SubmitJobRequest(),
    "RunJob": pb.RunJobRequest(),
    "CancelJob": pb.CancelJobRequest(job_id="nope"),
    "GetJobResult": pb.GetJobResultRequest(job_id="nope"),
    "ListJobs": pb.ListJobsRequest(page_token="nope"),
    "WatchJob": pb.WatchJobRequest(job_id="nope"),
}
STREAMING = {"RunJob", "WatchJob"}


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[RunningCoordinator]:
    agent = await start_agent(tmp_path, "us-east", NO_ROUTER)
    running = await start_coordinator(tmp_path, [agent])
    yield running
    await running.stop()
    await agent.stop()


async def call(endpoint: Endpoint, method: str) -> grpc.StatusCode:
    async with open_channel(endpoint) as channel:
        stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
        try:
            if method in STREAMING:
                async for _ in getattr(stub, method)(CALLS[method], timeout=10):
                    pass
            else:
                await getattr(stub, method)(CALLS[method], timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_every_call_needs_a_known_token(
    coordinator: RunningCoordinator, method: str
) -> None:
    none = await call(Endpoint(coordinator.address), method)
    unknown = await call(Endpoint(coordinator.address, "bct_made-up-token-1"), method)

    assert none == grpc.StatusCode.UNAUTHENTICATED
    assert unknown == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("role", "method", "expected"),
    [
        ("read", "SubmitJob", grpc.StatusCode.PERMISSION_DENIED),
        ("read", "RunJob", grpc.StatusCode.PERMISSION_DENIED),
        ("read", "CancelJob", grpc.StatusCode.PERMISSION_DENIED),
        # Past the token check: the job does not exist, the page token is bad.
        ("read", "GetJobResult", grpc.StatusCode.NOT_FOUND),
        ("read", "WatchJob", grpc.StatusCode.NOT_FOUND),
        ("read", "ListJobs", grpc.StatusCode.INVALID_ARGUMENT),
        ("submit", "SubmitJob", grpc.StatusCode.INVALID_ARGUMENT),
        ("submit", "RunJob", grpc.StatusCode.INVALID_ARGUMENT),
        ("submit", "CancelJob", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_a_read_only_token_reads_but_does_not_submit_or_cancel(
    coordinator: RunningCoordinator, role: str, method: str, expected: grpc.StatusCode
) -> None:
    token = coordinator.read_token if role == "read" else coordinator.token

    assert await call(Endpoint(coordinator.address, token), method) == expected


async def test_health_and_reflection_need_no_token(
    coordinator: RunningCoordinator,
) -> None:
    async with grpc.aio.insecure_channel(coordinator.address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            timeout=10,
        )
        listed = [reply async for reply in stream]

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    names = {s.name for s in listed[0].list_services_response.service}
    assert "beacon.v1.CoordinatorService" in names


async def test_a_coordinator_without_tokens_refuses_every_call(
    tmp_path: Path,
) -> None:
    agent = await start_agent(tmp_path, "us-east", NO_ROUTER)
    running = await start_coordinator(tmp_path, [agent], tokens_file=None)
    try:
        code = await call(running.endpoint, "ListJobs")
    finally:
        await running.stop()
        await agent.stop()

    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_tokens_never_reach_the_log(
    coordinator: RunningCoordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [coordinator.token, coordinator.read_token, "bct_wrong-token-abcdef"]

    for token in tokens:
        for method in CALLS:
            await call(Endpoint(coordinator.address, token), method)

    assert "refused" in caplog.text and "caller=tester" in caplog.text
    for token in tokens:
        assert token not in caplog.text
        assert token_digest(token) not in caplog.text


def test_endpoint_repr_hides_the_token() -> None:
    endpoint = Endpoint("127.0.0.1:1", "bct_secret-value-123")

    assert "secret" not in repr(endpoint) and "secret" not in str(endpoint)


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ([("authorization", "Bearer abc")], "abc"),
        ([("authorization", "bearer  abc ")], "abc"),
        ([("authorization", "Basic abc")], ""),
        ([("x-token", "abc")], ""),
        (None, ""),
    ],
    ids=["bearer", "lowercase-scheme", "other-scheme", "other-header", "none"],
)
def test_bearer_token_is_read_from_the_authorization_header(
    metadata: Any, token: str
) -> None:
    assert bearer_token(metadata) == token


def test_plain_and_hashed_tokens_load_with_their_roles(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    hashed = add_token(path, "ci", Role.SUBMIT)
    with path.open("a") as handle:
        handle.write("- {name: board, role: read, token: plain-token-of-16+}\n")

    check = TokenCheck(load_tokens(path))
    submit = "/beacon.v1.CoordinatorService/SubmitJob"

    assert check.refusal(submit, [("authorization", f"Bearer {hashed}")]) == (
        None,
        "ci",
    )
    refusal, _ = check.refusal(submit, [("authorization", "Bearer plain-token-of-16+")])
    assert refusal is not None and refusal[0] == grpc.StatusCode.PERMISSION_DENIED
    assert hashed not in path.read_text(), "only the hash is stored"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("tokens:\n  - {name: a, role: admin, token: 0123456789abcdef}\n", "role"),
        ("tokens:\n  - {name: a, role: read}\n", "exactly one of"),
        ("tokens:\n  - {name: a, role: read, token: short}\n", "16 characters"),
        ("tokens:\n  - {name: a, role: read, sha256: zz}\n", "64 hex"),
        ("tokens: {}\n", "list"),
        ("tokens:\n- {name: a, token: secret-in-a-bad-line: [\n", "line 2"),
    ],
    ids=[
        "unknown-role",
        "no-secret",
        "short-token",
        "bad-hash",
        "not-a-list",
        "bad-yaml-not-quoted",
    ],
)
def test_bad_tokens_files_are_refused_with_the_entry(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(content)
    path.chmod(0o600)

    with pytest.raises(SecretFileError) as caught:
        load_tokens(path)

    assert words in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_tokens_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    add_token(path, "ci", Role.SUBMIT)
    os.chmod(path, 0o644)

    with pytest.raises(SecretFileError) as caught:
        load_tokens(path)

    assert "chmod 600" in str(caught.value)


def test_a_client_token_file_others_can_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "me.token"
    path.write_text("bct_a-token-that-must-stay-private\n")
    os.chmod(path, 0o644)

    code = main(["list", "--token-file", str(path), "--coordinator", "127.0.0.1:9"])

    err = capsys.readouterr().err
    assert code == 2
    assert "chmod 600" in err and "must-stay-private" not in err


def test_beacon_token_stores_only_the_hash_and_writes_the_token_privately(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens, out = tmp_path / "tokens.yaml", tmp_path / "ci.token"

    code = main(
        ["token", "--tokens-file", str(tokens), "--name", "ci", "--out", str(out)]
    )

    token = out.read_text().strip()
    assert code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert tokens.stat().st_mode & 0o777 == 0o600
    assert token not in tokens.read_text() and token not in capsys.readouterr().out
    assert token_digest(token) in load_tokens(tokens)
