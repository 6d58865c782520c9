"""The coordinator attaches its analysis to every result it serves, with the
thresholds of its own configuration."""

from __future__ import annotations

from pathlib import Path

from beacon.v1 import analysis_pb2, job_pb2
from coordinator.jobs import FINISHED
from tests.support.eventually import eventually
from tests.support.router_process import RunningRouter
from tests.support.servers import start_agent, start_coordinator

REGIONS = ("us-east", "eu-west")


async def test_result_carries_an_analysis_with_the_configured_thresholds(
    tmp_path: Path, router: RunningRouter
) -> None:
    agents = [await start_agent(tmp_path, region, router.url) for region in REGIONS]
    coordinator = await start_coordinator(
        tmp_path, agents, analysis={"divergence_similarity": 0.99}
    )
    try:
        spec = job_pb2.JobSpec(models=["llama3.2-1b"], regions=list(REGIONS))
        spec.questions.add(id="capital", text="What is the capital of France?")
        job, _, _ = await coordinator.jobs.submit(spec)

        async def finished() -> bool:
            return (await coordinator.jobs.job(job.job_id)).status in FINISHED

        await eventually(finished, what="job finished")
        result = await coordinator.jobs.result(job.job_id)
    finally:
        await coordinator.stop()
        for agent in agents:
            await agent.stop()

    analysis = result.analysis
    assert analysis.thresholds.divergence_similarity == 0.99
    (question,) = analysis.questions
    assert [r.region for r in question.regions] == list(REGIONS)
    # Offline answers differ per region (each names its region and digest),
    # so a 0.99 threshold flags them; the default would not.
    (pair,) = question.pairs
    assert 0.4 < pair.similarity < 0.99
    assert [f.kind for f in question.flags] == [analysis_pb2.FLAG_KIND_DIVERGENCE]
    assert analysis.accepted_cells == analysis.total_cells == 2
