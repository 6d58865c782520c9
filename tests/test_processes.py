"""Child processes that `beacon local` and the end-to-end tests start."""

from __future__ import annotations

import importlib.abc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from beacon import entry
from beacon.entry import INTERRUPTED
from beacon.local import LocalDeployment, scrape_metrics
from beacon.processes import ProcessGroup
from tests.support.commands import BIN, COMMAND_TIMEOUT
from tests.support.openai_server import closed_loopback_url

EXAMPLE = Path(__file__).parent.parent / "examples" / "cross-region-minimal.yaml"


def started_group(tmp_path: Path, count: int) -> ProcessGroup:
    group = ProcessGroup(tmp_path / "run")
    for index in range(count):
        group.start(f"child-{index}", ["tests.support.slow_to_stop"]).wait_ready()
    return group


def interrupt_self_after(seconds: float) -> None:
    """SIGINT to this process, as a Ctrl-C in its terminal sends."""
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT)).start()


def test_a_ctrl_c_while_stopping_still_stops_every_child(tmp_path: Path) -> None:
    group = started_group(tmp_path, 3)
    children = [m.process for m in group.processes]

    interrupt_self_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        group.stop_all()

    assert [child.poll() for child in children] == [0, 0, 0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_kills_the_children_left(tmp_path: Path) -> None:
    group = started_group(tmp_path, 3)
    children = [m.process for m in group.processes]

    interrupt_self_after(0.1)
    interrupt_self_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        group.stop_all()

    # The first started was still waiting for its turn to stop.
    assert children[0].poll() == -signal.SIGKILL
    assert all(child.poll() is not None for child in children)


@pytest.mark.parametrize("after_seconds", [0.05, 0.3, 1.5])
def test_ctrl_c_ends_beacon_local_quietly_and_leaves_no_server(
    tmp_path: Path, after_seconds: float
) -> None:
    """At any moment: while the command loads, while it starts the servers,
    or while the job runs."""
    state = tmp_path / "state"
    command = subprocess.Popen(
        [
            str(BIN / "beacon"),
            "local",
            "--job",
            str(EXAMPLE),
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_seconds)
    command.send_signal(signal.SIGINT)
    _, err = command.communicate(timeout=COMMAND_TIMEOUT)

    assert command.returncode in (INTERRUPTED, 0), err
    assert "Traceback" not in err
    assert not _servers_of(state)


def test_a_ctrl_c_while_the_command_loads_ends_it_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *_: object) -> None:
            if name == "beacon.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "beacon.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert entry.main() == INTERRUPTED


def _servers_of(state: Path) -> list[str]:
    """Command lines of live processes started for `state`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(state) in line:
            found.append(line)
    return found


def test_a_server_that_died_is_named_and_its_metrics_page_is_skipped(
    tmp_path: Path,
) -> None:
    """A child killed during `beacon local`'s job: the result is still
    printed and saved; what is lost is named, not raised."""
    group = started_group(tmp_path, 2)
    dead, alive = group.processes
    dead.process.kill()
    dead.process.wait()
    deployment = LocalDeployment(
        "127.0.0.1:1",
        "http://127.0.0.1:1",
        tmp_path / "calls.jsonl",
        "token",
        metrics={"router": closed_loopback_url() + "/metrics"},
    )
    try:
        missing = scrape_metrics(deployment, tmp_path / "metrics")
        assert group.exited() == [dead]
    finally:
        group.stop_all()

    assert len(missing) == 1 and missing[0].startswith("router: ")
    assert alive.process.returncode == 0
