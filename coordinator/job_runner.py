"""Running one job: send every open cell, judge every receipt, end every cell.

This is the one layer that retries a cell. Each decision is written to the
store before anyone hears of it, and the job's status is set only from what
the store holds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from beacon.cells import Cell, expand_cells
from beacon.statuses import CellStatus, JobStatus
from beacon.timestamps import timestamp
from beacon.v1 import coordinator_service_pb2, job_pb2, receipt_pb2
from coordinator import counts as job_counts
from coordinator import observe
from coordinator.capacity import AgentCapacity
from coordinator.events import JobEvents
from coordinator.outcomes import Verdict, verdict_for_failure, verdict_for_receipt
from coordinator.region_stream import Pending, RegionStream, Replica, Sending
from coordinator.results import summary_of
from coordinator.store import (
    AttemptEnd,
    CellFinal,
    JobRecord,
    JobStore,
    ResumePoints,
)
from coordinator.store_writes import ATTEMPT_END, SENT, StoreWrites
from coordinator.verify import (
    PinnedKeys,
    ReceiptRejected,
    SentAttempt,
    check_body,
    open_receipt,
)

logger = logging.getLogger(__name__)

# A timer this late means the process was stalled, not that the agent was
# slow; the attempt is then judged again this much later.
STALL_SECONDS = 0.5
STALL_RECHECK_SECONDS = 1.0
CANCEL_REASON = "cancelled by a user before it finished"

# How long past an attempt's deadline the coordinator waits for its receipt,
# for the trip back from the agent.
RECEIPT_GRACE_SECONDS = 2.0
# An attempt with less time than this left is not sent.
MIN_ATTEMPT_SECONDS = 1.0
# Accepted receipts of one job whose decisions are being stored at once.
# They share commits; past this many, the streams stop reading receipts
# until some are stored (back-pressure), instead of each receipt waiting for
# the commit of the one before it.
SETTLING_WINDOW = 256


@dataclass(frozen=True)
class RunnerSettings:
    retry_base_seconds: float
    retry_max_seconds: float
    reconnect_max_seconds: float


@dataclass(frozen=True)
class RunnerContext:
    """What every job of one coordinator shares."""

    store: JobStore
    pinned: PinnedKeys
    replicas: Mapping[str, Sequence[Replica]]
    settings: RunnerSettings
    # Each agent's in-flight budget, across jobs.
    capacity: AgentCapacity
    # Rejected receipts by reason, for operators.
    rejections: Counter[str]
    # Whether the store takes writes; sending waits while it does not.
    store_writes: StoreWrites


@dataclass(slots=True)
class OpenCell:
    cell: Cell
    attempt: int
    # True while an attempt is out with an agent and not yet judged.
    awaiting: bool = False
    # True while the end of the current attempt is being stored; a copy of
    # that attempt still queued must not be sent again meanwhile.
    settling: bool = False
    timer: asyncio.TimerHandle | None = None
    # When the timer is due, on the loop's clock.
    due: float = 0.0


class JobRunner:
    def __init__(
        self, job: JobRecord, context: RunnerContext, events: JobEvents
    ) -> None:
        self._job = job
        self.job_id = job.job_id
        self._spec = job.spec
        self._created_at = job.created_at
        self._context = context
        self._store = context.store
        self._settings = context.settings
        self.events = events
        self._open: dict[str, OpenCell] = {}
        self._streams: dict[str, RegionStream] = {}
        self._all_final = asyncio.Event()
        self._cancel_requested = asyncio.Event()
        self._settling: set[asyncio.Task[None]] = set()
        self._settling_room = asyncio.Semaphore(SETTLING_WINDOW)
        # Set once the run is over: nothing may arm a timer after that.
        self._ended = False
        self.counts = job_pb2.JobCounts()

    # Lifecycle

    async def run(self) -> JobStatus:
        """Run until every cell is final, the job deadline, or a cancel.

        Returns the job's final status.
        """
        try:
            return await self._run()
        finally:
            # Watchers then read the final state from the store, even when
            # this run ends with an error or is cancelled.
            self.events.close()

    async def _run(self) -> JobStatus:
        # Passed on, not kept: of a large resumed job it is large.
        self._load_open_cells(await self._store.resume_points(self.job_id))
        await self._store.set_job_status(self.job_id, job_pb2.JOB_STATUS_RUNNING, None)
        self._publish(
            started=summary_of(
                replace(self._job, status=job_pb2.JOB_STATUS_RUNNING), self.counts
            )
        )
        logger.info(
            "job running job_id=%s cells=%d open=%d",
            self.job_id,
            self.counts.total,
            len(self._open),
        )

        self._start_streams()
        try:
            status = await self._wait_for_end()
            # Read before the streams stop: stopping disconnects every region.
            unreachable = {
                region: stream.last_error
                for region, stream in self._streams.items()
                if stream.connected_replicas == 0 and stream.last_error
            }
        finally:
            # Streams stop first, so no receipt arrives while the cells still
            # open are being ended.
            for stream in self._streams.values():
                await stream.stop()
            if self._cancel_requested.is_set():
                # Agents abandon the router calls still under way for the job.
                await asyncio.gather(
                    *(s.abandon(self._job.token) for s in self._streams.values())
                )
            self._ended = True
            for open_cell in self._open.values():
                if open_cell.timer is not None:
                    open_cell.timer.cancel()
            await self._settled()

        if status == job_pb2.JOB_STATUS_CANCELLED:
            await self._end_open_cells(job_pb2.CELL_STATUS_CANCELLED, CANCEL_REASON)
        elif status == job_pb2.JOB_STATUS_TIMED_OUT:
            await self._end_at_deadline(unreachable)
        await self._store.set_job_status(self.job_id, status, time.time())
        logger.info(
            "job ended job_id=%s status=%s", self.job_id, job_pb2.JobStatus.Name(status)
        )
        return status

    def cancel(self) -> None:
        self._cancel_requested.set()

    async def drain(self, within_seconds: float) -> None:
        """Send no more cells; wait, at most `within_seconds`, for the
        receipts of those in flight, and for their decisions to be stored."""
        for stream in self._streams.values():
            stream.stop_sending()
        await asyncio.gather(
            *(stream.wait_answered(within_seconds) for stream in self._streams.values())
        )
        await self._settled()
        logger.info(
            "drained job_id=%s still_in_flight=%d",
            self.job_id,
            sum(stream.in_flight for stream in self._streams.values()),
        )

    async def _settled(self) -> None:
        """Wait until every decision being stored is stored (settling can
        start more settling, hence the loop)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    def _load_open_cells(self, resume: ResumePoints) -> None:
        self.counts = job_counts.counts_of_tally(resume.tally)
        for cell in expand_cells(self._spec):
            if cell.cell_id in resume.ended:
                continue
            attempt = resume.next_attempts.get(cell.cell_id, 1)
            self._open[cell.cell_id] = OpenCell(cell=cell, attempt=attempt)
        if not self._open:
            self._all_final.set()

    def _start_streams(self) -> None:
        for region in self._spec.regions:
            stream = RegionStream(
                self.job_id,
                region,
                self._context.replicas.get(region, ()),
                self,
                self._settings.reconnect_max_seconds,
                self._context.capacity,
            )
            self._streams[region] = stream
        for open_cell in self._open.values():
            self._streams[open_cell.cell.region].queue.put_nowait(
                (open_cell.cell.cell_id, open_cell.attempt)
            )
        for stream in self._streams.values():
            stream.start()
            if not self._context.replicas.get(stream.region) and stream.queue.qsize():
                self._warn_unserved(stream)

    def _warn_unserved(self, stream: RegionStream) -> None:
        """Only a resumed job can name a region this coordinator has no agent
        for; its cells wait (a restart with the region configured runs them)."""
        deadline = self._created_at + self._spec.timeouts.job_seconds
        logger.error(
            "job_id=%s has %d open cells in region %s, which has no agent in "
            "this coordinator's configuration: they wait until the job deadline "
            "(%s) or a cancel; to run them, add an agent of %s to the "
            "configuration and restart the coordinator",
            self.job_id,
            stream.queue.qsize(),
            stream.region,
            datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds"),
            stream.region,
        )

    async def _wait_for_end(self) -> JobStatus:
        deadline = self._created_at + self._spec.timeouts.job_seconds
        waiters = {
            asyncio.create_task(self._all_final.wait()),
            asyncio.create_task(self._cancel_requested.wait()),
        }
        try:
            await asyncio.wait(
                waiters,
                timeout=max(0.0, deadline - time.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._all_final.is_set():
            return job_pb2.JOB_STATUS_COMPLETED
        if self._cancel_requested.is_set():
            return job_pb2.JOB_STATUS_CANCELLED
        return job_pb2.JOB_STATUS_TIMED_OUT

    async def _end_at_deadline(self, unreachable: Mapping[str, str]) -> None:
        """End what is still open, saying for each cell why it never finished."""
        deadline = f"the job deadline of {self._spec.timeouts.job_seconds:g}s"
        for region, error in unreachable.items():
            lost = f"no agent of {region} could be reached before {deadline}: {error}"
            await self._end_open_cells(
                job_pb2.CELL_STATUS_NOT_RUN, f"never sent: {lost}", region, unsent=True
            )
            await self._end_open_cells(job_pb2.CELL_STATUS_FAILED, lost, region)
        await self._end_open_cells(
            job_pb2.CELL_STATUS_NOT_RUN,
            f"never sent before {deadline} (layer: job)",
            unsent=True,
        )
        await self._end_open_cells(
            job_pb2.CELL_STATUS_TIMED_OUT, f"{deadline} passed (layer: job)"
        )

    async def _end_open_cells(
        self,
        status: CellStatus,
        reason: str,
        region: str | None = None,
        *,
        unsent: bool = False,
    ) -> None:
        ended = await self._store.finish_open_cells(
            self.job_id, status, reason, region, unsent_only=unsent
        )
        for cell_id in ended:
            open_cell = self._open.pop(cell_id, None)
            if open_cell is None:
                continue
            job_counts.finish(
                self.counts,
                job_pb2.CELL_STATUS_OPEN,
                status,
                receipt_pb2.CLASSIFICATION_UNSPECIFIED,
            )
            self._publish_finished(
                open_cell.cell, Verdict(status=status, reason=reason)
            )

    # CellFeed, used by the region streams

    def request_for(self, pending: Pending) -> receipt_pb2.ExecuteRequest | None:
        cell_id, attempt = pending
        open_cell = self._open.get(cell_id)
        if open_cell is None or open_cell.attempt != attempt or open_cell.settling:
            return None
        cell = open_cell.cell
        timeouts = self._spec.timeouts
        now = time.time()
        job_deadline = self._created_at + timeouts.job_seconds
        if job_deadline - now < MIN_ATTEMPT_SECONDS:
            # Too late to be worth an agent's time; the job deadline ends it.
            return None
        deadline = min(now + timeouts.cell_attempt_seconds, job_deadline)
        if open_cell.timer is not None:
            open_cell.timer.cancel()
        open_cell.awaiting = True
        self._arm(open_cell, deadline - now + RECEIPT_GRACE_SECONDS)
        return receipt_pb2.ExecuteRequest(
            job_id=cell.job_id,
            cell_id=cell.cell_id,
            attempt=attempt,
            region=cell.region,
            model=cell.model,
            question_id=cell.question_id,
            sample=cell.sample,
            prompt=cell.prompt,
            prompt_sha256=cell.prompt_sha256,
            temperature=self._spec.generation.temperature,
            max_tokens=self._spec.generation.max_tokens,
            deadline=timestamp(deadline),
            router_timeout_seconds=timeouts.router_call_seconds,
            attempt_seconds=deadline - now,
            job_token=self._job.token,
            trace_parent=observe.attempt_sent(self.job_id, cell, attempt),
        )

    async def send_turn(self) -> None:
        await self._context.store_writes.turn()

    async def sent(self, pending: Pending, agent_address: str) -> Sending:
        cell_id, attempt = pending
        try:
            await self._store.record_attempt_sent(
                self.job_id, cell_id, attempt, agent_address, time.time()
            )
        except Exception as exc:
            self._context.store_writes.failed(SENT, exc)
            recorded = False
        else:
            self._context.store_writes.succeeded(SENT)
            recorded = True
        # The write may have been slow: the attempt may have ended meanwhile.
        open_cell = self._open.get(cell_id)
        if open_cell is None or open_cell.attempt != attempt or not open_cell.awaiting:
            return Sending.DROP
        if recorded:
            return Sending.SEND
        # Not recorded, so not sent: the attempt waits, without a timer, for
        # the store to take writes again.
        self._stop_awaiting(open_cell, settling=False)
        return Sending.HOLD

    async def received(
        self, receipt: receipt_pb2.Receipt, region: str, agent_address: str
    ) -> None:
        """Judge a receipt and start storing the decision; returns before it
        is stored unless SETTLING_WINDOW decisions are already being stored."""
        await self._settling_room.acquire()
        settling: asyncio.Task[None] | None = None
        try:
            settling = self._judge(receipt, region, agent_address)
        finally:
            if settling is None:
                self._settling_room.release()
            else:
                settling.add_done_callback(lambda _: self._settling_room.release())

    def _judge(
        self, receipt: receipt_pb2.Receipt, region: str, agent_address: str
    ) -> asyncio.Task[None] | None:
        """Has no await, so two receipts for one attempt can never both be
        accepted. Returns the task storing the decision; it outlives the
        stream, so a stream that ends meanwhile does not cut it in half."""
        try:
            body = open_receipt(receipt, region, self._context.pinned)
            open_cell = self._awaiting_cell(body)
            check_body(body, self._sent_attempt(open_cell))
        except ReceiptRejected as exc:
            self._context.rejections[exc.reason] += 1
            observe.receipt_rejected(region, exc.reason)
            logger.warning(
                "receipt rejected job_id=%s region=%s agent=%s reason=%s detail=%s",
                self.job_id,
                region,
                agent_address,
                exc.reason,
                exc.detail,
            )
            return None
        self._stop_awaiting(open_cell)
        observe.attempt_ended(self.job_id, body.cell_id, body.attempt, "answered")
        verdict = verdict_for_receipt(body, self._spec.max_attempts)
        return self._start_settling(
            open_cell,
            verdict,
            AttemptEnd(
                cell_id=body.cell_id,
                attempt=body.attempt,
                finished_at=time.time(),
                receipt=receipt.SerializeToString(),
                failure=body.failure.SerializeToString()
                if body.HasField("failure")
                else None,
                accepted=True,
                public_key=self._context.pinned[region][receipt.key_id].raw,
            ),
        )

    def _sent_attempt(self, open_cell: OpenCell) -> SentAttempt:
        generation = self._spec.generation
        return SentAttempt(
            open_cell.cell,
            open_cell.attempt,
            generation.temperature,
            generation.max_tokens,
            self._job.token,
        )

    def _awaiting_cell(self, body: receipt_pb2.ReceiptBody) -> OpenCell:
        """The open cell whose outstanding attempt this receipt names."""
        open_cell = self._open.get(body.cell_id)
        if open_cell is None:
            raise ReceiptRejected(
                "cell_not_open", f"cell {body.cell_id!r} is not open in this job"
            )
        if open_cell.attempt != body.attempt:
            raise ReceiptRejected(
                "attempt_not_open",
                f"cell {body.cell_id} awaits attempt {open_cell.attempt}, "
                f"receipt is for attempt {body.attempt}",
            )
        if not open_cell.awaiting:
            raise ReceiptRejected(
                "attempt_not_open",
                f"attempt {body.attempt} of cell {body.cell_id} is no longer "
                "awaited: it was answered or timed out before this receipt",
            )
        return open_cell

    def _stop_awaiting(self, open_cell: OpenCell, *, settling: bool = True) -> None:
        """No receipt is awaited: the attempt's end is being stored
        (`settling`), or it waits, unsent, to go out again."""
        open_cell.awaiting = False
        open_cell.settling = settling
        if open_cell.timer is not None:
            open_cell.timer.cancel()
            open_cell.timer = None

    def _send_again(self, open_cell: OpenCell, attempt: int) -> None:
        """Keep open an attempt whose end could not be stored: the same
        attempt goes out again once the store takes writes, and its agent
        answers with the receipt it already signed."""
        if self._open.get(open_cell.cell.cell_id) is not open_cell:
            return
        if open_cell.attempt != attempt or self._ended:
            return
        self._stop_awaiting(open_cell, settling=False)
        self._streams[open_cell.cell.region].queue.put_nowait(
            (open_cell.cell.cell_id, attempt)
        )

    def _arm(self, open_cell: OpenCell, after: float) -> None:
        """End the cell's current attempt `after` seconds from now."""
        loop = asyncio.get_running_loop()
        open_cell.due = loop.time() + after
        open_cell.timer = loop.call_later(
            after, self._attempt_expired, open_cell.cell.cell_id, open_cell.attempt
        )

    def _attempt_expired(self, cell_id: str, attempt: int) -> None:
        open_cell = self._open.get(cell_id)
        if open_cell is None or open_cell.attempt != attempt or not open_cell.awaiting:
            return
        if asyncio.get_running_loop().time() - open_cell.due > STALL_SECONDS:
            # This process was stalled (paused, starved of CPU): receipts that
            # came in meanwhile are still unread, so they get a moment first.
            self._arm(open_cell, STALL_RECHECK_SECONDS)
            return
        open_cell.awaiting = False
        open_cell.settling = True
        open_cell.timer = None
        observe.attempt_ended(self.job_id, cell_id, attempt, "expired")
        # The agent may never answer; its stream must not keep the slot.
        self._streams[open_cell.cell.region].forget((cell_id, attempt))
        failure = receipt_pb2.Failure(
            code="ATTEMPT_TIMEOUT",
            message=f"no receipt within the attempt deadline of "
            f"{self._spec.timeouts.cell_attempt_seconds:g}s (layer: cell attempt)",
            retryable=True,
            stage="coordinator",
        )
        verdict = verdict_for_failure(failure, attempt, self._spec.max_attempts)
        end = AttemptEnd(
            cell_id=cell_id,
            attempt=attempt,
            finished_at=time.time(),
            receipt=None,
            failure=failure.SerializeToString(),
            accepted=False,
        )
        self._start_settling(open_cell, verdict, end)

    def _start_settling(
        self, open_cell: OpenCell, verdict: Verdict, end: AttemptEnd
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._settle(open_cell, verdict, end))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    async def _settle(
        self, open_cell: OpenCell, verdict: Verdict, end: AttemptEnd
    ) -> None:
        cell = open_cell.cell
        final = None
        if not verdict.retry:
            final = CellFinal(
                cell_id=cell.cell_id,
                status=verdict.status,
                classification=verdict.classification,
                reason=verdict.reason,
                final_attempt=end.attempt,
            )
        try:
            applied = await self._store.record_attempt_end(self.job_id, end, final)
        except Exception as exc:
            # Not durable, so not accepted: the cell stays open and the
            # stream carrying it goes on. The store's outage is logged once.
            self._context.store_writes.failed(ATTEMPT_END, exc)
            logger.debug(
                "attempt end not stored job_id=%s cell_id=%s attempt=%d",
                self.job_id,
                cell.cell_id,
                end.attempt,
            )
            self._send_again(open_cell, end.attempt)
            return
        self._context.store_writes.succeeded(ATTEMPT_END)

        if verdict.retry:
            failure = receipt_pb2.Failure()
            failure.ParseFromString(end.failure or b"")
            self._schedule_retry(open_cell, failure)
            return
        if not applied:
            try:
                await self._follow_store(open_cell)
            except Exception:
                logger.exception(
                    "could not read the store job_id=%s cell_id=%s",
                    self.job_id,
                    cell.cell_id,
                )
                self._send_again(open_cell, end.attempt)
            return
        if self._open.pop(cell.cell_id, None) is None:
            return
        job_counts.finish(
            self.counts,
            job_pb2.CELL_STATUS_OPEN,
            verdict.status,
            verdict.classification,
        )
        self._publish_finished(cell, verdict)
        if not self._open:
            self._all_final.set()

    async def _follow_store(self, open_cell: OpenCell) -> None:
        """The store refused an outcome: the attempt had already ended, or the
        cell had already been ended (by a cancel, the job deadline, or another
        coordinator on this store). Only what the store holds counts."""
        stored = await self._store.cells(self.job_id)
        record = next((c for c in stored if c.cell_id == open_cell.cell.cell_id), None)
        if record is not None and record.status == job_pb2.CELL_STATUS_OPEN:
            open_cell.attempt = max(open_cell.attempt, record.last_attempt)
            self._schedule_retry(
                open_cell,
                receipt_pb2.Failure(
                    code="ATTEMPT_ALREADY_ENDED",
                    message="the store had already ended this attempt",
                    retryable=True,
                    stage="coordinator",
                ),
            )
            return
        if self._open.pop(open_cell.cell.cell_id, None) is not None:
            self.counts = job_counts.counts_of(
                (c.status, c.classification) for c in stored
            )
            if not self._open:
                self._all_final.set()

    def _schedule_retry(
        self, open_cell: OpenCell, failure: receipt_pb2.Failure
    ) -> None:
        failed = open_cell.attempt
        open_cell.attempt = failed + 1
        open_cell.settling = False
        cap = min(
            self._settings.retry_max_seconds,
            self._settings.retry_base_seconds * 2 ** (failed - 1),
        )
        delay = random.uniform(cap / 2, cap)
        stream = self._streams[open_cell.cell.region]
        pending = (open_cell.cell.cell_id, open_cell.attempt)
        asyncio.get_running_loop().call_later(delay, stream.queue.put_nowait, pending)
        observe.retry(open_cell.cell, failure)
        logger.info(
            "retrying job_id=%s cell_id=%s attempt=%d after=%s delay=%.2fs",
            self.job_id,
            open_cell.cell.cell_id,
            open_cell.attempt,
            failure.code,
            delay,
        )
        self._publish(
            cell_retrying=coordinator_service_pb2.CellRetrying(
                cell_id=open_cell.cell.cell_id,
                next_attempt=open_cell.attempt,
                failure=failure,
            )
        )

    # Events

    def _publish_finished(self, cell: Cell, verdict: Verdict) -> None:
        observe.cell_final(cell, verdict)
        self._publish(
            cell_finished=coordinator_service_pb2.CellFinished(
                cell_id=cell.cell_id,
                region=cell.region,
                model=cell.model,
                question_id=cell.question_id,
                sample=cell.sample,
                status=verdict.status,
                classification=verdict.classification,
                reason=verdict.reason,
            )
        )

    def _publish(self, **event: object) -> None:
        message = coordinator_service_pb2.JobEvent(job_id=self.job_id, **event)  # type: ignore[arg-type]
        message.counts.CopyFrom(self.counts)
        self.events.publish(message)
