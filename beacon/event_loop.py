"""The event loop every Beacon process runs on.

uvloop where it is installed (it is a dependency on every platform it
supports): the agent and the coordinator spend much of each cell in the loop
itself (socket reads and writes, callbacks from gRPC's completion queue, task
switches), and uvloop does that work in C. Setting BEACON_EVENT_LOOP=asyncio
selects the standard library's loop instead, to compare or to debug.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from beacon.settings import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHOICE_VARIABLE = "BEACON_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for the chosen loop; None means asyncio's default."""
    choice = os.environ.get(CHOICE_VARIABLE, "uvloop").strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ConfigError(
            f"{CHOICE_VARIABLE}={choice!r}: choose one of {', '.join(CHOICES)}"
        )
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        logger.debug("uvloop is not installed here; running on asyncio's loop")
        return None
    return uvloop.new_event_loop


def check_choice() -> None:
    """Raise ConfigError now if the choice is not one of CHOICES, before a
    command has started anything."""
    loop_factory()


def check_choice_for(parser: argparse.ArgumentParser) -> None:
    """check_choice(), its refusal given as the parser's own usage error."""
    try:
        check_choice()
    except ConfigError as exc:
        parser.error(str(exc))


def name() -> str:
    """Which loop run() starts, for reports."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on the chosen loop."""
    try:
        factory = loop_factory()
    except ConfigError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
