"""A finished job's analysis is computed once; a running job's every time."""

from __future__ import annotations

from beacon.v1 import job_pb2
from coordinator.analysis import AnalysisThresholds, analyze_result
from coordinator.analysis_cache import AnalysisCache
from tests.support.results import Cell, make_result, refused

US, EU = "us-east", "eu-west"
LLAMA = "llama3.2-1b"


def finished_result(job_id: str) -> job_pb2.JobResult:
    result = make_result(
        {(US, LLAMA, "q1", 0): Cell("Paris."), (EU, LLAMA, "q1", 0): refused()},
        regions=(US, EU),
        job_id=job_id,
    )
    result.created_at.FromSeconds(1_700_000_000)
    result.finished_at.FromSeconds(1_700_000_060)
    return result


async def test_a_finished_job_is_analysed_once_and_the_same_every_time() -> None:
    cache = AnalysisCache(AnalysisThresholds())
    result = finished_result("job-1")

    first = await cache.analysis_of(result, finished=True)
    again = await cache.analysis_of(result, finished=True)

    assert cache.computed == 1
    assert again == first == analyze_result(result, AnalysisThresholds())


async def test_a_running_job_is_analysed_on_every_read() -> None:
    cache = AnalysisCache(AnalysisThresholds())
    result = finished_result("job-1")
    result.status = job_pb2.JOB_STATUS_RUNNING

    await cache.analysis_of(result, finished=False)
    result.outcomes[1].status = job_pb2.CELL_STATUS_OPEN
    later = await cache.analysis_of(result, finished=False)

    assert cache.computed == 2
    assert later.pending_cells == 1


async def test_the_cache_keeps_only_the_most_recently_read_jobs() -> None:
    cache = AnalysisCache(AnalysisThresholds(), capacity=2)
    one, two, three = (finished_result(f"job-{i}") for i in range(3))

    for result in (one, two, one, three, one, two):
        await cache.analysis_of(result, finished=True)

    # one, two, three computed; two was dropped for three, then read again.
    assert cache.computed == 4
