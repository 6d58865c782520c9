"""Bearer tokens on every coordinator call except health and reflection.

A call without a token, or with one the coordinator does not know, is
UNAUTHENTICATED; a read-only token that submits, runs or cancels a job is
PERMISSION_DENIED. Tokens are compared by their SHA-256 and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import grpc

from beacon.handlers import OPEN_METHOD_PREFIXES, HandlerInterceptor, refusing
from beacon.tokens import Role, TokenEntry, token_digest

logger = logging.getLogger(__name__)

SUBMIT_METHODS = frozenset(
    f"/beacon.v1.CoordinatorService/{name}"
    for name in ("SubmitJob", "RunJob", "CancelJob")
)
HOW_TO_AUTHENTICATE = (
    "send `authorization: Bearer TOKEN` (beacon: BEACON_TOKEN or --token-file; "
    "grpcurl: -H 'authorization: Bearer TOKEN')"
)

Refusal = tuple[grpc.StatusCode, str]


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The token of an `authorization: Bearer ...` header, or ""."""
    for key, value in metadata or ():
        if key.lower() != "authorization" or not isinstance(value, str):
            continue
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    return ""


class TokenCheck:
    """Decides whether a call may go on; plain Python, no gRPC server needed."""

    def __init__(self, tokens: Mapping[str, TokenEntry]) -> None:
        self._tokens = dict(tokens)

    def refusal(
        self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None
    ) -> tuple[Refusal | None, str]:
        """(None, caller name) when allowed, else (status and message, "")."""
        if method.startswith(OPEN_METHOD_PREFIXES):
            return None, ""
        if not self._tokens:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "this coordinator has no tokens configured, so it refuses every "
                "call; its operator sets tokens_file (see `beacon token`)",
            ), ""
        token = bearer_token(metadata)
        if not token:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                f"this call needs a token: {HOW_TO_AUTHENTICATE}",
            ), ""
        entry = self._tokens.get(token_digest(token))
        if entry is None:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "the token is not known to this coordinator; ask its operator "
                "for one (`beacon token`)",
            ), ""
        if method in SUBMIT_METHODS and entry.role is not Role.SUBMIT:
            return (
                grpc.StatusCode.PERMISSION_DENIED,
                f"token {entry.name!r} is read-only; submitting, running and "
                "cancelling jobs needs a token with role submit",
            ), ""
        return None, entry.name


class TokenAuth(HandlerInterceptor):
    def __init__(self, tokens: Mapping[str, TokenEntry]) -> None:
        self._check = TokenCheck(tokens)
        if not tokens:
            logger.warning(
                "no tokens configured: every call except health and "
                "reflection is refused; set tokens_file"
            )

    def handler_for(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method = details.method
        refusal, caller = self._check.refusal(method, details.invocation_metadata)
        if refusal is None:
            if caller:
                logger.debug("[%s] caller=%s", method, caller)
            return handler
        code, message = refusal
        logger.info("[%s] refused %s", method, code.name)
        return refusing(handler, code, message)
