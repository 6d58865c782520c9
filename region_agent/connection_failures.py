"""What went wrong with the connection to the router, and whether trying
again can help.

A certificate the agent rejects, or TLS spoken to one side only, fails the
same way on every try: those are configuration faults, reported as not
retryable with what to change. A refused connection, one the router closed
before replying and one lost during the call are retryable, each said as
what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, TypeVar
from urllib.parse import urlsplit

import httpx

from region_agent.router_reply import (
    ROUTER_UNREACHABLE,
    STAGE_CALL,
    CallProgress,
    Outcome,
    failed,
)

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseException)

ROUTER_TLS_REJECTED: Final = "ROUTER_TLS_REJECTED"
ROUTER_TLS_MISMATCH: Final = "ROUTER_TLS_MISMATCH"
ROUTER_CONNECTION_CLOSED: Final = "ROUTER_CONNECTION_CLOSED"
ROUTER_CONNECTION_LOST: Final = "ROUTER_CONNECTION_LOST"
# How long a check that a plain-HTTP port in fact speaks TLS may take.
TLS_PROBE_SECONDS: Final = 2.0
# The first bytes of a TLS record (alert or handshake), as a TLS server
# answers a plain-HTTP request.
_TLS_RECORD_STARTS: Final = ("\\x15\\x03", "\\x16\\x03")
CA_HINT: Final = (
    "give the agent the CA that signs it: set SSL_CERT_FILE (a PEM bundle) or "
    "SSL_CERT_DIR in the agent's environment (--tls-ca names only the CA of "
    "the coordinator's certificate)"
)


@dataclass(frozen=True)
class ConnectionFailure:
    code: str
    message: str
    retryable: bool


async def describe(
    exc: httpx.HTTPError, url: str, progress: CallProgress, time_left: float
) -> ConnectionFailure:
    """What `exc`, raised while calling `url`, means for the call; a check
    of the port may take up to `time_left` seconds."""
    verify = _cause(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        return ConnectionFailure(
            ROUTER_TLS_REJECTED,
            f"the router's TLS certificate was rejected at {url}: "
            f"{(verify.verify_message or verify.reason or '').rstrip('.')}; "
            + _certificate_hint(verify, url),
            retryable=False,
        )
    tls_error = _cause(exc, ssl.SSLError)
    if tls_error is not None and not isinstance(
        tls_error, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return ConnectionFailure(
            ROUTER_TLS_MISMATCH,
            f"TLS with the router at {url} failed ({tls_error.reason or tls_error}): "
            "the port probably serves plain HTTP; if so, the router URL should "
            "start with http://",
            retryable=False,
        )
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailure(
            ROUTER_UNREACHABLE,
            f"cannot reach the router at {url}: {_reason(exc)}",
            retryable=True,
        )
    if _tls_record_in(exc) or await _plain_http_to_tls(url, progress, time_left):
        return ConnectionFailure(
            ROUTER_TLS_MISMATCH,
            f"the router at {url} speaks TLS on that port, and the agent spoke "
            "plain HTTP to it: the router URL should start with https://",
            retryable=False,
        )
    if progress.status:
        return ConnectionFailure(
            ROUTER_CONNECTION_LOST,
            f"the connection to the router at {url} was lost while its reply "
            f"was read (HTTP {progress.status} headers arrived, the body did "
            f"not complete): {_reason(exc)}",
            retryable=True,
        )
    if not progress.new_connection:
        return ConnectionFailure(
            ROUTER_CONNECTION_CLOSED,
            f"the router at {url} closed the connection before replying (a "
            "kept-alive connection, reused for this call, that the router had "
            f"closed or closed now): {_reason(exc)}",
            retryable=True,
        )
    sent = "after the request was sent" if progress.request_sent else "while sending"
    return ConnectionFailure(
        ROUTER_CONNECTION_LOST,
        f"the connection to the router at {url} was lost during the call, "
        f"{sent} and before any reply (the router may have stopped or "
        f"restarted): {_reason(exc)}",
        retryable=True,
    )


def outcome(failure: ConnectionFailure, progress: CallProgress) -> Outcome:
    return failed(
        failure.code,
        failure.message,
        retryable=failure.retryable,
        stage=STAGE_CALL,
        http_status=progress.status,
    )


def _certificate_hint(error: ssl.SSLCertVerificationError, url: str) -> str:
    if error.verify_code in (62, 64):  # host name or IP address mismatch
        host = urlsplit(url).hostname
        return (
            f"the certificate does not name {host!r}: use a host name the "
            "certificate names in the router URL, or give the router a "
            "certificate that names this one"
        )
    if error.verify_code in (9, 10):  # not yet valid, expired
        return "renew the router's certificate"
    return CA_HINT


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then each exception that led to it (httpx wraps the real one)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of `kind` in the chain that led to `exc`."""
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def _reason(exc: BaseException) -> str:
    """The first explanation in the chain, as httpx often wraps an empty one."""
    return next(
        (f"{type(e).__name__}: {e}" for e in _chain(exc) if str(e)),
        type(exc).__name__,
    )


def _tls_record_in(exc: httpx.HTTPError) -> bool:
    """A TLS server's answer read as an HTTP status line."""
    return isinstance(exc, httpx.RemoteProtocolError) and any(
        start in str(exc) for start in _TLS_RECORD_STARTS
    )


async def _plain_http_to_tls(
    url: str, progress: CallProgress, time_left: float
) -> bool:
    """Whether a plain-HTTP port that closed a new connection without a word
    completes a TLS handshake, as a TLS-only server closes on plain HTTP."""
    parts = urlsplit(url)
    if (
        parts.scheme != "http"
        or not progress.new_connection
        or parts.hostname is None
        or time_left <= 0
    ):
        return False
    context = ssl.create_default_context()
    # Only whether the port speaks TLS is asked, not whom it proves to be.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        async with asyncio.timeout(min(TLS_PROBE_SECONDS, time_left)):
            _, writer = await asyncio.open_connection(
                parts.hostname, parts.port or 80, ssl=context
            )
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    return True
