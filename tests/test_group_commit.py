"""Group commit: writes waiting together share one transaction, each is
undone alone when it fails, and none returns before it is committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.group_commit import GroupCommit


@pytest.fixture
def store_thread() -> Iterator[ThreadPoolExecutor]:
    thread = ThreadPoolExecutor(max_workers=1)
    yield thread
    thread.shutdown(wait=True)


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, text TEXT)")
    return db


def insert(row: int, text: str = "x") -> object:
    def write(db: sqlite3.Connection) -> int:
        return db.execute("INSERT INTO rows VALUES (?, ?)", (row, text)).rowcount

    return write


async def hold(thread: ThreadPoolExecutor) -> threading.Event:
    """Keep the store thread busy until the returned event is set."""
    release = threading.Event()
    started = threading.Event()

    def busy() -> None:
        started.set()
        release.wait(10)

    thread.submit(busy)
    await asyncio.to_thread(started.wait, 10)
    return release


@dataclass
class Store:
    path: Path
    db: sqlite3.Connection
    commits: GroupCommit


@pytest.fixture
def store(tmp_path: Path, store_thread: ThreadPoolExecutor) -> Store:
    path = tmp_path / "store.db"
    db = connect(path)
    return Store(path, db, GroupCommit(store_thread.submit, lambda: db))


def committed_rows(path: Path) -> list[int]:
    reader = sqlite3.connect(path)
    try:
        return [r[0] for r in reader.execute("SELECT id FROM rows ORDER BY id")]
    finally:
        reader.close()


async def test_writes_waiting_together_share_one_commit(
    store: Store, store_thread: ThreadPoolExecutor
) -> None:
    release = await hold(store_thread)

    writes = [asyncio.create_task(store.commits.write(insert(n))) for n in range(50)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*writes)

    assert results == [1] * 50
    assert store.commits.commits == 1
    assert committed_rows(store.path) == list(range(50))


async def test_a_failing_write_is_undone_alone_and_only_its_caller_sees_it(
    store: Store, store_thread: ThreadPoolExecutor
) -> None:
    commits = store.commits
    release = await hold(store_thread)

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO rows VALUES (100, 'half')")
        db.execute("INSERT INTO rows VALUES (1, 'clash')")

    first = asyncio.create_task(commits.write(insert(1)))
    failing = asyncio.create_task(commits.write(half_then_fail))
    last = asyncio.create_task(commits.write(insert(2)))
    await asyncio.sleep(0)
    release.set()

    assert await first == 1
    with pytest.raises(sqlite3.IntegrityError):
        await failing
    assert await last == 1
    assert committed_rows(store.path) == [1, 2]


async def test_a_write_returns_only_once_another_connection_can_read_it(
    store: Store,
) -> None:
    for row in range(5):
        await store.commits.write(insert(row))
        assert committed_rows(store.path)[-1] == row


async def test_a_failed_commit_fails_every_write_of_the_batch(store: Store) -> None:
    """Nothing is reported written when its transaction could not begin."""
    # Another connection holds the write lock, so BEGIN IMMEDIATE fails.
    blocker = connect(store.path)
    blocker.execute("PRAGMA busy_timeout = 0")
    store.db.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError):
            await store.commits.write(insert(1))
    finally:
        blocker.execute("ROLLBACK")
    assert await store.commits.write(insert(2)) == 1
    assert committed_rows(store.path) == [2]


async def test_writes_after_the_store_thread_stopped_fail_at_once(
    tmp_path: Path,
) -> None:
    thread = ThreadPoolExecutor(max_workers=1)
    db = connect(tmp_path / "store.db")
    commits = GroupCommit(thread.submit, lambda: db)
    thread.shutdown(wait=True)

    with pytest.raises(RuntimeError):
        await asyncio.wait_for(commits.write(insert(1)), 5)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(commits.write(insert(2)), 5)


async def test_a_full_disk_fails_every_write_of_the_batch_saying_so(
    store: Store, store_thread: ThreadPoolExecutor
) -> None:
    """On SQLITE_FULL, SQLite may roll the whole transaction back: the writes
    before the failing one are undone too, and all fail with that error
    rather than with a missing savepoint. (`max_page_count` fails a write
    exactly as a full disk does.)"""
    store.db.execute("VACUUM")
    store.db.execute("PRAGMA max_page_count=1")
    release = await hold(store_thread)

    first = asyncio.create_task(store.commits.write(insert(1)))
    too_big = asyncio.create_task(store.commits.write(insert(2, "x" * 50_000)))
    last = asyncio.create_task(store.commits.write(insert(3)))
    await asyncio.sleep(0)
    release.set()

    for write in (first, too_big, last):
        with pytest.raises(sqlite3.Error) as failed:
            await write
        assert failed.value.sqlite_errorname == "SQLITE_FULL"
    assert committed_rows(store.path) == []
