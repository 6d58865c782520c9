"""The CoordinatorService servicer: log, validate, delegate, translate errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc
from coordinator.errors import InvalidRequest, guarded, guarded_stream
from coordinator.jobs import JobManager

logger = logging.getLogger(__name__)


def _job_id(value: str) -> str:
    if not value:
        raise InvalidRequest("job_id", "is required; `beacon list` shows the jobs")
    return value


class CoordinatorService(coordinator_service_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self, jobs: JobManager) -> None:
        self._jobs = jobs

    async def SubmitJob(
        self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitJobResponse:
        async def submit() -> pb.SubmitJobResponse:
            job, created, cells = await self._jobs.submit(request.spec)
            return pb.SubmitJobResponse(job_id=job.job_id, created=created, cells=cells)

        return await guarded("SubmitJob", context, submit)

    async def RunJob(
        self, request: pb.RunJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.JobEvent]:
        async def run() -> AsyncIterator[pb.JobEvent]:
            job, _, _ = await self._jobs.submit(request.spec)
            async for event in self._jobs.watch(job.job_id):
                yield event

        async for event in guarded_stream("RunJob", context, run()):
            yield event

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.JobEvent]:
        async def watch() -> AsyncIterator[pb.JobEvent]:
            async for event in self._jobs.watch(_job_id(request.job_id)):
                yield event

        async for event in guarded_stream("WatchJob", context, watch()):
            yield event

    async def GetJobResult(
        self, request: pb.GetJobResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResultResponse:
        async def get() -> pb.GetJobResultResponse:
            result = await self._jobs.result(_job_id(request.job_id))
            return pb.GetJobResultResponse(result=result)

        return await guarded("GetJobResult", context, get)

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        async def list_jobs() -> pb.ListJobsResponse:
            if request.page_size < 0:
                raise InvalidRequest("page_size", "must be 0 (default) or more")
            jobs, token = await self._jobs.list_jobs(
                request.page_size, request.page_token
            )
            return pb.ListJobsResponse(jobs=jobs, next_page_token=token)

        return await guarded("ListJobs", context, list_jobs)

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelJobResponse:
        async def cancel() -> pb.CancelJobResponse:
            summary = await self._jobs.cancel(_job_id(request.job_id))
            return pb.CancelJobResponse(job=summary)

        return await guarded("CancelJob", context, cancel)
