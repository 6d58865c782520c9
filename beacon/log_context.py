"""Ids of the job and cell being worked on, attached to every log line.

Each job runs in its own task and each cell attempt in its own task, so a
context variable set there reaches every line logged on their behalf,
including lines of shared code such as the router client.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType

# The ids a line may carry, in the order they are shown.
ID_KEYS = ("job_id", "cell_id", "attempt", "region", "agent")

_ids: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "beacon_log_ids", default=MappingProxyType({})
)


def current() -> dict[str, str]:
    return dict(_ids.get())


@contextlib.contextmanager
def ids(**values: object) -> Iterator[None]:
    """Add ids for the lines logged inside the block (and tasks it starts)."""
    token = _ids.set({**_ids.get(), **{k: str(v) for k, v in values.items()}})
    try:
        yield
    finally:
        _ids.reset(token)


def context_with(**values: object) -> contextvars.Context:
    """A copy of the current context with more ids, for `create_task`."""
    context = contextvars.copy_context()
    context.run(_ids.set, {**_ids.get(), **{k: str(v) for k, v in values.items()}})
    return context


class IdsFilter(logging.Filter):
    """Puts the ids in force on the record, unless the call gave its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True
