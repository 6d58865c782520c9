"""Parsing the router's command-line values; every error is one clear line."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from beacon.regions import ALIASES
from local_router.config import check_region_id

logger = logging.getLogger(__name__)


def region(text: str) -> str:
    """A canonical region id; the short aliases users type are mapped here."""
    alias = ALIASES.get(text.strip().upper())
    if alias is not None:
        return alias
    try:
        return check_region_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port (0-65535; 0 picks a free one)"
        )
    return value


def path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    return Path(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def region_value(text: str, what: str) -> tuple[str, str]:
    """Split `REGION=VALUE` (the value may itself contain '=')."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected REGION={what}, got {text!r}")
    return region(name), value


def upstream(text: str) -> tuple[str, str]:
    return region_value(text, "URL")


def api_key_env(text: str) -> tuple[str, str]:
    return region_value(text, "ENVVAR")


def upstream_timeout(text: str) -> tuple[str, float]:
    name, value = region_value(text, "SECONDS")
    timeout = seconds(value)
    if timeout == 0:
        raise argparse.ArgumentTypeError(f"the timeout in {text!r} must be above 0")
    return name, timeout


def model_map(text: str) -> tuple[str, str, str]:
    """Split `REGION:BEACON_MODEL=UPSTREAM_MODEL` (upstream names may hold ':')."""
    left, sep, upstream_model = text.partition("=")
    name, colon, beacon_model = left.partition(":")
    if not sep or not colon or not name or not beacon_model or not upstream_model:
        raise argparse.ArgumentTypeError(
            f"expected REGION:BEACON_MODEL=UPSTREAM_MODEL, got {text!r}"
        )
    return region(name), beacon_model, upstream_model


def fault_rate(text: str) -> tuple[str, float]:
    """Split `SHAPE=FRACTION`, a fraction from 0 to 1."""
    shape, sep, value = text.partition("=")
    if not sep or not shape:
        raise argparse.ArgumentTypeError(f"expected SHAPE=FRACTION, got {text!r}")
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"the fraction in {text!r} must be 0 to 1")
    return shape, rate
