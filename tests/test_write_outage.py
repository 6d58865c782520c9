"""A file that cannot be written is told in a few lines: one when writes
start failing, a count at most once per interval, one when they succeed."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from beacon import write_outage
from beacon.write_outage import RETRY_MAX_SECONDS, SUMMARY_SECONDS, WriteOutage


def _disk_full(tmp_path: Path) -> sqlite3.Error:
    """The error SQLite gives for a full disk (`max_page_count` reached)."""
    db = sqlite3.connect(tmp_path / "full.db")
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("PRAGMA max_page_count=1")
    try:
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.Error as exc:
        return exc
    finally:
        db.close()
    raise AssertionError("the write did not fail")


def test_an_outage_is_logged_once_then_counted_then_ended(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(write_outage.time, "monotonic", lambda: now[0])
    outage = WriteOutage("test file", tmp_path / "f.db", "nothing is kept")
    heard: list[bool] = []
    outage.watch(heard.append)
    error = _disk_full(tmp_path)

    with caplog.at_level(logging.INFO, logger="beacon.write_outage"):
        for _ in range(100):
            outage.failed(error)
        now[0] += SUMMARY_SECONDS
        outage.failed(error, writes=5)
        outage.failed(error)
        outage.succeeded()
        outage.succeeded()

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "cannot write the test file" in lines[0]
    assert "the disk is full" in lines[0]
    assert "nothing is kept" in lines[0]
    assert "105 writes failed (104 in the last 30s)" in lines[1]
    assert "can be written again, after 106 failed writes" in lines[2]
    assert not [r for r in caplog.records if r.exc_info]
    assert heard == [False, True]
    assert outage.writable and outage.retry_in() == 0


def test_retries_wait_longer_each_time_up_to_a_bound(tmp_path: Path) -> None:
    outage = WriteOutage("test file", tmp_path / "f.db", "nothing is kept")
    error = _disk_full(tmp_path)
    waits = []
    for _ in range(12):
        outage.failed(error, writes=0)
        waits.append(outage.retry_in())
    assert waits[:3] == [0.5, 1.0, 2.0]
    assert waits == sorted(waits)
    assert waits[-1] == RETRY_MAX_SECONDS
