"""TLS end to end: certificates from `beacon certs`, an agent and the
coordinator as separate processes, driven by `beacon` and grpcurl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from beacon.local import agent_command
from beacon.processes import ProcessGroup
from beacon.signing import SigningKey
from tests.support.router_process import RunningRouter

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
TIMEOUT = 120


def command(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Deployment:
    folder: Path
    coordinator: str
    agent: str
    token: str


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, router: RunningRouter
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("tls-deploy")
    made = command(str(BIN / "beacon"), "certs", "--out", str(folder / "certs"))
    assert made.returncode == 0, made.stderr
    token_file = folder / "me.token"
    added = command(
        str(BIN / "beacon"),
        "token",
        "--tokens-file",
        str(folder / "tokens.yaml"),
        "--name",
        "me",
        "--role",
        "submit",
        "--out",
        str(token_file),
    )
    assert added.returncode == 0, added.stderr
    key = SigningKey.generate()
    key.write(folder / "us-east.key")
    certs = folder / "certs"

    group = ProcessGroup(folder / "run")
    try:
        agent = group.start(
            "agent",
            agent_command(
                "us-east",
                router.url,
                folder / "us-east.key",
                "--tls-ca",
                str(certs / "ca.crt"),
                "--tls-cert",
                str(certs / "agent-us-east.crt"),
                "--tls-key",
                str(certs / "agent-us-east.key"),
            ),
        ).wait_ready()
        # Relative paths are read from beside the configuration file.
        config = {
            "listen": "127.0.0.1:0",
            "store": str(folder / "beacon.db"),
            "tokens_file": "tokens.yaml",
            "tls": {
                "ca": "certs/ca.crt",
                "cert": "certs/coordinator.crt",
                "key": "certs/coordinator.key",
            },
            "regions": {
                "us-east": {"agents": [{"address": agent, "public_key": "us-east.pub"}]}
            },
        }
        (folder / "coordinator.yaml").write_text(yaml.safe_dump(config))
        coordinator = group.start(
            "coordinator",
            ["beacon", "coordinator", "--config", str(folder / "coordinator.yaml")],
        ).wait_ready()
        yield Deployment(folder, coordinator, agent, token_file.read_text().strip())
    finally:
        group.stop_all()


def test_a_job_runs_with_the_command_line_over_tls(
    deployment: Deployment, tmp_path: Path
) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "models: [llama3.2-1b]\nregions: [US]\n"
        "questions: [{id: q, text: 'What is the capital of France?'}]\n"
    )
    ca = str(deployment.folder / "certs" / "ca.crt")

    over_tls = command(
        str(BIN / "beacon"),
        "run",
        str(job),
        "--coordinator",
        deployment.coordinator,
        "--ca-cert",
        ca,
        env={"BEACON_TOKEN": deployment.token},
    )
    plaintext = command(
        str(BIN / "beacon"),
        "list",
        "--coordinator",
        deployment.coordinator,
        env={"BEACON_TOKEN": deployment.token},
    )

    assert over_tls.returncode == 0, over_tls.stderr
    assert "cells 1: completed 1" in over_tls.stdout
    assert plaintext.returncode == 2 and "UNAVAILABLE" in plaintext.stderr
    log = (deployment.folder / "run" / "coordinator.log").read_text()
    assert "agent ready region=us-east" in log
    assert deployment.token not in log


def test_grpcurl_needs_the_ca_and_for_an_agent_the_coordinators_certificate(
    deployment: Deployment,
) -> None:
    certs = deployment.folder / "certs"
    grpcurl = str(BIN / "grpcurl")
    ca = ("-cacert", str(certs / "ca.crt"))
    as_coordinator = (
        "-cert",
        str(certs / "coordinator.crt"),
        "-key",
        str(certs / "coordinator.key"),
    )
    describe = "beacon.v1.RegionAgentService/Describe"

    listed = command(grpcurl, *ca, deployment.coordinator, "list")
    agent_ok = command(grpcurl, *ca, *as_coordinator, deployment.agent, describe)
    agent_no_cert = command(grpcurl, *ca, deployment.agent, describe)

    assert listed.returncode == 0, listed.stderr
    assert "beacon.v1.CoordinatorService" in listed.stdout
    assert agent_ok.returncode == 0, agent_ok.stderr
    assert json.loads(agent_ok.stdout)["region"] == "us-east"
    assert agent_no_cert.returncode != 0
