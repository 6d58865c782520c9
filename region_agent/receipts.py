"""Signing receipts, and answering a repeated attempt with the same receipt."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from beacon.signing import SigningKey
from beacon.v1 import receipt_pb2

logger = logging.getLogger(__name__)

AttemptKey = tuple[str, str, int]


def seal(body: receipt_pb2.ReceiptBody, key: SigningKey) -> receipt_pb2.Receipt:
    """Serialize the body once and sign exactly those bytes."""
    data = body.SerializeToString(deterministic=True)
    return receipt_pb2.Receipt(body=data, signature=key.sign(data), key_id=key.key_id)


class ReceiptBook:
    """One execution per (job, cell, attempt): a repeat gets the first receipt.

    A repeat that arrives while the first is still running waits for it, so
    a coordinator that re-sends after a reconnect never causes a second call.
    Receipts are kept, oldest dropped first, up to `capacity`.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._done: OrderedDict[AttemptKey, receipt_pb2.Receipt] = OrderedDict()
        self._running: dict[AttemptKey, asyncio.Future[receipt_pb2.Receipt]] = {}

    async def once(
        self,
        key: AttemptKey,
        produce: Callable[[], Awaitable[receipt_pb2.Receipt]],
    ) -> receipt_pb2.Receipt:
        while True:
            stored = self._done.get(key)
            if stored is not None:
                logger.info("replayed receipt job_id=%s cell_id=%s attempt=%d", *key)
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
            receipt = await produce()
            self._remember(key, receipt)
            future.set_result(receipt)
            return receipt
        finally:
            # A cancelled or crashed execution is not recorded: whoever waits
            # for the same attempt then runs it afresh.
            if not future.done():
                future.cancel()
            del self._running[key]

    def _remember(self, key: AttemptKey, receipt: receipt_pb2.Receipt) -> None:
        self._done[key] = receipt
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)
