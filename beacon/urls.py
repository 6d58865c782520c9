"""Checking the HTTP base URLs Beacon is configured to call."""

from __future__ import annotations

import httpx

MAX_PORT = 65535


def check_http_url(url: str, what: str) -> str:
    """Return `url` without a trailing slash, or raise ValueError saying why
    `what` (e.g. "router URL") cannot be used."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid {what} {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{what} {url!r} must be http://HOST[:PORT] or https://...")
    if parsed.port is not None and not 0 < parsed.port <= MAX_PORT:
        raise ValueError(f"{what} {url!r} has port {parsed.port}, outside 1-{MAX_PORT}")
    return url.rstrip("/")
