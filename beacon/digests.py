"""Content digests used in requests and receipts."""

from __future__ import annotations

import hashlib


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 encoding of `text`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
