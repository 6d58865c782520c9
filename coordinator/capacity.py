"""Each agent's advertised capacity, shared by every job that uses the agent.

Several jobs may stream to one agent at once; together they keep no more of
its cells in flight than it advertises.
"""

from __future__ import annotations

import asyncio


class AgentCapacity:
    def __init__(self) -> None:
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}

    def slots(self, address: str, capacity: int) -> asyncio.Semaphore:
        """The slots of the agent at `address`; an agent that comes back with
        another capacity gets a fresh budget of that size."""
        key = (address, capacity)
        semaphore = self._slots.get(key)
        if semaphore is None:
            self._slots = {k: v for k, v in self._slots.items() if k[0] != address}
            semaphore = asyncio.Semaphore(capacity)
            self._slots[key] = semaphore
        return semaphore
