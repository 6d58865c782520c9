"""Receipt checks (invariant 4): only a genuine answer to the sent attempt passes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from beacon.cells import Cell, cell_id_for
from beacon.digests import sha256_hex
from beacon.signing import KeyFileError, SigningKey
from beacon.v1 import receipt_pb2
from coordinator.verify import ReceiptRejected, SentAttempt, check_body, open_receipt
from region_agent.receipts import seal

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {region: SigningKey.generate() for region in ("us-east", "eu-west")}


@pytest.fixture
def sent() -> SentAttempt:
    cell = Cell(
        job_id="job-1",
        cell_id=cell_id_for("job-1", "eu-west", "llama3.2-1b", "geography_basic", 0),
        region="eu-west",
        model="llama3.2-1b",
        question_id="geography_basic",
        sample=0,
        prompt=PROMPT,
        prompt_sha256=sha256_hex(PROMPT),
    )
    return SentAttempt(
        cell, attempt=1, temperature=0.1, max_tokens=512, job_token="token-1"
    )


def pinned(keys: dict[str, SigningKey]) -> dict[str, dict[str, object]]:
    return {region: {k.key_id: k.public} for region, k in keys.items()}


def body_for(sent: SentAttempt, output: str = "Paris.") -> receipt_pb2.ReceiptBody:
    cell = sent.cell
    return receipt_pb2.ReceiptBody(
        job_id=cell.job_id,
        cell_id=cell.cell_id,
        attempt=sent.attempt,
        region=cell.region,
        model=cell.model,
        question_id=cell.question_id,
        sample=cell.sample,
        prompt=cell.prompt,
        prompt_sha256=cell.prompt_sha256,
        result=receipt_pb2.ATTEMPT_RESULT_SUCCESS,
        output=output,
        output_sha256=sha256_hex(output),
        temperature=sent.temperature,
        max_tokens=sent.max_tokens,
        job_token=sent.job_token,
    )


def verify(
    receipt: receipt_pb2.Receipt, sent: SentAttempt, keys: dict[str, SigningKey]
) -> None:
    body = open_receipt(receipt, sent.cell.region, pinned(keys))  # type: ignore[arg-type]
    check_body(body, sent)


def test_genuine_receipt_is_accepted(
    keys: dict[str, SigningKey], sent: SentAttempt
) -> None:
    verify(seal(body_for(sent), keys["eu-west"]), sent, keys)


def test_signature_covers_the_exact_bytes(
    keys: dict[str, SigningKey], sent: SentAttempt
) -> None:
    """The body is signed as serialized; verifying needs no re-encoding."""
    receipt = seal(body_for(sent), keys["eu-west"])

    assert keys["eu-west"].public.verify(receipt.signature, receipt.body)
    assert receipt.key_id == keys["eu-west"].key_id


def _tampered_output(receipt: receipt_pb2.Receipt) -> None:
    body = receipt_pb2.ReceiptBody.FromString(receipt.body)
    body.output = "Lyon."
    receipt.body = body.SerializeToString()


def _flipped_byte(receipt: receipt_pb2.Receipt) -> None:
    data = bytearray(receipt.body)
    data[-1] ^= 0x01
    receipt.body = bytes(data)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tampered_output, "bad_signature"),
        (_flipped_byte, "bad_signature"),
        (lambda r: setattr(r, "signature", b"\x00" * 64), "bad_signature"),
        (lambda r: setattr(r, "key_id", "ed25519:0000000000000000"), "unknown_key"),
    ],
    ids=["altered-output", "altered-byte", "forged-signature", "unknown-key-id"],
)
def test_altered_receipts_are_rejected(
    keys: dict[str, SigningKey], sent: SentAttempt, tamper: object, reason: str
) -> None:
    receipt = seal(body_for(sent), keys["eu-west"])
    tamper(receipt)  # type: ignore[operator]

    with pytest.raises(ReceiptRejected) as caught:
        verify(receipt, sent, keys)

    assert caught.value.reason == reason


def test_key_of_another_region_is_rejected(
    keys: dict[str, SigningKey], sent: SentAttempt
) -> None:
    """A receipt signed by us-east's agent cannot answer an eu-west cell."""
    receipt = seal(body_for(sent), keys["us-east"])

    with pytest.raises(ReceiptRejected) as caught:
        verify(receipt, sent, keys)

    assert caught.value.reason == "unknown_key"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("job_id", "job-2", "job_id_mismatch"),
        ("cell_id", "c_other", "cell_id_mismatch"),
        ("attempt", 2, "attempt_mismatch"),
        ("region", "us-east", "region_mismatch"),
        ("model", "mistral-7b", "model_mismatch"),
        ("question_id", "math_basic", "question_id_mismatch"),
        ("prompt_sha256", sha256_hex("What is 2+2?"), "prompt_sha256_mismatch"),
        ("temperature", 0.9, "temperature_mismatch"),
        ("max_tokens", 64, "max_tokens_mismatch"),
        ("job_token", "token-of-an-earlier-run", "job_token_mismatch"),
    ],
    ids=[
        "other-job",
        "other-cell",
        "other-attempt",
        "other-region",
        "other-model",
        "other-question",
        "other-prompt-digest",
        "other-temperature",
        "other-max-tokens",
        "earlier-creation-of-the-job",
    ],
)
def test_signed_but_mismatched_bodies_are_rejected(
    keys: dict[str, SigningKey],
    sent: SentAttempt,
    field: str,
    value: object,
    reason: str,
) -> None:
    """A valid signature is not enough: the body must answer what was sent."""
    body = body_for(sent)
    setattr(body, field, value)

    with pytest.raises(ReceiptRejected) as caught:
        verify(seal(body, keys["eu-west"]), sent, keys)

    assert caught.value.reason == reason


def test_prompt_other_than_sent_is_rejected(
    keys: dict[str, SigningKey], sent: SentAttempt
) -> None:
    """The digest field may be copied; the recorded prompt itself must match."""
    body = body_for(sent)
    body.prompt = "What is 2+2?"

    with pytest.raises(ReceiptRejected) as caught:
        verify(seal(body, keys["eu-west"]), sent, keys)

    assert caught.value.reason == "prompt_mismatch"


def test_output_digest_must_match_output(
    keys: dict[str, SigningKey], sent: SentAttempt
) -> None:
    body = body_for(sent)
    body.output_sha256 = sha256_hex("something else")

    with pytest.raises(ReceiptRejected) as caught:
        verify(seal(body, keys["eu-west"]), sent, keys)

    assert caught.value.reason == "output_digest_mismatch"


def test_key_files_round_trip_and_refuse_open_permissions(tmp_path: Path) -> None:
    """A private key readable by others is refused with the fix."""
    key = SigningKey.generate()
    path = tmp_path / "agent.key"
    public_path = key.write(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).key_id == key.key_id
    assert public_path.read_text().strip() == key.public.b64

    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        SigningKey.load(path)
