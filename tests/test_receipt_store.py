"""The agent's receipts file: what is kept is found again after a restart."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from region_agent.receipt_store import CHECKPOINT_WAL_BYTES, ReceiptStore
from tests.support.eventually import eventually

DAY = 86_400.0
KEY = ("job-1", "cell-1", 1, "shape-digest")
OTHER = ("job-1", "cell-2", 1, "shape-digest")


async def test_a_kept_receipt_is_found_in_the_same_run_and_after_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    assert await store.get(KEY) is None
    await store.put(KEY, b"signed bytes")
    assert await store.get(KEY) == b"signed bytes"
    assert await store.get(OTHER) is None
    await store.close()

    reopened = await ReceiptStore.open(path, DAY)
    try:
        assert await reopened.get(KEY) == b"signed bytes"
        assert await reopened.get(OTHER) is None
    finally:
        await reopened.close()


async def test_the_file_decides_when_the_index_says_maybe(tmp_path: Path) -> None:
    """The in-memory index only rules keys out: a key it lists whose row is
    gone (as a hash collision would look) is read, and is not there."""
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    await store.put(KEY, b"signed bytes")
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM receipts")
    try:
        assert await store.get(KEY) is None
    finally:
        await store.close()


async def test_concurrent_puts_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    keys = [("job-1", f"cell-{n}", 1, "s") for n in range(50)]
    await asyncio.gather(*(store.put(key, key[1].encode()) for key in keys))
    await store.close()
    reopened = await ReceiptStore.open(path, DAY)
    try:
        for key in keys:
            assert await reopened.get(key) == key[1].encode()
    finally:
        await reopened.close()


async def test_receipts_past_their_retention_are_dropped_on_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    await store.put(KEY, b"old")
    await store.close()
    reopened = await ReceiptStore.open(path, -1.0)
    try:
        assert await reopened.get(KEY) is None
    finally:
        await reopened.close()


async def test_the_write_ahead_log_is_checkpointed_once_per_wal_of_receipts(
    tmp_path: Path,
) -> None:
    """The loop's connection never checkpoints (that would fsync on the
    loop); the store's thread does, so the WAL does not grow without end.
    And it does so once per WAL's worth of receipts: SQLite leaves a
    checkpointed WAL file at its largest size, so a store that judged the
    WAL by its file's size checkpointed (and fsynced) after every commit once
    the file had first grown that large."""
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    receipt = b"r" * 2048
    try:
        for n in range(3000):
            await store.put(("job-1", f"cell-{n}", 1, "s"), receipt)
        wal = path.with_name(path.name + "-wal")
        # Each receipt here is a commit of its own, some 20 KiB of WAL: 60 MiB
        # in all without checkpoints, about 15 WALs' worth.
        assert wal.stat().st_size < 3 * CHECKPOINT_WAL_BYTES
        assert 5 <= store.checkpoints <= 40
        assert await store.get(("job-1", "cell-2999", 1, "s")) == receipt
    finally:
        await store.close()


async def test_receipts_are_written_while_a_checkpoint_copies_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint fsyncs; a receipt held back for all of it would be sent
    that much later. Only its short last step pauses writes."""
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    copying = threading.Event()
    let_go = threading.Event()
    steps: list[int] = []
    checkpoint = store._checkpoint

    def held_checkpoint() -> None:
        steps.append(1)
        if len(steps) == 1:
            copying.set()
            let_go.wait(30)
        checkpoint()

    monkeypatch.setattr(store, "_checkpoint", held_checkpoint)
    receipt = b"r" * 2048
    try:
        n = 0
        while store.checkpoints == 0:
            await store.put(("job-1", f"cell-{n}", 1, "s"), receipt)
            n += 1
        assert await asyncio.to_thread(copying.wait, 30)
        # Held in the first step: the put still commits. Were writes paused
        # for the whole checkpoint, it would wait for let_go, which is only
        # set after it.
        done, _ = await asyncio.wait(
            {asyncio.ensure_future(store.put(("job-1", "during", 1, "s"), receipt))},
            timeout=30,
        )
        let_go.set()
        assert done, "a receipt waited for the checkpoint's first step"
        assert await store.get(("job-1", "during", 1, "s")) == receipt
        for _ in range(3000):
            if len(steps) == 2:
                break
            await asyncio.sleep(0.01)
        # ...and its last step ran, with writes paused.
        assert len(steps) == 2
    finally:
        let_go.set()
        await store.close()


async def test_a_file_that_opens_but_cannot_be_written_is_refused_in_a_line(
    tmp_path: Path,
) -> None:
    """Opening drops receipts past their retention; a file that refuses the
    write (read-only, say; here a trigger) is reported as not usable."""
    path = tmp_path / "receipts.db"
    store = await ReceiptStore.open(path, DAY)
    await store.put(KEY, b"old")
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER keep BEFORE DELETE ON receipts "
            "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
        )
    with pytest.raises(OSError, match=r"cannot open the receipts file .*readonly"):
        await ReceiptStore.open(path, -1.0)


async def test_a_wal_held_by_another_reader_is_reported_and_shrinks_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While another process reads the file (a sqlite3 shell, a backup), no
    checkpoint can restart the WAL: the operator is told, once per doubling,
    and the WAL is cut back once the reader has gone."""
    path = tmp_path / "receipts.db"
    wal = path.with_name(path.name + "-wal")
    store = await ReceiptStore.open(path, DAY)
    receipt = b"r" * 64 * 1024
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM receipts").fetchone()
        with caplog.at_level(logging.WARNING, logger="region_agent.receipt_store"):
            for n in range(600):
                await store.put(("job-1", f"cell-{n}", 1, "s"), receipt)
        held = wal.stat().st_size
        reader.execute("COMMIT")
        reader.close()
        more = iter(range(600, 2000))

        async def cut_back() -> bool:
            # SQLite restarts a checkpointed WAL at the next write.
            await store.put(("job-1", f"cell-{next(more)}", 1, "s"), receipt)
            return wal.stat().st_size < CHECKPOINT_WAL_BYTES

        await eventually(cut_back, what="the WAL cut back")
    finally:
        await store.close()

    warnings = [r.getMessage() for r in caplog.records if "cannot be" in r.getMessage()]
    # About 40 MiB of WAL: warned at 16 and at 32 MiB.
    assert held > 8 * CHECKPOINT_WAL_BYTES
    assert len(warnings) == 2
    assert "another process reads the file" in warnings[0]


async def test_a_large_wal_left_behind_is_emptied_on_open(tmp_path: Path) -> None:
    path = tmp_path / "receipts.db"
    wal = path.with_name(path.name + "-wal")
    store = await ReceiptStore.open(path, DAY)
    for n in range(40):
        await store.put(("job-1", f"cell-{n}", 1, "s"), b"r" * 64 * 1024)
    # Closed as a killed agent leaves it: with its WAL in place.
    left_behind = sqlite3.connect(path)
    left_behind.execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert wal.stat().st_size > 1024 * 1024
    await store.close()
    left_behind.close()

    reopened = await ReceiptStore.open(path, -1.0)
    try:
        assert wal.stat().st_size == 0
        assert await reopened.get(("job-1", "cell-0", 1, "s")) is None
    finally:
        await reopened.close()
