"""Quoting a reply body (or a server's text) in a one-line message.

A router's HTML error page spans many lines; quoted as it is, it breaks a
log line and a receipt's failure message in pieces. Runs of whitespace,
newlines included, become one space before the text is cut, so the cut keeps
as much of the words as it can. Secrets are blanked by the caller first.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")


def one_line(text: str, limit: int) -> str:
    """`text` with each run of whitespace one space, cut to `limit` chars."""
    words: list[str] = []
    size = 0
    # Stops at the limit: a 16 MiB body is not split whole for 200 characters.
    for match in _WORD.finditer(text):
        words.append(match.group())
        size += len(words[-1]) + 1
        if size > limit:
            break
    return " ".join(words)[:limit]


def body_line(body: bytes, limit: int) -> str:
    """The start of a body, decoded as UTF-8 (bad bytes replaced), one line."""
    return one_line(body.decode("utf-8", errors="replace"), limit)
