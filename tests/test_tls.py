"""TLS for clients and mutual TLS to agents, with certificates from `beacon certs`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from pydantic import ValidationError

from beacon.certs import (
    COORDINATOR_NAME,
    dns_names,
    issue,
    load_authority,
    regions_named,
    write_pair,
)
from beacon.channels import client_options
from beacon.cli import main
from beacon.client import CoordinatorClient, Endpoint
from beacon.tls import TlsFiles
from beacon.v1 import job_pb2, region_agent_service_pb2, region_agent_service_pb2_grpc
from coordinator.preflight import check_agent
from coordinator.region_stream import Replica
from tests.support.router_process import RunningRouter, read_call_log
from tests.support.servers import (
    RunningAgent,
    RunningCoordinator,
    start_agent,
    start_coordinator,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    assert main(["certs", "--out", str(out), "--regions", "us-east,EU"]) == 0
    return out


def agent_tls(certs: Path, region: str) -> TlsFiles:
    return TlsFiles(
        ca=certs / "ca.crt",
        cert=certs / f"agent-{region}.crt",
        key=certs / f"agent-{region}.key",
    )


def coordinator_tls(certs: Path) -> TlsFiles:
    return TlsFiles(
        ca=certs / "ca.crt",
        cert=certs / "coordinator.crt",
        key=certs / "coordinator.key",
    )


def job(job_id: str, *regions: str) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(job_id=job_id, models=["llama3.2-1b"], regions=regions)
    spec.questions.add(id="capital", text=f"[{job_id}] What is the capital of France?")
    return spec


@dataclass
class Secured:
    coordinator: RunningCoordinator
    agents: list[RunningAgent]


@pytest.fixture
async def secured(
    tmp_path: Path, router: RunningRouter, certs: Path
) -> AsyncIterator[Secured]:
    agents = [
        await start_agent(tmp_path, region, router.url, tls=agent_tls(certs, region))
        for region in ("us-east", "eu-west")
    ]
    coordinator = await start_coordinator(tmp_path, agents, tls=coordinator_tls(certs))
    yield Secured(coordinator, agents)
    await coordinator.stop()
    for agent in agents:
        await agent.stop()


def test_certs_names_each_agents_region_and_keeps_keys_private(certs: Path) -> None:
    ca_before = (certs / "ca.crt").read_bytes()
    coordinator = x509.load_pem_x509_certificate(
        (certs / "coordinator.crt").read_bytes()
    )
    eu = x509.load_pem_x509_certificate((certs / "agent-eu-west.crt").read_bytes())

    assert regions_named(eu) == ["eu-west"]
    assert regions_named(coordinator) == []
    assert COORDINATOR_NAME in dns_names(coordinator)
    for key in certs.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    # Run again: new leaf certificates from the same CA.
    assert main(["certs", "--out", str(certs), "--regions", "us-east,eu-west"]) == 0
    assert (certs / "ca.crt").read_bytes() == ca_before


async def test_a_job_runs_over_tls_and_mutual_tls(
    secured: Secured, certs: Path, router: RunningRouter
) -> None:
    coordinator = secured.coordinator
    endpoint = Endpoint(coordinator.address, coordinator.token, certs / "ca.crt")

    async with CoordinatorClient(endpoint) as client:
        events = [event async for event in client.run(job("tls-1", "US", "EU"))]
    plaintext = Endpoint(coordinator.address, coordinator.token)
    async with CoordinatorClient(plaintext) as client:
        with pytest.raises(Exception) as refused:
            await client.list_jobs()

    result = events[-1].result
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert result.counts.completed == 2
    assert "UNAVAILABLE" in str(refused.value)
    calls = [c for c in read_call_log(router.call_log) if "[tls-1]" in c["prompt"]]
    assert sorted(c["region_preference"] for c in calls) == ["eu-west", "us-east"]


async def describe(
    address: str, credentials: grpc.ChannelCredentials | None, name: str
) -> grpc.StatusCode:
    options = [*client_options(), ("grpc.ssl_target_name_override", name)]
    channel = (
        grpc.aio.secure_channel(address, credentials, options=options)
        if credentials
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        try:
            await stub.Describe(region_agent_service_pb2.DescribeRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_only_the_coordinators_certificate_may_call_an_agent(
    secured: Secured, certs: Path
) -> None:
    agent = secured.agents[0]
    ca = (certs / "ca.crt").read_bytes()

    def presenting(stem: str) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            ca,
            (certs / f"{stem}.key").read_bytes(),
            (certs / f"{stem}.crt").read_bytes(),
        )

    name = "us-east.region.beacon.internal"
    plaintext = await describe(agent.address, None, name)
    no_client_cert = await describe(
        agent.address, grpc.ssl_channel_credentials(ca), name
    )
    another_agent = await describe(agent.address, presenting("agent-eu-west"), name)
    coordinator = await describe(agent.address, presenting("coordinator"), name)
    # A client certificate from the same CA that does not name the coordinator.
    key, cert = issue(load_authority(certs), "someone", ("someone.test",), client=True)
    write_pair(certs, "someone", key, cert)
    other_client = await describe(agent.address, presenting("someone"), name)

    assert plaintext == grpc.StatusCode.UNAVAILABLE
    assert no_client_cert == grpc.StatusCode.UNAVAILABLE
    assert another_agent == grpc.StatusCode.UNAVAILABLE, "not a client certificate"
    assert other_client == grpc.StatusCode.PERMISSION_DENIED
    assert coordinator == grpc.StatusCode.OK


async def test_an_agent_with_another_regions_certificate_gets_no_cells(
    tmp_path: Path, router: RunningRouter, certs: Path
) -> None:
    """A us-east agent (right region, pinned key) holding eu-west's certificate."""
    impostor = await start_agent(
        tmp_path, "us-east", router.url, tls=agent_tls(certs, "eu-west")
    )
    coordinator = await start_coordinator(
        tmp_path, [impostor], tls=coordinator_tls(certs)
    )
    spec = job("tls-impostor", "us-east")
    spec.timeouts.router_call_seconds = 1
    spec.timeouts.cell_attempt_seconds = 2
    spec.timeouts.job_seconds = 3
    try:
        problem = await check_agent(
            "us-east",
            Replica(impostor.address, impostor.key.public, coordinator_tls(certs)),
        )
        endpoint = Endpoint(coordinator.address, coordinator.token, certs / "ca.crt")
        async with CoordinatorClient(endpoint) as client:
            events = [event async for event in client.run(spec)]
    finally:
        await coordinator.stop()
        await impostor.stop()

    assert "certificate for eu-west, not us-east" in problem
    outcome = events[-1].result.outcomes[0]
    assert outcome.status == job_pb2.CELL_STATUS_NOT_RUN
    assert "eu-west" in outcome.reason
    assert not [c for c in read_call_log(router.call_log) if "[tls-imp" in c["prompt"]]


def test_a_tls_key_others_can_read_is_refused(tmp_path: Path, certs: Path) -> None:
    key = tmp_path / "coordinator.key"
    key.write_bytes((certs / "coordinator.key").read_bytes())
    os.chmod(key, 0o640)

    with pytest.raises(ValidationError) as caught:
        TlsFiles(ca=certs / "ca.crt", cert=certs / "coordinator.crt", key=key)

    assert "chmod 600" in str(caught.value)


async def test_the_command_line_speaks_tls_with_ca_cert(
    secured: Secured, certs: Path
) -> None:
    coordinator = secured.coordinator
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "beacon"),
        "list",
        "--coordinator",
        coordinator.address,
        "--ca-cert",
        str(certs / "ca.crt"),
        env={**os.environ, "BEACON_TOKEN": coordinator.read_token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, stderr.decode()
    assert coordinator.read_token not in (stdout + stderr).decode()
