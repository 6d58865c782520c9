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
        raise ValueError(f"invalid {what}: {exc}") from exc
    if parsed.userinfo:
        # The URL ends up in logs, receipts and `beacon config`; a password
        # in it would too. The URL is not quoted here for the same reason.
        raise ValueError(
            f"{what} must not carry a user name or password; give an API key "
            "through an environment variable instead"
        )
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{what} {url!r} must be http://HOST[:PORT] or https://...")
    if parsed.port is not None and not 0 < parsed.port <= MAX_PORT:
        raise ValueError(f"{what} {url!r} has port {parsed.port}, outside 1-{MAX_PORT}")
    return url.rstrip("/")


def check_host_port(value: str, what: str) -> str:
    """Return `value` if it is HOST:PORT with a port from 0 to 65535, else
    raise ValueError naming `what` (e.g. "listen address")."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > MAX_PORT:
        raise ValueError(
            f"{what} {value!r} must be HOST:PORT with a port from 0 to {MAX_PORT}, "
            "e.g. 127.0.0.1:50051 or [::1]:50051"
        )
    return value
