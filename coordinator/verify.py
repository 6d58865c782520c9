"""Checking a receipt before it is accepted (DESIGN invariant 4).

A receipt is accepted only if its signature verifies, over the exact bytes
received, with a key pinned for the cell's region; it names the attempt that
was sent; every identifying field and the prompt digest equal what was sent;
and its output digest matches its output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from beacon.cells import Cell
from beacon.digests import sha256_hex
from beacon.signing import PublicKey
from beacon.v1 import receipt_pb2

logger = logging.getLogger(__name__)

# region -> key id -> pinned key
PinnedKeys = Mapping[str, Mapping[str, PublicKey]]


class ReceiptRejected(Exception):
    """Why a receipt was refused; `reason` is a stable code for metrics and logs."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SentAttempt:
    """What the coordinator sent for one attempt, to compare the receipt with."""

    cell: Cell
    attempt: int
    temperature: float
    max_tokens: int
    job_token: str


def open_receipt(
    receipt: receipt_pb2.Receipt, region: str, pinned: PinnedKeys
) -> receipt_pb2.ReceiptBody:
    """Verify the signature with the region's pinned key and decode the body."""
    region_keys = pinned.get(region, {})
    key = region_keys.get(receipt.key_id)
    if key is None:
        raise ReceiptRejected(
            "unknown_key",
            f"key {receipt.key_id!r} is not pinned for region {region}",
        )
    if not key.verify(receipt.signature, receipt.body):
        raise ReceiptRejected(
            "bad_signature", "signature does not verify over the body"
        )
    body = receipt_pb2.ReceiptBody()
    try:
        body.ParseFromString(receipt.body)
    except DecodeError as exc:
        raise ReceiptRejected("bad_body", f"body does not decode: {exc}") from exc
    return body


def check_body(body: receipt_pb2.ReceiptBody, sent: SentAttempt) -> None:
    """Compare a verified body with the attempt that was sent."""
    cell = sent.cell
    expected = {
        "job_id": cell.job_id,
        "cell_id": cell.cell_id,
        "attempt": sent.attempt,
        "region": cell.region,
        "model": cell.model,
        "question_id": cell.question_id,
        "sample": cell.sample,
        "prompt_sha256": cell.prompt_sha256,
        "temperature": sent.temperature,
        "max_tokens": sent.max_tokens,
        "job_token": sent.job_token,
    }
    for name, want in expected.items():
        got = getattr(body, name)
        if got != want:
            raise ReceiptRejected(
                f"{name}_mismatch", f"receipt says {name}={got!r}, sent {want!r}"
            )
    if sha256_hex(body.prompt) != cell.prompt_sha256:
        raise ReceiptRejected(
            "prompt_mismatch", "the recorded prompt is not the prompt that was sent"
        )
    if sha256_hex(body.output) != body.output_sha256:
        raise ReceiptRejected(
            "output_digest_mismatch", "output_sha256 does not match the output"
        )
