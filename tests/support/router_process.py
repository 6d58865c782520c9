"""Running the local router as a real subprocess, for tests of any part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RunningRouter:
    """A router subprocess that is listening at `url`."""

    url: str
    call_log: Path
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def start_router(
    tmp_path: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[RunningRouter]:
    """Start `python -m local_router --port 0` and yield once it is listening.

    `extra_args` are further router flags; `env` is added to this process's
    environment. The router gets its own directory under `tmp_path` for its
    ready file, call log and output, so several may run in one test.
    """
    workdir = Path(tempfile.mkdtemp(prefix="router-", dir=tmp_path))
    ready_file = workdir / "ready"
    call_log = workdir / "calls.jsonl"
    stdout_path = workdir / "stdout.txt"
    stderr_path = workdir / "stderr.txt"
    command = [
        sys.executable,
        "-m",
        "local_router",
        "--port",
        "0",
        "--ready-file",
        str(ready_file),
        "--call-log",
        str(call_log),
        *extra_args,
    ]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=stderr,
        )
    try:
        url = _wait_for_ready(process, ready_file, stderr_path, ready_timeout)
        yield RunningRouter(url, call_log, process, stdout_path, stderr_path)
    finally:
        stop_process(process)


def stop_process(
    process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS
) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


def add_fault_rules(router_url: str, *rules: dict[str, Any]) -> None:
    """Queue fault rules at a router started with `--fault-control`."""
    reply = httpx.post(
        f"{router_url}/faults", json={"rules": list(rules)}, trust_env=False
    )
    reply.raise_for_status()


def pending_fault_rules(router_url: str) -> list[dict[str, Any]]:
    """The rules still waiting for calls (each rule's count goes down per call)."""
    rules: list[dict[str, Any]] = (
        httpx.get(f"{router_url}/faults", trust_env=False).raise_for_status().json()
    )
    return rules


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The router's call log, one dict per /inference call (empty if none yet)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _wait_for_ready(
    process: subprocess.Popen[bytes],
    ready_file: Path,
    stderr_path: Path,
    timeout: float,
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready_file.exists():
            return ready_file.read_text(encoding="utf-8").strip()
        if process.poll() is not None:
            raise RuntimeError(
                f"router exited with {process.returncode} before it was ready:\n"
                + stderr_path.read_text(encoding="utf-8", errors="replace")
            )
        time.sleep(_POLL_SECONDS)
    raise RuntimeError(
        f"router not ready within {timeout:g} s:\n"
        + stderr_path.read_text(encoding="utf-8", errors="replace")
    )
