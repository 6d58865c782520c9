"""The coordinator's core: submitting, running, watching and cancelling jobs.

Plain Python with no gRPC in it; the servicer translates its errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator

from beacon import log_context, tracing
from beacon.cells import expand_cells
from beacon.jobspec import SpecLimits, normalize_spec
from beacon.signing import PublicKey
from beacon.statuses import FINISHED_JOBS, JobStatus
from beacon.v1 import coordinator_service_pb2, job_pb2
from coordinator import observe
from coordinator.analysis_cache import AnalysisCache
from coordinator.capacity import AgentCapacity
from coordinator.config import CoordinatorConfig
from coordinator.events import JobEvents
from coordinator.job_runner import (
    CANCEL_REASON,
    JobRunner,
    RunnerContext,
    RunnerSettings,
)
from coordinator.region_stream import Replica
from coordinator.results import assemble_result, job_summary
from coordinator.store import JobRecord, JobStore
from coordinator.store_writes import StoreWrites

logger = logging.getLogger(__name__)

FINISHED = FINISHED_JOBS
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def shown(identifier: str, limit: int = 80) -> str:
    """An id as quoted in a message, cut short so a huge one is not echoed."""
    if len(identifier) <= limit:
        return repr(identifier)
    return repr(identifier[:limit]) + f"... ({len(identifier)} characters)"


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"no job with id {shown(job_id)}; `beacon list` shows the jobs"
        )
        self.job_id = job_id


class BadPageToken(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(
            f"page_token {shown(token)} names no job; pass the next_page_token of the "
            "previous ListJobs response, or nothing for the first page"
        )


# How long a stopping coordinator waits for receipts of cells in flight.
DRAIN_SECONDS = 10.0


class CoordinatorStopping(Exception):
    def __init__(self, job_id: str = "") -> None:
        if job_id:
            message = (
                f"the coordinator is shutting down; job {shown(job_id)} is kept "
                f"and goes on when it is back (`beacon watch {job_id[:80]}`)"
            )
        else:
            message = "the coordinator is shutting down; try again when it is back"
        super().__init__(message)


class JobConflict(Exception):
    """A different spec submitted under an id that already exists."""


def spec_digest(spec: job_pb2.JobSpec) -> str:
    return hashlib.sha256(spec.SerializeToString(deterministic=True)).hexdigest()


class JobManager:
    def __init__(self, config: CoordinatorConfig, store: JobStore) -> None:
        self._config = config
        self._store = store
        self._limits = SpecLimits(
            max_cells=config.max_cells_per_job, known_regions=config.region_ids
        )
        self.replicas: dict[str, list[Replica]] = {
            region: [Replica(a.address, a.pinned_key(), config.tls) for a in cfg.agents]
            for region, cfg in config.regions.items()
        }
        pinned: dict[str, dict[str, PublicKey]] = {}
        for region, replicas in self.replicas.items():
            pinned[region] = {r.pinned_key.key_id: r.pinned_key for r in replicas}
        self._public_keys = {
            key.key_id: key for keys in pinned.values() for key in keys.values()
        }
        self.rejections: Counter[str] = Counter()
        self.store_writes = StoreWrites(config.store)
        self._context = RunnerContext(
            store=store,
            pinned=pinned,
            replicas=self.replicas,
            settings=RunnerSettings(
                retry_base_seconds=config.retry_base_seconds,
                retry_max_seconds=config.retry_max_seconds,
                reconnect_max_seconds=config.reconnect_max_seconds,
            ),
            capacity=AgentCapacity(),
            rejections=self.rejections,
            store_writes=self.store_writes,
        )
        self._analyses = AnalysisCache(config.analysis)
        self._stopping = False
        self._runners: dict[str, JobRunner] = {}
        self._tasks: dict[str, asyncio.Task[JobStatus]] = {}

    # Submitting and running

    async def submit(self, spec: job_pb2.JobSpec) -> tuple[JobRecord, bool, int]:
        """Store and start a job; the same spec again returns the same job.

        Returns the job, whether it was created now, and its cell count.
        """
        if self._stopping:
            raise CoordinatorStopping()
        normalized = normalize_spec(spec, self._limits)
        cells = list(expand_cells(normalized))
        digest = spec_digest(normalized)
        job, created = await self._store.create_job(
            normalized, digest, secrets.token_hex(16), cells, time.time()
        )
        if not created and job.spec_sha256 != digest:
            raise JobConflict(
                f"job {job.job_id!r} already exists with a different spec; "
                "choose another job_id or submit the identical spec to attach to it"
            )
        logger.info(
            "job %s job_id=%s cells=%d",
            "submitted" if created else "resubmitted",
            job.job_id,
            len(cells),
        )
        self._ensure_running(job)
        return job, created, len(cells)

    def _ensure_running(self, job: JobRecord) -> None:
        if job.status in FINISHED or job.job_id in self._runners:
            return
        if self._stopping:
            raise CoordinatorStopping(job.job_id)
        runner = JobRunner(job, self._context, JobEvents(job.job_id))
        self._runners[job.job_id] = runner
        task = tracing.task_in_span(
            "job",
            observe.run_job(job.job_id, runner.run()),
            attributes={"beacon.job_id": job.job_id},
            task_name=f"job {job.job_id}",
            context=log_context.context_with(job_id=job.job_id),
        )
        self._tasks[job.job_id] = task
        task.add_done_callback(lambda t: self._job_task_done(job.job_id, t))

    def _job_task_done(self, job_id: str, task: asyncio.Task[JobStatus]) -> None:
        self._runners.pop(job_id, None)
        self._tasks.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "job runner failed job_id=%s; it resumes on the next start",
                job_id,
                exc_info=task.exception(),
            )

    async def resume_unfinished(self) -> list[str]:
        """Continue every job the store says is unfinished (after a restart)."""
        jobs = await self._store.unfinished_jobs()
        for job in jobs:
            logger.info("resuming job_id=%s", job.job_id)
            self._ensure_running(job)
        return [job.job_id for job in jobs]

    async def shutdown(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop running jobs without finishing them; the store keeps them open.

        No new cell is sent, and for up to `drain_seconds` the receipts of
        cells already at agents are still taken in, so their work is kept
        instead of done again after the restart.
        """
        self._stopping = True
        runners = list(self._runners.values())
        await asyncio.gather(*(runner.drain(drain_seconds) for runner in runners))
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Reading

    async def job(self, job_id: str) -> JobRecord:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def result(self, job_id: str) -> job_pb2.JobResult:
        result = await assemble_result(
            self._store, await self.job(job_id), self._public_keys
        )
        analysis = await self._analyses.analysis_of(
            result, finished=result.status in FINISHED
        )
        result.analysis.CopyFrom(analysis)
        return result

    async def watch(
        self, job_id: str
    ) -> AsyncIterator[coordinator_service_pb2.JobEvent]:
        """Progress events of a job, then one event with its final result."""
        job = await self.job(job_id)
        runner = self._runners.get(job_id)
        if runner is None and job.status not in FINISHED:
            self._ensure_running(job)
            runner = self._runners.get(job_id)
        if runner is not None:
            async for event in runner.events.watch():
                yield event
            task = self._tasks.get(job_id)
            if task is not None:
                await asyncio.wait([task])
        if self._stopping and (await self.job(job_id)).status not in FINISHED:
            raise CoordinatorStopping(job_id)
        result = await self.result(job_id)
        yield coordinator_service_pb2.JobEvent(
            job_id=job_id, counts=result.counts, result=result
        )

    async def list_jobs(
        self, page_size: int, page_token: str
    ) -> tuple[list[job_pb2.JobSummary], str]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if page_token and await self._store.get_job(page_token) is None:
            raise BadPageToken(page_token)
        jobs = await self._store.list_jobs(page_token, size + 1)
        more = len(jobs) > size
        jobs = jobs[:size]
        summaries = [await job_summary(self._store, job) for job in jobs]
        return summaries, (jobs[-1].job_id if more else "")

    async def cancel(self, job_id: str) -> job_pb2.JobSummary:
        job = await self.job(job_id)
        runner = self._runners.get(job_id)
        task = self._tasks.get(job_id)
        if runner is not None and task is not None:
            logger.info("cancelling job_id=%s", job_id)
            runner.cancel()
            await asyncio.wait([task])
            job = await self.job(job_id)
        elif job.status not in FINISHED:
            # Its runner ended with an error; the store alone can end it.
            logger.info("cancelling job_id=%s without a runner", job_id)
            await self._store.finish_open_cells(
                job_id, job_pb2.CELL_STATUS_CANCELLED, CANCEL_REASON
            )
            await self._store.set_job_status(
                job_id, job_pb2.JOB_STATUS_CANCELLED, time.time()
            )
            job = await self.job(job_id)
        return await job_summary(self._store, job)
