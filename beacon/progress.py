"""Running a job through a coordinator with a live progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from rich.console import Console

from beacon.client import CoordinatorClient, CoordinatorError, Endpoint
from beacon.render import progress_bar
from beacon.v1 import coordinator_service_pb2, job_pb2


def _detail(counts: job_pb2.JobCounts) -> str:
    return (
        f"ok {counts.completed}  failed {counts.failed}  "
        f"mismatch {counts.region_mismatch + counts.model_mismatch}  "
        f"timed out {counts.timed_out}"
    )


# `beacon watch` calls a coordinator that went away again for this long.
DEFAULT_RECONNECT_SECONDS = 60.0
FIRST_RECONNECT_DELAY_SECONDS = 0.5
MAX_RECONNECT_DELAY_SECONDS = 5.0
# What a restarting or stopping coordinator answers.
RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


class StreamBroken(Exception):
    """The progress stream ended early; the job itself goes on."""


async def follow_events(
    events: AsyncIterator[coordinator_service_pb2.JobEvent],
    console: Console,
    label: str,
) -> job_pb2.JobResult:
    """Show progress from a RunJob or WatchJob stream; return its JobResult."""
    result: job_pb2.JobResult | None = None
    job_id = ""
    with progress_bar(console) as progress:
        task = progress.add_task(label, total=None, detail="")
        try:
            async for event in events:
                if not job_id:
                    job_id = event.job_id
                    console.print(f"job {job_id}", markup=False, highlight=False)
                counts = event.counts
                progress.update(
                    task,
                    total=counts.total or None,
                    completed=counts.total - counts.open,
                    detail=_detail(counts),
                )
                if event.HasField("result"):
                    result = event.result
        except CoordinatorError as exc:
            if not job_id:
                raise
            raise StreamBroken(
                f"{exc}\nthe job {job_id} is not lost: `beacon watch {job_id}` "
                "follows it again once the coordinator answers"
            ) from exc
    if result is None:
        raise StreamBroken(f"the coordinator ended the stream of {job_id} early")
    return result


async def run_job(
    endpoint: Endpoint, spec: job_pb2.JobSpec, console: Console
) -> job_pb2.JobResult:
    async with CoordinatorClient(endpoint) as client:
        return await follow_events(client.run(spec), console, "cells")


async def watch_job(
    endpoint: Endpoint,
    job_id: str,
    console: Console,
    reconnect_seconds: float = DEFAULT_RECONNECT_SECONDS,
) -> job_pb2.JobResult:
    """Follow the job to its result; a coordinator that goes away (restarted,
    say) is called again, for up to `reconnect_seconds` from the first time it
    did not answer, before giving up."""
    loop = asyncio.get_running_loop()
    delay = FIRST_RECONNECT_DELAY_SECONDS
    give_up: float | None = None
    while True:
        try:
            async with CoordinatorClient(endpoint) as client:
                return await follow_events(client.watch(job_id), console, job_id)
        except (StreamBroken, CoordinatorError) as exc:
            code = _code_of(exc)
            give_up = give_up or loop.time() + reconnect_seconds
            if code is None or code not in RETRIED_CODES or loop.time() > give_up:
                raise
            console.print(
                f"the coordinator is not answering ({code.name}); trying again "
                f"in {delay:.1f}s",
                markup=False,
                highlight=False,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RECONNECT_DELAY_SECONDS)


def _code_of(exc: Exception) -> grpc.StatusCode | None:
    for error in (exc, exc.__cause__):
        if isinstance(error, CoordinatorError):
            return error.code
    return None
