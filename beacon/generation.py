"""The bounds of a cell's generation settings, one rule for a job spec (at
submit) and for an ExecuteRequest (at the agent): a value outside them is
refused, never clamped, so a receipt records what was asked."""

from __future__ import annotations

import logging
import math
from typing import Final

from beacon.numbers import exact

logger = logging.getLogger(__name__)

MIN_TEMPERATURE: Final = 0.0
MAX_TEMPERATURE: Final = 2.0
MAX_TOKENS_LIMIT: Final = 32768


def temperature_problem(value: float) -> str | None:
    """What is wrong with `value` as a temperature, or None."""
    if math.isnan(value):
        return (
            f"is not a number; give a temperature from {MIN_TEMPERATURE:g} "
            f"to {MAX_TEMPERATURE:g}"
        )
    if not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        return (
            f"{exact(value)} is outside {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}; "
            "give a temperature in that range"
        )
    return None


def max_tokens_problem(value: int) -> str | None:
    """What is wrong with `value` as a limit of tokens to generate, or None."""
    if value < 1:
        return (
            f"{value} is outside 1 to {MAX_TOKENS_LIMIT} (a limit of {value} "
            "tokens allows no answer); give a limit in that range"
        )
    if value > MAX_TOKENS_LIMIT:
        return (
            f"{value} is outside 1 to {MAX_TOKENS_LIMIT}, the most a cell may "
            "ask for; give a limit in that range"
        )
    return None
