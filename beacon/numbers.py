"""Numbers in messages, written as given.

A refusal that compares a value with a bound must show the digits that make
it fail: `2.00000001` rounded to `2` would read as within 0 to 2.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def exact(value: float) -> str:
    """The shortest text that reads back as `value` (no trailing `.0`)."""
    text = repr(float(value))
    return text.removesuffix(".0")
