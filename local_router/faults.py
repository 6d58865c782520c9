"""Faults the local router injects on demand, to show how Beacon copes.

Two sources, checked in this order for every call:

- rules, set at run time through `POST /faults`: the next `count` calls that
  match a rule's model, region and prompt text get its fault;
- rates, given at start-up (`--fault-rate SHAPE=FRACTION`): each call gets a
  fault at random with these probabilities, from a seeded generator so a run
  can be repeated.

Each shape is one way the real hybrid router is known to answer badly.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from local_router.schema import InferenceRequest

logger = logging.getLogger(__name__)

FaultShape = Literal[
    "transient",  # HTTP 200, success false, failure.transient true
    "permanent",  # HTTP 200, success false, failure.transient false
    "unavailable",  # HTTP 503 with a {"detail": ...} body
    "invalid",  # HTTP 422, as for a malformed request
    "not-found",  # HTTP 404, as when a path is wrong
    "not-json",  # HTTP 200 with an HTML body
    "other-region",  # a success served by a provider of another region
    "hang",  # no reply until the caller gives up
    "slow",  # an honest answer, after a cold start of SLOW_SECONDS
]
FAULT_SHAPES: Final[tuple[str, ...]] = get_args(FaultShape)


class FaultRule(BaseModel):
    """The next `count` calls matching every given field get `shape`."""

    model_config = ConfigDict(extra="forbid")

    shape: FaultShape
    count: int = Field(default=1, ge=1, le=1_000_000)
    model: str | None = None
    region: str | None = None
    prompt_contains: str | None = None

    def matches(self, request: InferenceRequest) -> bool:
        return (
            (self.model is None or self.model == request.model)
            and (self.region is None or self.region == request.region_preference)
            and (self.prompt_contains is None or self.prompt_contains in request.prompt)
        )


class FaultRules(BaseModel):
    """Body of `POST /faults`: rules added after those already waiting."""

    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(max_length=1000)


class FaultPlan:
    """Decides, call by call, which fault (if any) the router injects."""

    def __init__(self, rates: Mapping[str, float], seed: int | None = None) -> None:
        unknown = sorted(set(rates) - set(FAULT_SHAPES))
        if unknown:
            raise ValueError(
                f"unknown fault shapes {', '.join(unknown)}; "
                f"known: {', '.join(FAULT_SHAPES)}"
            )
        if any(rate < 0 for rate in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault rates must be 0 or more and add up to 1 at most")
        self._rates = [(shape, rate) for shape, rate in rates.items() if rate > 0]
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = []
        # Handlers run on one loop, but the plan is also read from tests'
        # threads through the app; a lock keeps counts exact either way.
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self._rates or self._rules)

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rule.model_copy() for rule in rules)
        logger.info("fault rules added: %d waiting", len(self._rules))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [rule.model_copy() for rule in self._rules]

    def choose(self, request: InferenceRequest) -> FaultShape | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(request):
                    rule.count -= 1
                    if rule.count == 0:
                        del self._rules[index]
                    return rule.shape
            draw = self._random.random()
        for shape, rate in self._rates:
            if draw < rate:
                return shape  # type: ignore[return-value]
            draw -= rate
        return None
