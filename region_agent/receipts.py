"""Signing receipts, and answering a repeated attempt with the same receipt."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from beacon.digests import sha256_hex
from beacon.signing import SigningKey
from beacon.v1 import receipt_pb2
from beacon.write_outage import WriteOutage

logger = logging.getLogger(__name__)

# (job id, cell id, attempt, digest of what the attempt asks for)
AttemptKey = tuple[str, str, int, str]
# Executes the attempt; and makes its failure receipt for when the answer
# cannot be kept.
Produce = Callable[[], Awaitable[receipt_pb2.Receipt]]
Unkept = Callable[[], receipt_pb2.Receipt]


def attempt_key(request: receipt_pb2.ExecuteRequest) -> AttemptKey:
    """Identifies an attempt and everything that shapes its answer.

    A request that reuses ids with another prompt, model or settings (a
    second deployment reusing a job id, say) is a different attempt and is
    executed, never answered with a receipt made for something else.
    """
    shape = "|".join(
        (
            request.region,
            request.model,
            request.question_id,
            str(request.sample),
            request.prompt_sha256,
            repr(request.temperature),
            str(request.max_tokens),
            request.job_token,
        )
    )
    return (request.job_id, request.cell_id, request.attempt, sha256_hex(shape))


def seal(body: receipt_pb2.ReceiptBody, key: SigningKey) -> receipt_pb2.Receipt:
    """Serialize the body once and sign exactly those bytes."""
    data = body.SerializeToString(deterministic=True)
    return receipt_pb2.Receipt(body=data, signature=key.sign(data), key_id=key.key_id)


class DurableReceipts(Protocol):
    """Receipts kept where a restarted agent finds them again."""

    async def get(self, key: AttemptKey) -> bytes | None: ...

    async def put(self, key: AttemptKey, receipt: bytes) -> None: ...

    @property
    def outage(self) -> WriteOutage: ...


class ReceiptBook:
    """One execution per (job, cell, attempt): a repeat gets the first receipt.

    A repeat that arrives while the first is still running waits for it, so
    a coordinator that re-sends after a reconnect never causes a second call.
    Receipts are kept in memory, oldest dropped first, up to `capacity`
    receipts and `max_bytes` of them; with `durable`, also on disk before
    they are sent, so they outlive the agent's process.

    With `durable`, only a kept receipt goes out: one that could not be
    written (or would not be, while the file takes no writes) is replaced by
    `unkept()`, a retryable failure, since after a restart the attempt would
    run again and could be answered differently.
    """

    def __init__(
        self, capacity: int, max_bytes: int, durable: DurableReceipts | None = None
    ) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._durable = durable
        self._bytes = 0
        self._done: OrderedDict[AttemptKey, receipt_pb2.Receipt] = OrderedDict()
        self._running: dict[AttemptKey, asyncio.Future[receipt_pb2.Receipt]] = {}

    async def once(
        self, key: AttemptKey, produce: Produce, unkept: Unkept
    ) -> receipt_pb2.Receipt:
        while True:
            stored = self._done.get(key)
            if stored is not None:
                logger.info(
                    "replayed receipt job_id=%s cell_id=%s attempt=%d", *key[:3]
                )
                return stored
            running = self._running.get(key)
            if running is None:
                break
            await asyncio.wait([running])

        future: asyncio.Future[receipt_pb2.Receipt] = (
            asyncio.get_running_loop().create_future()
        )
        self._running[key] = future
        try:
            receipt = await self._kept(key)
            if receipt is None:
                receipt = await self._produce_kept(key, produce, unkept)
            self._remember(key, receipt)
            future.set_result(receipt)
            return receipt
        finally:
            # A cancelled or crashed execution is not recorded: whoever waits
            # for the same attempt then runs it afresh.
            if not future.done():
                future.cancel()
            del self._running[key]

    async def _kept(self, key: AttemptKey) -> receipt_pb2.Receipt | None:
        """The receipt kept on disk for `key` (signed before a restart)."""
        if self._durable is None:
            return None
        data = await self._durable.get(key)
        if data is None:
            return None
        logger.info("replayed kept receipt job_id=%s cell_id=%s attempt=%d", *key[:3])
        return receipt_pb2.Receipt.FromString(data)

    async def _produce_kept(
        self, key: AttemptKey, produce: Produce, unkept: Unkept
    ) -> receipt_pb2.Receipt:
        durable = self._durable
        if durable is None:
            return await produce()
        if not durable.outage.writable:
            # No router call whose answer could not be kept.
            return unkept()
        receipt = await produce()
        try:
            await durable.put(key, receipt.SerializeToString())
        except Exception:
            # The store's outage log says why, once for all cells.
            logger.debug("receipt not kept job_id=%s cell_id=%s attempt=%d", *key[:3])
            return unkept()
        return receipt

    def _remember(self, key: AttemptKey, receipt: receipt_pb2.Receipt) -> None:
        self._done[key] = receipt
        self._bytes += receipt.ByteSize()
        while len(self._done) > self._capacity or self._bytes > self._max_bytes:
            _, dropped = self._done.popitem(last=False)
            self._bytes -= dropped.ByteSize()
