"""The RegionAgentService servicer: a thin layer over CellExecutor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from beacon import __version__, tracing
from beacon.signing import SigningKey
from beacon.v1 import (
    receipt_pb2,
    region_agent_service_pb2,
    region_agent_service_pb2_grpc,
)
from region_agent.abandoned import AbandonedJobs, JobKey
from region_agent.executor import CellExecutor
from region_agent.receipts import DurableReceipts, ReceiptBook, attempt_key, seal
from region_agent.router_client import RouterClient

logger = logging.getLogger(__name__)


class RegionAgentService(region_agent_service_pb2_grpc.RegionAgentServiceServicer):
    def __init__(
        self,
        *,
        region: str,
        agent_id: str,
        key: SigningKey,
        capacity: int,
        executor: CellExecutor,
        router: RouterClient,
        receipt_cache_size: int,
        receipt_cache_bytes: int,
        kept_receipts: DurableReceipts | None = None,
    ) -> None:
        self._region = region
        self._agent_id = agent_id
        self._key = key
        self._capacity = capacity
        self._executor = executor
        self._router = router
        self._book = ReceiptBook(receipt_cache_size, receipt_cache_bytes, kept_receipts)
        # Shared by every stream: capacity is the agent's, not a stream's.
        self._slots = asyncio.Semaphore(capacity)
        self._executions: set[asyncio.Task[None]] = set()
        self._readers: set[asyncio.Task[None]] = set()
        self._abandoned = AbandonedJobs()
        self._draining = False
        self._kept = kept_receipts
        if kept_receipts is not None:
            kept_receipts.outage.watch(self._receipts_writable)

    async def Describe(
        self,
        request: region_agent_service_pb2.DescribeRequest,
        context: grpc.aio.ServicerContext,
    ) -> region_agent_service_pb2.DescribeResponse:
        healthy, detail = await self._router.health()
        return region_agent_service_pb2.DescribeResponse(
            region=self._region,
            agent_id=self._agent_id,
            key_id=self._key.key_id,
            public_key=self._key.public.raw,
            capacity=self._capacity,
            router_kind=self._router.kind,
            router_healthy=healthy,
            router_detail=detail,
            version=__version__,
        )

    async def AbandonJob(
        self,
        request: region_agent_service_pb2.AbandonJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> region_agent_service_pb2.AbandonJobResponse:
        if not request.job_id or not request.job_token:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "AbandonJobRequest needs job_id and job_token",
            )
        abandoned = self._abandoned.abandon((request.job_id, request.job_token))
        logger.info(
            "abandoned job_id=%s executions=%d peer=%s",
            request.job_id,
            abandoned,
            context.peer(),
        )
        return region_agent_service_pb2.AbandonJobResponse(abandoned=abandoned)

    async def Execute(
        self,
        request_iterator: AsyncIterator[receipt_pb2.ExecuteRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[receipt_pb2.Receipt]:
        peer = context.peer()
        tracing.adopt_incoming(context.invocation_metadata())
        refusal = self._refusal()
        if refusal:
            await context.abort(grpc.StatusCode.UNAVAILABLE, refusal)
        logger.info("execute stream opened peer=%s", peer)
        ready: asyncio.Queue[receipt_pb2.Receipt | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def run_one(request: receipt_pb2.ExecuteRequest) -> None:
            ready.put_nowait(await self._receipt_for(request))

        async def take_requests() -> None:
            async for request in request_iterator:
                # Waiting for a slot before reading on is the back-pressure:
                # the coordinator's writes block instead of piling up here.
                await self._slots.acquire()
                task = asyncio.create_task(run_one(request))
                running.add(task)
                # Released however the task ends, even cancelled unstarted.
                task.add_done_callback(lambda done: self._slots.release())
                task.add_done_callback(running.discard)
                self._executions.add(task)
                task.add_done_callback(self._executions.discard)
                self._abandoned.track(_job_of(request), task)

        async def finish() -> None:
            # Reading ends at the end of the stream, on an error, or when the
            # agent drains; the cells already taken still get their receipts.
            try:
                await asyncio.wait({reader})
                if running:
                    await asyncio.wait(set(running))
            finally:
                ready.put_nowait(None)

        reader = asyncio.create_task(take_requests())
        self._readers.add(reader)
        finisher = asyncio.create_task(finish())
        sent = 0
        try:
            while (receipt := await ready.get()) is not None:
                yield receipt
                sent += 1
            if not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
        finally:
            # Executions already started run on when the stream is lost: their
            # receipts are kept, so the attempt sent again on a new stream is
            # answered from the book instead of calling the router twice.
            self._readers.discard(reader)
            reader.cancel()
            finisher.cancel()
            logger.info(
                "execute stream closed peer=%s receipts=%d still_running=%d",
                peer,
                sent,
                len(running),
            )

    def _refusal(self) -> str:
        """Why this agent takes no stream now ("" when it does)."""
        if self._draining:
            return "this agent is shutting down"
        if self._kept is not None and not self._kept.outage.writable:
            return (
                "this agent cannot write its receipts file (see its log); it "
                "takes cells again once it can"
            )
        return ""

    async def finish_executions(self, within_seconds: float) -> None:
        """Wait, at most `within_seconds`, for cells still running (also
        those whose stream is gone), so their router calls are not cut."""
        if self._executions:
            await asyncio.wait(set(self._executions), timeout=within_seconds)

    def abandon_running(self) -> int:
        """Cancel every execution still running (their router calls too);
        returns how many. Their cells get no receipt and are sent again."""
        running = list(self._executions)
        for execution in running:
            execution.cancel()
        return len(running)

    async def drain(self) -> None:
        """Take no new cells; streams end once their cells are answered."""
        self._draining = True
        self._stop_reading()
        logger.info("draining: %d cells still running", len(self._executions))

    def _stop_reading(self) -> None:
        for reader in list(self._readers):
            reader.cancel()

    def _receipts_writable(self, writable: bool) -> None:
        # Open streams end once their cells are answered; the coordinator
        # keeps the cells it could not send and sends them when this agent
        # takes streams again.
        if not writable:
            self._stop_reading()

    async def _receipt_for(
        self, request: receipt_pb2.ExecuteRequest
    ) -> receipt_pb2.Receipt:
        async def produce() -> receipt_pb2.Receipt:
            if self._abandoned.has(_job_of(request)):
                return seal(self._executor.abandoned(request), self._key)
            try:
                body = await self._executor.execute(request)
            except Exception:
                # Every request gets a receipt, or the coordinator would wait
                # for this attempt until its deadline.
                logger.exception(
                    "execution failed job_id=%s cell_id=%s",
                    request.job_id,
                    request.cell_id,
                )
                body = self._executor.agent_error(request)
            return seal(body, self._key)

        def unkept() -> receipt_pb2.Receipt:
            return seal(self._executor.receipt_not_kept(request), self._key)

        return await self._book.once(attempt_key(request), produce, unkept)


def _job_of(request: receipt_pb2.ExecuteRequest) -> JobKey:
    return (request.job_id, request.job_token)
