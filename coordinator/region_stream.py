"""One region's side of a job: a bidirectional Execute stream per agent replica.

Each replica gets at most its advertised capacity of cells in flight. A lost
stream puts its unanswered cells back in the region's queue, with the same
attempt number, and reconnects with backoff; an agent that already signed a
receipt for that attempt answers with it instead of calling its router again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError

from beacon import tracing
from beacon.signing import PublicKey
from beacon.tls import TlsFiles, agent_channel
from beacon.v1 import (
    receipt_pb2,
    region_agent_service_pb2,
    region_agent_service_pb2_grpc,
)
from coordinator import metrics
from coordinator.agent_identity import certificate_problem
from coordinator.capacity import AgentCapacity

logger = logging.getLogger(__name__)

DESCRIBE_TIMEOUT_SECONDS = 10.0
ABANDON_TIMEOUT_SECONDS = 5.0
RECONNECT_FIRST_SECONDS = 0.2

Pending = tuple[str, int]


class AgentRefused(Exception):
    """An agent that must not receive this region's cells."""


class Sending(enum.Enum):
    SEND = "send"
    # The attempt is no longer wanted.
    DROP = "drop"
    # It could not be recorded as sent: back to the queue, sent later.
    HOLD = "hold"


class CellFeed(Protocol):
    """What a region stream needs from the job it serves."""

    async def send_turn(self) -> None:
        """Returns when the next cell may be taken (at once, unless the job's
        store is failing and the next try is not yet due)."""

    def request_for(self, pending: Pending) -> receipt_pb2.ExecuteRequest | None:
        """The request to send, or None when that attempt is no longer wanted."""

    async def sent(self, pending: Pending, agent_address: str) -> Sending:
        """Record that the attempt goes out, and say whether it does."""

    async def received(
        self, receipt: receipt_pb2.Receipt, region: str, agent_address: str
    ) -> None: ...


@dataclass(frozen=True)
class Replica:
    address: str
    pinned_key: PublicKey
    # Mutual TLS to the agent; None on a plaintext (loopback) deployment.
    tls: TlsFiles | None = None

    def channel(self, region: str) -> grpc.aio.Channel:
        return agent_channel(self.address, region, self.tls)


@dataclass(eq=False)
class _Connection:
    """One open stream: the attempts it carries and the slots they hold."""

    address: str
    slots: asyncio.Semaphore
    in_flight: set[Pending] = field(default_factory=set)
    received: int = 0

    def release(self, pending: Pending) -> bool:
        if pending not in self.in_flight:
            return False
        self.in_flight.discard(pending)
        self.slots.release()
        return True


def _observed(done: asyncio.Future[Sending]) -> None:
    if not done.cancelled():
        done.exception()


def attempt_key(receipt: receipt_pb2.Receipt) -> Pending | None:
    """Which attempt a receipt claims to answer, before it is verified.

    Used only to free the stream's slot; acceptance is decided elsewhere.
    """
    body = receipt_pb2.ReceiptBody()
    try:
        body.ParseFromString(receipt.body)
    except DecodeError:
        return None
    return (body.cell_id, body.attempt)


def refusal_of(
    region: str,
    replica: Replica,
    description: region_agent_service_pb2.DescribeResponse,
) -> str:
    """Why this agent must not get `region`'s cells ("" when it may)."""
    if description.region != region:
        return (
            f"agent {replica.address} serves {description.region!r}, "
            f"not {region!r}; fix the coordinator's configuration"
        )
    if (
        description.key_id != replica.pinned_key.key_id
        or description.public_key != replica.pinned_key.raw
    ):
        return (
            f"agent {replica.address} signs with {description.key_id!r}, but "
            f"{replica.pinned_key.key_id!r} is pinned for it"
        )
    return ""


class RegionStream:
    def __init__(
        self,
        job_id: str,
        region: str,
        replicas: Sequence[Replica],
        feed: CellFeed,
        reconnect_max_seconds: float,
        capacity: AgentCapacity,
    ) -> None:
        self.job_id = job_id
        self.region = region
        self._replicas = list(replicas)
        self._feed = feed
        self._reconnect_max = reconnect_max_seconds
        self._capacity = capacity
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        # Why the region's last connection attempt failed; cleared on success.
        # A resumed job may name a region since removed from the configuration.
        self.last_error = (
            "" if self._replicas else "this coordinator's configuration names none"
        )
        self._connections: set[_Connection] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Cleared while the coordinator drains: cells stay in the queue.
        self._sending = asyncio.Event()
        self._sending.set()
        # Set whenever a cell in flight is answered, forgotten or requeued.
        self._answered = asyncio.Event()

    @property
    def connected_replicas(self) -> int:
        return len(self._connections)

    @property
    def in_flight(self) -> int:
        """Cells sent and not yet answered, over every replica."""
        return sum(len(c.in_flight) for c in self._connections)

    def stop_sending(self) -> None:
        self._sending.clear()

    async def wait_answered(self, within_seconds: float) -> None:
        """Wait until no cell is in flight, at most `within_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_seconds
        while self.in_flight and (left := deadline - loop.time()) > 0:
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), left)

    def start(self) -> None:
        for replica in self._replicas:
            self._tasks.append(
                tracing.task_in_span(
                    "region stream",
                    self._keep_connected(replica),
                    attributes={
                        "beacon.region": self.region,
                        "beacon.agent": replica.address,
                    },
                    task_name=f"region-stream {self.job_id} {self.region} "
                    f"{replica.address}",
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def abandon(self, job_token: str) -> None:
        """Ask every replica to abandon the job's router calls under way.

        Best effort and bounded: an agent that cannot be reached has no
        stream left, and the calls it still makes end at their deadline.
        """
        await asyncio.gather(
            *(self._abandon_at(replica, job_token) for replica in self._replicas)
        )

    async def _abandon_at(self, replica: Replica, job_token: str) -> None:
        try:
            async with replica.channel(self.region) as channel:
                stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
                reply = await stub.AbandonJob(
                    region_agent_service_pb2.AbandonJobRequest(
                        job_id=self.job_id, job_token=job_token
                    ),
                    timeout=ABANDON_TIMEOUT_SECONDS,
                )
        except grpc.aio.AioRpcError as exc:
            logger.warning(
                "could not abandon job_id=%s at agent=%s: %s: %s",
                self.job_id,
                replica.address,
                exc.code().name,
                exc.details(),
            )
            return
        logger.info(
            "abandoned job_id=%s region=%s agent=%s executions=%d",
            self.job_id,
            self.region,
            replica.address,
            reply.abandoned,
        )

    def forget(self, pending: Pending) -> None:
        """Free the slot of an attempt the job stopped waiting for."""
        for connection in self._connections:
            if connection.release(pending):
                self._answered.set()
                return

    async def _keep_connected(self, replica: Replica) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            opened: _Connection | None = None

            def mark_opened(connection: _Connection) -> None:
                nonlocal opened
                opened = connection

            try:
                await self._serve(replica, mark_opened)
                self.last_error = f"agent {replica.address} closed the stream"
            except AgentRefused as exc:
                self.last_error = str(exc)
                logger.error(
                    "agent refused job_id=%s region=%s agent=%s: %s",
                    self.job_id,
                    self.region,
                    replica.address,
                    exc,
                )
                delay = self._reconnect_max
            except grpc.aio.AioRpcError as exc:
                self.last_error = (
                    f"agent {replica.address}: {exc.code().name}: {exc.details()}"
                )
                if opened is None and replica.tls is not None:
                    # A refused certificate looks like an unreachable agent.
                    problem = await certificate_problem(
                        replica.address, self.region, replica.tls
                    )
                    self.last_error = problem or self.last_error
                logger.warning(
                    "stream lost job_id=%s region=%s agent=%s code=%s: %s",
                    self.job_id,
                    self.region,
                    replica.address,
                    exc.code().name,
                    self.last_error,
                )
            except Exception as exc:
                # A fault on this side must not end the region's work: log it,
                # put the cells back (done in _serve) and reconnect.
                self.last_error = f"agent {replica.address}: {exc!r}"
                logger.exception(
                    "stream failed job_id=%s region=%s agent=%s",
                    self.job_id,
                    self.region,
                    replica.address,
                )
            if opened is not None and opened.received:
                # Only a stream that carried receipts worked: one that ends
                # as soon as it opens (an agent refusing work, a store
                # failing here) must not make the retries quick again.
                delay = RECONNECT_FIRST_SECONDS
            # Full jitter keeps replicas of a restarted agent from reconnecting
            # in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, self._reconnect_max)

    async def _serve(
        self, replica: Replica, opened: Callable[[_Connection], None]
    ) -> None:
        """Run one stream until it ends; `opened` is called once it is open."""
        async with replica.channel(self.region) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            description = await stub.Describe(
                region_agent_service_pb2.DescribeRequest(),
                timeout=DESCRIBE_TIMEOUT_SECONDS,
            )
            refusal = refusal_of(self.region, replica, description)
            if refusal:
                raise AgentRefused(refusal)
            capacity = max(1, description.capacity)
            logger.info(
                "stream open job_id=%s region=%s agent=%s capacity=%d",
                self.job_id,
                self.region,
                replica.address,
                capacity,
            )
            connection = _Connection(
                replica.address, self._capacity.slots(replica.address, capacity)
            )
            call = stub.Execute(metadata=tracing.outgoing_metadata())
            self._connections.add(connection)
            metrics.IN_FLIGHT.watch(connection, self.region)
            self.last_error = ""
            opened(connection)
            try:
                await self._pump(call, connection)
            finally:
                self._connections.discard(connection)
                metrics.IN_FLIGHT.forget(connection)
                call.cancel()
                for pending in connection.in_flight:
                    self.queue.put_nowait(pending)
                    connection.slots.release()
                self._answered.set()
                if connection.in_flight:
                    logger.info(
                        "requeued job_id=%s region=%s cells=%d",
                        self.job_id,
                        self.region,
                        len(connection.in_flight),
                    )

    async def _pump(
        self, call: grpc.aio.StreamStreamCall, connection: _Connection
    ) -> None:
        recorded: asyncio.Queue[
            tuple[Pending, receipt_pb2.ExecuteRequest, asyncio.Future[Sending]]
        ] = asyncio.Queue()

        async def send() -> None:
            while True:
                await self._sending.wait()
                await self._feed.send_turn()
                # A slot is taken only for work in hand: the agent's slots are
                # shared with other jobs, and an idle job must not hold one.
                pending = await self.queue.get()
                try:
                    await connection.slots.acquire()
                except BaseException:
                    self.queue.put_nowait(pending)
                    raise
                if not self._sending.is_set():
                    # The coordinator began to drain while this cell waited.
                    connection.slots.release()
                    self.queue.put_nowait(pending)
                    continue
                request = self._feed.request_for(pending)
                if request is None:
                    connection.slots.release()
                    continue
                connection.in_flight.add(pending)
                # Recorded as sent before it is sent. Cells sent together
                # share the record's commit, instead of each waiting for the
                # commit of the one before; write() keeps their order.
                recording = asyncio.ensure_future(
                    self._feed.sent(pending, connection.address)
                )
                # write() raises an unexpected error; if the stream ends
                # first, it is dropped with the stream, not logged at exit.
                recording.add_done_callback(_observed)
                recorded.put_nowait((pending, request, recording))

        async def write() -> None:
            while True:
                pending, request, recording = await recorded.get()
                sending = await recording
                if sending is not Sending.SEND:
                    connection.release(pending)
                    if sending is Sending.HOLD:
                        self.queue.put_nowait(pending)
                    continue
                try:
                    await call.write(request)
                except asyncio.InvalidStateError:
                    # The agent ended the stream (it is draining): the cell
                    # goes back to the queue with the others in flight.
                    return

        async def receive() -> None:
            while True:
                receipt = await call.read()
                if receipt is grpc.aio.EOF:
                    return
                connection.received += 1
                key = attempt_key(receipt)
                if key is not None and connection.release(key):
                    self._answered.set()
                await self._feed.received(receipt, self.region, connection.address)

        tasks = {
            asyncio.create_task(send()),
            asyncio.create_task(write()),
            asyncio.create_task(receive()),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            # A failed write or read ends the stream with its error.
            task.result()
