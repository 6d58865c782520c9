"""Whether a file can be written, told in a few log lines instead of one
traceback per failed write.

A full disk makes every write fail the same way: the first failure is
logged once with what failed and what to do, further failures at most once
per interval with a count, and the first success after them once. Listeners
hear each change, so a server can report itself unavailable while it lasts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

SUMMARY_SECONDS = 30.0
# Waits between tries while writes fail: doubling from the first to the most.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


def describe_write_error(error: BaseException) -> str:
    """What went wrong, in words an operator acts on."""
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        return f"the disk is full ({name}: {error})"
    if isinstance(error, sqlite3.Error) and name:
        return f"{name}: {error}"
    return f"{type(error).__name__}: {error}"


class WriteOutage:
    def __init__(self, what: str, path: Path | str, consequence: str) -> None:
        self._what = what
        self._path = path
        # What the service does meanwhile, said in the first line.
        self._consequence = consequence
        self._listeners: list[Callable[[bool], None]] = []
        self.writable = True
        # Failed writes since the outage began, and since the last summary.
        self.failures = 0
        self._unsummarised = 0
        # Failed tries (a write, or a check that wrote nothing of value).
        self._tries = 0
        self._began = 0.0
        self._summarised = 0.0

    def watch(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(writable)` whenever writability changes."""
        self._listeners.append(listener)

    def retry_in(self) -> float:
        """How long to wait before the next try; 0 while writes succeed."""
        if self.writable:
            return 0.0
        doublings = min(self._tries - 1, 16)
        return min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * (1 << doublings))

    def failed(self, error: BaseException, writes: int = 1) -> None:
        """`writes` failed with `error` (0 for a check that held no data)."""
        now = time.monotonic()
        self.failures += writes
        self._tries += 1
        if self.writable:
            self.writable = False
            self._began = self._summarised = now
            self._unsummarised = 0
            logger.error(
                "cannot write the %s %s: %s; %s. Free space on its disk (or fix "
                "the error); this is retried until a write succeeds",
                self._what,
                self._path,
                describe_write_error(error),
                self._consequence,
            )
            self._tell(False)
            return
        self._unsummarised += writes
        if now - self._summarised >= SUMMARY_SECONDS:
            logger.error(
                "still cannot write the %s %s after %.0fs: %d writes failed "
                "(%d in the last %.0fs); last error: %s",
                self._what,
                self._path,
                now - self._began,
                self.failures,
                self._unsummarised,
                now - self._summarised,
                describe_write_error(error),
            )
            self._summarised = now
            self._unsummarised = 0

    def succeeded(self) -> None:
        if self.writable:
            return
        logger.warning(
            "the %s %s can be written again, after %d failed writes over %.0fs",
            self._what,
            self._path,
            self.failures,
            time.monotonic() - self._began,
        )
        self.writable = True
        self.failures = 0
        self._tries = 0
        self._tell(True)

    def _tell(self, writable: bool) -> None:
        for listener in self._listeners:
            listener(writable)
