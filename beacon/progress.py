"""Running a job through a coordinator with a live progress bar."""

from __future__ import annotations

from rich.console import Console

from beacon.client import CoordinatorClient
from beacon.render import progress_bar
from beacon.v1 import coordinator_service_pb2, job_pb2


def _detail(counts: job_pb2.JobCounts) -> str:
    return (
        f"ok {counts.completed}  failed {counts.failed}  "
        f"mismatch {counts.region_mismatch + counts.model_mismatch}  "
        f"timed out {counts.timed_out}"
    )


async def follow_events(
    events: object, console: Console, label: str
) -> job_pb2.JobResult:
    """Show progress from a RunJob or WatchJob stream; return its JobResult."""
    result: job_pb2.JobResult | None = None
    with progress_bar(console) as progress:
        task = progress.add_task(label, total=None, detail="")
        async for event in events:  # type: ignore[attr-defined]
            assert isinstance(event, coordinator_service_pb2.JobEvent)
            counts = event.counts
            progress.update(
                task,
                total=counts.total or None,
                completed=counts.total - counts.open,
                detail=_detail(counts),
            )
            if event.HasField("result"):
                result = event.result
    if result is None:
        raise RuntimeError("the coordinator ended the stream without a result")
    return result


async def run_job(
    address: str, spec: job_pb2.JobSpec, console: Console
) -> job_pb2.JobResult:
    async with CoordinatorClient(address) as client:
        return await follow_events(client.run(spec), console, "cells")


async def watch_job(address: str, job_id: str, console: Console) -> job_pb2.JobResult:
    async with CoordinatorClient(address) as client:
        return await follow_events(client.watch(job_id), console, job_id)
