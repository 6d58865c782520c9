"""Which HTTP error statuses from a router or an upstream may pass.

A 5xx usually means the server failed this time; a few say it never will
serve the request as sent (501 Not Implemented, 505 HTTP Version Not
Supported), and a retry would only fail again the same way.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Final

logger = logging.getLogger(__name__)

PERMANENT_SERVER_ERRORS: Final = frozenset(
    {
        HTTPStatus.NOT_IMPLEMENTED,
        HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
        HTTPStatus.VARIANT_ALSO_NEGOTIATES,
        HTTPStatus.LOOP_DETECTED,
        HTTPStatus.NOT_EXTENDED,
        HTTPStatus.NETWORK_AUTHENTICATION_REQUIRED,
    }
)


def may_pass(status: int) -> bool:
    """A server error or rate limit that a later attempt may not meet."""
    return status == HTTPStatus.TOO_MANY_REQUESTS or (
        status >= 500 and status not in PERMANENT_SERVER_ERRORS
    )


def permanent_note(status: int) -> str:
    """What to add after "HTTP <status>" in a message about a permanent one."""
    if status not in PERMANENT_SERVER_ERRORS:
        return ""
    return f" ({HTTPStatus(status).phrase}), which a retry will not change"
