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


MODELS = ["m1", "m2", "m3", "m4"]


async def _traced_bytes_per_open_cell(tmp_path: Path, questions: int) -> float:
    """Python memory a running job holds per open cell, with its one region's
    agent unreachable so that every cell stays open and queued."""
    import asyncio
    import gc
    import tracemalloc

    from beacon.signing import SigningKey
    from chaos.deployment import free_port
    from coordinator.config import CoordinatorConfig
    from coordinator.jobs import JobManager

    config = CoordinatorConfig.model_validate(
        {
            "store": tmp_path / f"jobs-{questions}.db",
            "regions": {
                "us-east": {
                    "agents": [
                        {
                            "address": f"127.0.0.1:{free_port()}",
                            "public_key": SigningKey.generate().public.b64,
                        }
                    ]
                }
            },
        }
    )
    message = job_pb2.JobSpec(
        job_id=f"held-{questions}", models=MODELS, regions=["us-east"]
    )
    for index in range(questions):
        message.questions.add(id=f"q{index:05d}", text=f"Question {index}?")
    store = await SqliteJobStore.open(config.store)
    jobs = JobManager(config, store)
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await jobs.submit(message)
        for _ in range(500):
            if (await jobs.job(message.job_id)).status == job_pb2.JOB_STATUS_RUNNING:
                break
            await asyncio.sleep(0.01)
        # The region's queue is filled once the status is stored.
        await asyncio.sleep(0.3)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        await jobs.shutdown(0)
        await store.close()
    return held / (len(MODELS) * questions)


async def test_a_running_job_holds_little_per_open_cell(tmp_path: Path) -> None:
    """What a running job keeps for each open cell: the cell, its open state
    and its place in the region's queue, and nothing the store read to find
    them. Measured as the slope between two sizes, so fixed costs cancel."""
    small = await _traced_bytes_per_open_cell(tmp_path, 500)
    large = await _traced_bytes_per_open_cell(tmp_path, 5_000)
    slope = (large * 5_000 - small * 500) / 4_500
    # About 500 bytes; 595 when the ids the store read were kept all run.
    assert slope < 540, f"{slope:.0f} bytes per open cell"
