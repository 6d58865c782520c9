"""`beacon verify`: an exported result checked offline with public keys only."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from beacon.cli import main
from beacon.client import CoordinatorClient
from beacon.export import to_json
from beacon.signing import SigningKey
from beacon.v1 import analysis_pb2, job_pb2
from tests.support.router_process import RunningRouter
from tests.support.servers import start_agent, start_coordinator

REGIONS = ("us-east", "eu-west")


@dataclass
class Exported:
    first: job_pb2.JobResult
    # The same spec under another job id: its receipts must not pass as the first's.
    other_job: job_pb2.JobResult
    keys: dict[str, SigningKey]
    pins: Path


def spec(job_id: str) -> job_pb2.JobSpec:
    message = job_pb2.JobSpec(
        job_id=job_id, models=["llama3.2-1b", "mistral-7b"], regions=REGIONS
    )
    message.questions.add(id="capital", text="What is the capital of France?")
    message.questions.add(id="sum", text="What is 2+2?")
    return message


async def run_jobs(tmp_path: Path, router_url: str) -> Exported:
    agents = [await start_agent(tmp_path, r, router_url) for r in REGIONS]
    coordinator = await start_coordinator(tmp_path, agents)
    try:
        results = []
        async with CoordinatorClient(coordinator.endpoint) as client:
            for job_id in ("verify-a", "verify-b"):
                events = [event async for event in client.run(spec(job_id))]
                results.append(events[-1].result)
    finally:
        await coordinator.stop()
        for agent in agents:
            await agent.stop()
    pins = tmp_path / "pins.yaml"
    pins.write_text("".join(f"{a.region}: {a.key.public.b64}\n" for a in agents))
    return Exported(results[0], results[1], {a.region: a.key for a in agents}, pins)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, router: RunningRouter
) -> Exported:
    return asyncio.run(run_jobs(tmp_path_factory.mktemp("verify"), router.url))


def verify(result: job_pb2.JobResult, tmp_path: Path, *flags: str) -> tuple[int, str]:
    path = tmp_path / "result.json"
    path.write_text(to_json(result))
    capture = tmp_path / "out.txt"
    with capture.open("w") as out, contextlib.redirect_stdout(out):
        code = main(["verify", str(path), *flags])
    return code, capture.read_text()


def copy(result: job_pb2.JobResult) -> job_pb2.JobResult:
    twin = job_pb2.JobResult()
    twin.CopyFrom(result)
    return twin


def first_in(result: job_pb2.JobResult, region: str) -> job_pb2.CellOutcome:
    return next(o for o in result.outcomes if o.region == region)


def test_a_genuine_result_is_valid_with_embedded_or_pinned_keys(
    exported: Exported, tmp_path: Path
) -> None:
    embedded_code, embedded = verify(exported.first, tmp_path)
    pinned_code, pinned = verify(exported.first, tmp_path, "--pins", str(exported.pins))

    assert exported.first.counts.completed == 8
    assert embedded_code == 0 and pinned_code == 0, embedded + pinned
    assert "public keys embedded in the result" in embedded
    assert "pinned keys from" in pinned
    assert pinned.count("VALID ") == 8
    assert "8 cells: 8 valid, 0 invalid" in pinned


def test_a_receipt_signed_with_another_regions_key_is_invalid(
    exported: Exported, tmp_path: Path
) -> None:
    """The eu-west agent's genuine receipt, presented as a us-east cell's."""
    swapped = [
        f"--pin=us-east={exported.keys['eu-west'].public.b64}",
        f"--pin=eu-west={exported.keys['us-east'].public.b64}",
    ]

    code, out = verify(exported.first, tmp_path, *swapped)

    assert code == 1
    assert out.count("INVALID") == 8
    assert "not known for this region" in out


def test_a_receipt_signed_by_an_unknown_key_is_invalid(
    exported: Exported, tmp_path: Path
) -> None:
    forged = copy(exported.first)
    outcome = first_in(forged, "us-east")
    stranger = SigningKey.generate()
    outcome.receipt.signature = stranger.sign(outcome.receipt.body)
    outcome.receipt.key_id = stranger.key_id
    forged.public_keys[stranger.key_id] = stranger.public.raw

    code, out = verify(forged, tmp_path, "--pins", str(exported.pins))

    assert code == 1
    assert out.count("INVALID") == 1
    assert f"key '{stranger.key_id}' is not pinned for region us-east" in out


def test_a_receipt_replayed_from_another_cell_is_invalid(
    exported: Exported, tmp_path: Path
) -> None:
    forged = copy(exported.first)
    a, b = [o for o in forged.outcomes if o.region == "eu-west"][:2]
    kept = job_pb2.CellOutcome()
    kept.receipt.CopyFrom(a.receipt)
    a.receipt.CopyFrom(b.receipt)
    b.receipt.CopyFrom(kept.receipt)

    code, out = verify(forged, tmp_path, "--pins", str(exported.pins))

    assert code == 1
    assert out.count("replayed from another cell") == 2


def test_a_receipt_replayed_from_another_job_is_invalid(
    exported: Exported, tmp_path: Path
) -> None:
    forged = copy(exported.first)
    target = forged.outcomes[3]
    source = next(
        o
        for o in exported.other_job.outcomes
        if o.model == target.model
        and o.region == target.region
        and o.question_id == target.question_id
    )
    target.receipt.CopyFrom(source.receipt)

    code, out = verify(forged, tmp_path, "--pins", str(exported.pins))

    assert code == 1
    assert "replayed from another job" in out


def test_altered_bytes_are_invalid(exported: Exported, tmp_path: Path) -> None:
    forged = copy(exported.first)
    body = bytearray(forged.outcomes[0].receipt.body)
    body[-1] ^= 0x01
    forged.outcomes[0].receipt.body = bytes(body)
    forged.outcomes[1].answer = "Something the agent never said."

    code, out = verify(forged, tmp_path)

    assert code == 1
    assert "the signed bytes were altered" in out
    assert "the answer shown is not the answer signed in the receipt" in out


def test_a_file_that_is_not_a_result_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"questions": []}')

    assert main(["verify", str(path)]) == 2


def test_a_success_relabelled_as_a_failure_is_invalid(
    exported: Exported, tmp_path: Path
) -> None:
    """Hiding an answer as a technical failure contradicts its signed receipt."""
    relabelled = copy(exported.first)
    outcome = first_in(relabelled, "us-east")
    outcome.status = job_pb2.CELL_STATUS_FAILED
    outcome.answer = ""
    outcome.classification = 0

    code, out = verify(relabelled, tmp_path, "--pins", str(exported.pins))

    assert code == 1
    assert (
        "the outcome says CELL_STATUS_FAILED, its receipt CELL_STATUS_COMPLETED" in out
    )


def test_a_status_with_no_receipt_is_unsigned_and_fails_only_when_strict(
    exported: Exported, tmp_path: Path
) -> None:
    stripped = copy(exported.first)
    outcome = first_in(stripped, "us-east")
    outcome.status = job_pb2.CELL_STATUS_FAILED
    outcome.answer = ""
    outcome.ClearField("receipt")
    # The analysis would give the edit away; this checks the outcome alone.
    stripped.ClearField("analysis")
    pins = ("--pins", str(exported.pins))

    code, out = verify(stripped, tmp_path, *pins)
    strict_code, _ = verify(stripped, tmp_path, *pins, "--strict")

    assert code == 0 and strict_code == 1
    assert "UNSIGNED" in out
    assert "7 valid, 0 invalid, 0 pending, 1 unsigned" in out


def test_an_edited_analysis_is_invalid(exported: Exported, tmp_path: Path) -> None:
    edited = copy(exported.first)
    assert edited.HasField("analysis")
    edited.analysis.risk = analysis_pb2.RISK_LEVEL_HIGH
    edited.analysis.risk_reasons.append("made up")

    code, out = verify(edited, tmp_path, "--pins", str(exported.pins))
    genuine_code, _ = verify(exported.first, tmp_path, "--pins", str(exported.pins))

    assert genuine_code == 0
    assert code == 1
    assert (
        "the analysis is not what the outcomes give: risk is RISK_LEVEL_HIGH in "
        "the file; recomputed, it is RISK_LEVEL_"
    ) in out


def test_an_edited_number_in_the_analysis_is_named(
    exported: Exported, tmp_path: Path
) -> None:
    """An edit that leaves the risk as it was: the message names the field,
    instead of the same risk summary twice."""
    edited = copy(exported.first)
    stats = edited.analysis.region_models[1]
    edited_value = stats.answered_cells + 7
    stats.answered_cells = edited_value

    code, out = verify(edited, tmp_path, "--pins", str(exported.pins))

    assert code == 1
    assert (
        f"region_models[1].answered_cells is {edited_value} in the file; recomputed, "
        f"it is {edited_value - 7}"
    ) in out


def test_a_result_with_no_outcomes_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("{}")

    assert main(["verify", str(path)]) == 2
