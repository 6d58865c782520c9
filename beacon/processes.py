"""Starting Beacon's servers as child processes and stopping them cleanly.

Used by `beacon local` and by the end-to-end tests, which run the parts as
separate processes the way an operator does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class ProcessStartError(RuntimeError):
    """A server that exited or never became ready; the message quotes its log."""


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path
    address: str = ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.address = self.ready_file.read_text(encoding="utf-8").strip()
                if self.address:
                    return self.address
            if self.process.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {self.process.returncode}:\n"
                    + self.log_tail()
                )
            time.sleep(0.05)
        raise ProcessStartError(
            f"{self.name} was not ready after {timeout:.0f}s:\n" + self.log_tail()
        )

    def announced(self, marker: str) -> str:
        """The word after the last `marker` in the log, e.g. a URL a server
        printed once it picked a port; raises ProcessStartError if absent."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        for line in reversed(text.splitlines()):
            _, found, rest = line.partition(f" {marker} ")
            if found and rest.split():
                return rest.split()[0]
        raise ProcessStartError(f"{self.name} did not print {marker!r}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            self.process.kill()
            return self.process.wait()


@dataclass
class ProcessGroup:
    """Child processes started in order and stopped in reverse order."""

    run_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """Start `python -m <args>` with a ready file; does not wait."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ready_file = self.run_dir / f"{name}.ready"
        ready_file.unlink(missing_ok=True)
        log_path = self.run_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args, "--ready-file", str(ready_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        managed = ManagedProcess(name, process, log_path, ready_file)
        self.processes.append(managed)
        return managed

    def exited(self) -> list[ManagedProcess]:
        """The children that are no longer running."""
        return [m for m in self.processes if m.process.poll() is not None]

    def stop_all(self) -> None:
        """Stop every child, the last started first.

        A Ctrl-C meanwhile would leave the rest running: it is held until
        all are stopped, then raised; a second one kills those left at once.
        """
        with _interrupts_held(self._kill_all):
            for managed in reversed(self.processes):
                managed.stop()
        self.processes.clear()

    def _kill_all(self) -> None:
        for managed in self.processes:
            if managed.process.poll() is None:
                managed.process.kill()


@contextlib.contextmanager
def _interrupts_held(on_second: Callable[[], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread receives signals and may set their handlers.
        yield
        return
    received = 0

    def hold(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received == 2:
            logger.warning("interrupted again: killing the processes left")
            on_second()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
