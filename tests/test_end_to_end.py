"""End to end: router, three agents and the coordinator as separate processes,
driven by the `beacon` command line and by grpcurl, as users do."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from beacon.cells import expand_cells
from beacon.jobspec import load_job_file, normalize_spec
from beacon.local import LocalDeployment, start_local
from beacon.processes import ProcessGroup
from beacon.signing import PublicKey
from beacon.v1 import job_pb2, receipt_pb2
from tests.support.commands import beacon
from tests.support.router_process import read_call_log

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "examples" / "cross-region-minimal.yaml"
MINIMAL_JSON = ROOT / "examples" / "cross-region-minimal.json"
BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 120


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployment")


@pytest.fixture(scope="module")
def deployment(state_dir: Path) -> Iterator[LocalDeployment]:
    group = ProcessGroup(state_dir / "run")
    try:
        yield start_local(group, state_dir)
    finally:
        group.stop_all()


def run_minimal(
    deployment: LocalDeployment, output: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """`beacon run` of the minimal job, writing its result to `output`."""
    return beacon(
        *options,
        "run",
        str(MINIMAL),
        "--coordinator",
        deployment.coordinator,
        "--output",
        str(output),
        token=deployment.token,
    )


def grpcurl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "grpcurl"), "-plaintext", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def pinned_keys(state_dir: Path) -> dict[str, PublicKey]:
    keys = {}
    for path in (state_dir / "keys").glob("*.pub"):
        key = PublicKey.from_b64(path.read_text())
        keys[path.stem] = key
    return keys


def test_minimal_job_makes_exactly_one_real_call_per_cell(
    deployment: LocalDeployment, state_dir: Path, tmp_path: Path
) -> None:
    """The old failure: 18 records from 2 calls. Here: 18 calls, 18 answers."""
    calls_before = len(read_call_log(deployment.call_log))
    output = tmp_path / "result.json"

    run = run_minimal(deployment, output)

    assert run.returncode == 0, run.stderr
    result = json_format.Parse(output.read_text(), job_pb2.JobResult())
    calls = read_call_log(deployment.call_log)[calls_before:]

    # Exactly one router call per cell, each with its own model, region and text.
    spec = normalize_spec(load_job_file(MINIMAL))
    spec.job_id = result.job_id
    expected = {(c.model, c.region, c.prompt) for c in expand_cells(spec)}
    called = [(c["model"], c["region_preference"], c["prompt"]) for c in calls]
    assert len(called) == 18
    assert set(called) == expected
    assert all(c["served_region"] == c["region_preference"] for c in calls)

    # One outcome per cell, built from a receipt that names that call.
    assert result.status == job_pb2.JOB_STATUS_COMPLETED
    assert len(result.outcomes) == 18
    assert [c.cell_id for c in expand_cells(spec)] == [
        o.cell_id for o in result.outcomes
    ]
    answers = [o.answer for o in result.outcomes]
    assert len(set(answers)) == 18, "every cell has its own answer"

    keys = pinned_keys(state_dir)
    receipted = set()
    for outcome in result.outcomes:
        receipt = outcome.receipt
        body = receipt_pb2.ReceiptBody.FromString(receipt.body)
        assert keys[outcome.region].verify(receipt.signature, receipt.body)
        assert receipt.key_id == keys[outcome.region].key_id
        assert (body.cell_id, body.region, body.model) == (
            outcome.cell_id,
            outcome.region,
            outcome.model,
        )
        assert body.output == outcome.answer
        assert body.router.offline and body.router.provider_type == "offline"
        receipted.add((body.model, body.region, body.prompt))
    assert receipted == set(called)

    # The table and summary are printed for the person who ran it.
    assert "region us-east" in run.stdout and "region eu-west" in run.stdout
    assert "cells 18: completed 18" in run.stdout


def test_show_and_list_read_the_stored_result(deployment: LocalDeployment) -> None:
    at = ("--coordinator", deployment.coordinator)
    submitted = beacon("submit", str(MINIMAL), *at, token=deployment.token)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]

    watched = beacon("watch", job_id, *at, token=deployment.token)
    shown = beacon("show", job_id, "--format", "json", *at, token=deployment.token)
    listed = beacon("list", *at, token=deployment.token)

    assert watched.returncode == 0, watched.stderr
    assert shown.returncode == 0, shown.stderr
    result = json_format.Parse(shown.stdout, job_pb2.JobResult())
    assert result.job_id == job_id
    assert result.counts.completed == 18
    assert job_id in listed.stdout


def test_bad_job_file_is_refused_with_the_field(
    tmp_path: Path, deployment: LocalDeployment
) -> None:
    job = tmp_path / "bad.yaml"
    job.write_text(
        "models: [llama3.2-1b]\nregions: [us-east, narnia]\n"
        "questions: [{id: q, text: 'Hi?'}]\n"
    )

    run = beacon(
        "run", str(job), "--coordinator", deployment.coordinator, token=deployment.token
    )

    assert run.returncode == 2
    assert "regions[1]" in run.stderr and "narnia" in run.stderr
    assert "Traceback" not in run.stderr


def test_grpcurl_lists_and_describes_through_reflection(
    deployment: LocalDeployment,
) -> None:
    listed = grpcurl(deployment.coordinator, "list")
    described = grpcurl(
        deployment.coordinator, "describe", "beacon.v1.CoordinatorService"
    )
    health = grpcurl(deployment.coordinator, "grpc.health.v1.Health/Check")

    assert listed.returncode == 0, listed.stderr
    assert "beacon.v1.CoordinatorService" in listed.stdout.split()
    assert "grpc.health.v1.Health" in listed.stdout.split()
    assert "rpc RunJob" in described.stdout
    assert json.loads(health.stdout)["status"] == "SERVING"


def test_grpcurl_submits_json_and_fetches_the_result(
    deployment: LocalDeployment,
) -> None:
    bearer = f"authorization: Bearer {deployment.token}"
    submitted = grpcurl(
        "-H",
        bearer,
        "-d",
        "@",
        deployment.coordinator,
        "beacon.v1.CoordinatorService/SubmitJob",
        stdin=MINIMAL_JSON.read_text(),
    )
    assert submitted.returncode == 0, submitted.stderr
    reply = json.loads(submitted.stdout)
    assert reply["created"] is True and reply["cells"] == 18, reply
    job_id = reply["job_id"]

    result: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fetched = grpcurl(
            "-H",
            bearer,
            "-d",
            json.dumps({"job_id": job_id}),
            deployment.coordinator,
            "beacon.v1.CoordinatorService/GetJobResult",
        )
        assert fetched.returncode == 0, fetched.stderr
        result = json.loads(fetched.stdout)["result"]
        if result.get("status") == "JOB_STATUS_COMPLETED":
            break
        time.sleep(0.2)

    assert result["status"] == "JOB_STATUS_COMPLETED"
    assert len(result["outcomes"]) == 18
    assert result["spec"]["regions"] == ["us-east", "eu-west"]


def test_grpcurl_reaches_an_agent(deployment: LocalDeployment, state_dir: Path) -> None:
    config = (state_dir / "coordinator.yaml").read_text()
    address = next(
        line.split("address:")[1].strip()
        for line in config.splitlines()
        if "address:" in line
    )

    described = grpcurl(address, "beacon.v1.RegionAgentService/Describe")

    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["region"] in {
        "us-east",
        "eu-west",
        "asia-pacific",
    }


def test_calls_without_a_valid_token_are_refused(
    deployment: LocalDeployment,
) -> None:
    """Health and reflection are open; everything else needs a known token."""
    at = ("--coordinator", deployment.coordinator)

    no_token = beacon("list", *at)
    wrong_token = beacon("list", *at, token="bct_not-a-token-of-this-deployment")
    by_grpcurl = grpcurl(
        "-d",
        "@",
        deployment.coordinator,
        "beacon.v1.CoordinatorService/SubmitJob",
        stdin=MINIMAL_JSON.read_text(),
    )

    assert no_token.returncode == 2
    assert "UNAUTHENTICATED" in no_token.stderr and "BEACON_TOKEN" in no_token.stderr
    assert wrong_token.returncode == 2
    assert "not known" in wrong_token.stderr
    assert by_grpcurl.returncode != 0
    assert "Unauthenticated" in by_grpcurl.stderr


def test_no_secret_reaches_a_log_a_store_or_a_result(
    deployment: LocalDeployment, state_dir: Path, tmp_path: Path
) -> None:
    """Run a job with debug logging, then look for the token and the private
    signing keys in every file the deployment wrote and in the result."""
    output = tmp_path / "result.json"
    run = run_minimal(deployment, output, "--log-level", "DEBUG")
    assert run.returncode == 0, run.stderr
    key_files = sorted((state_dir / "keys").glob("*.key"))
    # The base64 lines of each PEM private key.
    private = [
        line.encode()
        for path in key_files
        for line in path.read_text().splitlines()
        if not line.startswith("-----")
    ]

    written = [p for p in state_dir.rglob("*") if p.is_file() and p not in key_files]
    texts = {path: path.read_bytes() for path in written}
    texts[output] = output.read_bytes()
    assert any(path.suffix == ".log" for path in texts)
    assert any(path.suffix == ".db" for path in texts)
    assert len(private) == 3
    for path, data in texts.items():
        assert deployment.token.encode() not in data, path
        assert not any(secret in data for secret in private), path
    assert deployment.token not in run.stdout + run.stderr
