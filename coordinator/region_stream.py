"""One region's side of a job: a bidirectional Execute stream per agent replica.

Each replica gets at most its advertised capacity of cells in flight. A lost
stream puts its unanswered cells back in the region's queue, with the same
attempt number, and reconnects with backoff; agents answer a repeated attempt
with the receipt they already signed, so nothing runs twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError

from beacon.channels import client_options
from beacon.signing import PublicKey
from beacon.v1 import (
    receipt_pb2,
    region_agent_service_pb2,
    region_agent_service_pb2_grpc,
)

logger = logging.getLogger(__name__)

DESCRIBE_TIMEOUT_SECONDS = 10.0
RECONNECT_FIRST_SECONDS = 0.2

Pending = tuple[str, int]


class AgentRefused(Exception):
    """An agent that must not receive this region's cells."""


class CellFeed(Protocol):
    """What a region stream needs from the job it serves."""

    def request_for(self, pending: Pending) -> receipt_pb2.ExecuteRequest | None:
        """The request to send, or None when that attempt is no longer wanted."""

    async def sent(self, pending: Pending, agent_address: str) -> None: ...

    async def received(
        self, receipt: receipt_pb2.Receipt, region: str, agent_address: str
    ) -> None: ...


@dataclass(frozen=True)
class Replica:
    address: str
    pinned_key: PublicKey


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


class RegionStream:
    def __init__(
        self,
        job_id: str,
        region: str,
        replicas: Sequence[Replica],
        feed: CellFeed,
        reconnect_max_seconds: float,
    ) -> None:
        self.job_id = job_id
        self.region = region
        self._replicas = list(replicas)
        self._feed = feed
        self._reconnect_max = reconnect_max_seconds
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.last_error = ""
        self.connected_replicas = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for replica in self._replicas:
            self._tasks.append(
                asyncio.create_task(
                    self._keep_connected(replica),
                    name=f"region-stream {self.job_id} {self.region} {replica.address}",
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _keep_connected(self, replica: Replica) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            served = 0
            try:
                served = await self._serve(replica)
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
                logger.warning(
                    "stream lost job_id=%s region=%s agent=%s code=%s",
                    self.job_id,
                    self.region,
                    replica.address,
                    exc.code().name,
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
            if served:
                delay = RECONNECT_FIRST_SECONDS
            # Full jitter keeps replicas of a restarted agent from reconnecting
            # in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, self._reconnect_max)

    async def _serve(self, replica: Replica) -> int:
        """Run one stream until it ends; returns how many receipts it carried."""
        async with grpc.aio.insecure_channel(
            replica.address, options=client_options()
        ) as channel:
            stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
            description = await stub.Describe(
                region_agent_service_pb2.DescribeRequest(),
                timeout=DESCRIBE_TIMEOUT_SECONDS,
            )
            self._check_agent(replica, description)
            capacity = max(1, description.capacity)
            logger.info(
                "stream open job_id=%s region=%s agent=%s capacity=%d",
                self.job_id,
                self.region,
                replica.address,
                capacity,
            )
            in_flight: dict[Pending, Pending] = {}
            call = stub.Execute()
            self.connected_replicas += 1
            try:
                return await self._pump(call, replica.address, capacity, in_flight)
            finally:
                self.connected_replicas -= 1
                call.cancel()
                for pending in in_flight.values():
                    self.queue.put_nowait(pending)
                if in_flight:
                    logger.info(
                        "requeued job_id=%s region=%s cells=%d",
                        self.job_id,
                        self.region,
                        len(in_flight),
                    )

    def _check_agent(
        self, replica: Replica, description: region_agent_service_pb2.DescribeResponse
    ) -> None:
        if description.region != self.region:
            raise AgentRefused(
                f"agent {replica.address} serves {description.region!r}, "
                f"not {self.region!r}; fix the coordinator's configuration"
            )
        if (
            description.key_id != replica.pinned_key.key_id
            or description.public_key != replica.pinned_key.raw
        ):
            raise AgentRefused(
                f"agent {replica.address} signs with {description.key_id!r}, but "
                f"{replica.pinned_key.key_id!r} is pinned for it"
            )

    async def _pump(
        self,
        call: grpc.aio.StreamStreamCall,
        address: str,
        capacity: int,
        in_flight: dict[Pending, Pending],
    ) -> int:
        slots = asyncio.Semaphore(capacity)
        received = 0

        async def send() -> None:
            while True:
                await slots.acquire()
                pending = await self.queue.get()
                request = self._feed.request_for(pending)
                if request is None:
                    slots.release()
                    continue
                in_flight[pending] = pending
                await self._feed.sent(pending, address)
                await call.write(request)

        async def receive() -> None:
            nonlocal received
            while True:
                receipt = await call.read()
                if receipt is grpc.aio.EOF:
                    return
                received += 1
                key = attempt_key(receipt)
                if key is not None and in_flight.pop(key, None) is not None:
                    slots.release()
                await self._feed.received(receipt, self.region, address)

        tasks = {asyncio.create_task(send()), asyncio.create_task(receive())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            # A failed write or read ends the stream with its error.
            task.result()
        return received
