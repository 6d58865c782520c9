"""Logging set-up for the command line and the servers."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO; that is per-cell detail here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
