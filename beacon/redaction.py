"""Blanking secrets (an upstream's API key) out of text a server echoes.

A server may quote the credentials it refuses, and its text is then cut,
copied into receipts and logged. Scrubbing the whole of what arrived, before
anything is cut from it, leaves no whole secret to cut in two; a piece of a
secret that arrived already cut (a server that shortens its own message, a
body that ends early) is blanked as well, as is a secret written with JSON
escapes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import AnyStr, Final

from beacon.one_line import one_line

logger = logging.getLogger(__name__)

REDACTED: Final = "[redacted]"
# A run of this many characters of a secret is taken for a piece of it; a
# shorter secret is blanked only whole.
FRAGMENT_CHARS: Final = 8


class Redactor:
    """Blanks every known secret, whole or in pieces, out of text or bytes."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.add(secret)
                # What a JSON encoder writes for it, quotes left off.
                forms.add(json.dumps(secret)[1:-1])
        self._pieces = sorted({piece for form in forms for piece in _pieces(form)})
        self._byte_pieces = [piece.encode("utf-8") for piece in self._pieces]

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def text(self, value: str) -> str:
        """`value` with every secret, and every piece of one, blanked."""
        if not self._pieces:
            return value
        return _blank(value, self._pieces, REDACTED)

    def data(self, value: bytes) -> bytes:
        """The same for bytes, as received before any decoding."""
        if not self._pieces:
            return value
        return _blank(value, self._byte_pieces, REDACTED.encode())

    def clip(self, value: str, limit: int) -> str:
        """The first `limit` characters of `value` as one line, cut after
        blanking (a quoted server text is made one line for messages)."""
        return one_line(self.text(value), limit)


def _pieces(secret: str) -> set[str]:
    size = min(FRAGMENT_CHARS, len(secret))
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _blank(value: AnyStr, pieces: list[AnyStr], mark: AnyStr) -> AnyStr:
    spans: list[tuple[int, int]] = []
    for piece in pieces:
        start = value.find(piece)
        while start != -1:
            spans.append((start, start + len(piece)))
            start = value.find(piece, start + 1)
    if not spans:
        return value
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    parts: list[AnyStr] = []
    done = 0
    for start, stop in merged:
        parts += [value[done:start], mark]
        done = stop
    parts.append(value[done:])
    return value[:0].join(parts)
