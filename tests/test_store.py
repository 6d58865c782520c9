"""The SQLite job store: what it refuses keeps outcomes honest."""

from __future__ import annotations

from pathlib import Path

from beacon.cells import expand_cells
from beacon.jobspec import normalize_spec
from beacon.v1 import job_pb2, receipt_pb2
from coordinator.sqlite_store import SqliteJobStore
from coordinator.store import AttemptEnd, CellFinal


def spec() -> job_pb2.JobSpec:
    message = job_pb2.JobSpec(job_id="store-1", models=["m"], regions=["us-east"])
    message.questions.add(id="q", text="Question?")
    return normalize_spec(message)


async def test_an_outcome_needs_an_attempt_that_ends_with_it(tmp_path: Path) -> None:
    """An attempt already ended (timed out) cannot carry a final outcome later."""
    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        job = spec()
        cell = next(expand_cells(job))
        await store.create_job(job, "digest", "token", [cell], 1.0)
        await store.record_attempt_sent(job.job_id, cell.cell_id, 1, "agent", 2.0)
        timed_out = AttemptEnd(cell.cell_id, 1, 3.0, None, b"", accepted=False)
        final = CellFinal(
            cell.cell_id,
            job_pb2.CELL_STATUS_COMPLETED,
            receipt_pb2.CLASSIFICATION_ANSWERED,
            "",
            1,
        )

        assert await store.record_attempt_end(job.job_id, timed_out, None)
        late = AttemptEnd(cell.cell_id, 1, 4.0, b"receipt", None, accepted=True)
        assert not await store.record_attempt_end(job.job_id, late, final)

        (stored,) = await store.cells(job.job_id)
        assert stored.status == job_pb2.CELL_STATUS_OPEN
    finally:
        await store.close()


async def test_a_finished_status_is_never_overwritten(tmp_path: Path) -> None:
    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        job = spec()
        await store.create_job(job, "digest", "token", list(expand_cells(job)), 1.0)
        await store.set_job_status(job.job_id, job_pb2.JOB_STATUS_CANCELLED, 2.0)
        await store.set_job_status(job.job_id, job_pb2.JOB_STATUS_COMPLETED, 3.0)

        stored = await store.get_job(job.job_id)
        assert stored is not None
        assert stored.status == job_pb2.JOB_STATUS_CANCELLED
        assert stored.token == "token"
    finally:
        await store.close()


async def test_resume_points_name_only_the_cells_that_moved(tmp_path: Path) -> None:
    """A cell never sent is not listed (it starts at attempt 1); one sent and
    unanswered is sent again under its number; one whose attempt failed goes
    on with the next; one ended is not resumed."""
    message = job_pb2.JobSpec(job_id="resume-1", models=["m"], regions=["us-east"])
    for name in ("untouched", "unanswered", "failed", "ended"):
        message.questions.add(id=name, text=f"{name}?")
    job = normalize_spec(message)
    cells = {cell.question_id: cell for cell in expand_cells(job)}
    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        await store.create_job(job, "digest", "token", list(cells.values()), 1.0)
        for name in ("unanswered", "failed", "ended"):
            await store.record_attempt_sent(
                job.job_id, cells[name].cell_id, 1, "agent", 2.0
            )
        failed = AttemptEnd(cells["failed"].cell_id, 1, 3.0, None, b"", False)
        await store.record_attempt_end(job.job_id, failed, None)
        answered = AttemptEnd(cells["ended"].cell_id, 1, 3.0, b"receipt", None, True)
        final = CellFinal(
            cells["ended"].cell_id,
            job_pb2.CELL_STATUS_COMPLETED,
            receipt_pb2.CLASSIFICATION_ANSWERED,
            "",
            1,
        )
        await store.record_attempt_end(job.job_id, answered, final)

        resume = await store.resume_points(job.job_id)
    finally:
        await store.close()

    assert resume.ended == {cells["ended"].cell_id}
    assert resume.next_attempts == {
        cells["unanswered"].cell_id: 1,
        cells["failed"].cell_id: 2,
    }
    assert sorted((status, cells) for status, _, cells in resume.tally) == [
        (job_pb2.CELL_STATUS_OPEN, 3),
        (job_pb2.CELL_STATUS_COMPLETED, 1),
    ]
