"""Logging set-up for the command line and the servers: text or JSON lines.

Either way every line about a job or a cell carries its ids (see
`beacon.log_context`): as `key=value` after a text message (unless the
message already names it), as fields of a JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from beacon.log_context import ID_KEYS, IdsFilter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The usual one-line format, with the ids the message does not name."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # A message quotes what peers sent (a router's error body): a line
        # break or a terminal escape in it must not make a line of its own.
        message = record.message
        record.message = escaped_controls(message)
        try:
            line = super().formatMessage(record)
        finally:
            record.message = message
        extra = [
            f"{key}={getattr(record, key)}"
            for key in ID_KEYS
            if hasattr(record, key) and f"{key}=" not in message
        ]
        return f"{line} {' '.join(extra)}" if extra else line


def escaped_controls(text: str) -> str:
    """`text` with every control, format or separator character escaped
    (a newline as \\n, an escape as \\x1b, a bidi override as \\u202e)."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        ["asctime", "levelname", "name", "message"],
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """(Re)configure the root logger: one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format == "text" else json_formatter())
    handler.addFilter(IdsFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request at INFO; that is per-cell detail here. And
    # at DEBUG httpcore logs every header it sends and receives, raw: an
    # upstream's API key, or a router's echo of it, is not blanked there.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
