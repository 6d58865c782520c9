"""A large job's cells share their ids instead of holding copies: memory in
the coordinator grows with the number of cells only by what each must own."""

from __future__ import annotations

from pathlib import Path

from beacon.cells import expand_cells
from beacon.jobspec import normalize_spec
from beacon.v1 import job_pb2
from coordinator.sqlite_store import SqliteJobStore


def spec() -> job_pb2.JobSpec:
    message = job_pb2.JobSpec(
        job_id="shared-1", models=["m1", "m2"], regions=["us-east", "eu-west"]
    )
    for index in range(3):
        message.questions.add(id=f"q{index}", text=f"Question {index}?")
    return normalize_spec(message)


def test_expanded_cells_share_the_job_region_model_and_question_ids() -> None:
    cells = list(expand_cells(spec()))

    assert len({id(c.job_id) for c in cells}) == 1
    assert len({id(c.region) for c in cells}) == 2
    assert len({id(c.model) for c in cells}) == 2
    assert len({id(c.question_id) for c in cells}) == 3
    assert len({c.cell_id for c in cells}) == 12


async def test_stored_cell_records_share_their_region_model_and_question_ids(
    tmp_path: Path,
) -> None:
    job = spec()
    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        await store.create_job(job, "digest", "token", list(expand_cells(job)), 1.0)

        records = await store.cells(job.job_id)
    finally:
        await store.close()

    assert len(records) == 12
    assert len({id(r.region) for r in records}) == 2
    assert len({id(r.model) for r in records}) == 2
    assert len({id(r.question_id) for r in records}) == 3
