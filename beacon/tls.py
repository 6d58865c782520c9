"""TLS for clients and mutual TLS between the coordinator and its agents.

Certificates come from `beacon certs`. Private keys are refused when others
can read them, like signing keys and token files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from beacon.certs import COORDINATOR_NAME, region_server_name
from beacon.channels import client_options
from beacon.handlers import (
    OPEN_METHOD_PREFIXES,
    Behaviour,
    HandlerInterceptor,
    replace_behaviour,
)
from beacon.secret_files import SecretFileError, check_private_file, read_private_bytes

logger = logging.getLogger(__name__)


class TlsFiles(BaseModel):
    """A certificate, its private key, and the CA that signs the peers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: Path = Field(description="CA certificate (PEM) that signs the peers.")
    cert: Path = Field(description="This server's certificate (PEM).")
    key: Path = Field(description="Its private key (PEM, mode 0600).")

    @field_validator("ca", "cert")
    @classmethod
    def _readable(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"certificate {value} does not exist")
        return value

    @field_validator("key")
    @classmethod
    def _private(cls, value: Path) -> Path:
        try:
            check_private_file(value, "TLS key")
        except SecretFileError as exc:
            raise ValueError(str(exc)) from exc
        return value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"cannot read certificate {path}: {exc}") from exc


def server_credentials(
    files: TlsFiles, *, require_client_cert: bool
) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(read_private_bytes(files.key, "TLS key"), _read(files.cert))],
        root_certificates=_read(files.ca) if require_client_cert else None,
        require_client_auth=require_client_cert,
    )


def agent_channel(address: str, region: str, tls: TlsFiles | None) -> grpc.aio.Channel:
    """A channel to an agent of `region`: with TLS, only a certificate from
    the deployment's CA that names that region is accepted."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=client_options())
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca),
        private_key=read_private_bytes(tls.key, "TLS key"),
        certificate_chain=_read(tls.cert),
    )
    options = [
        *client_options(),
        ("grpc.ssl_target_name_override", region_server_name(region)),
    ]
    return grpc.aio.secure_channel(address, credentials, options=options)


def client_channel(
    address: str, ca_cert: Path | None, interceptors: Sequence[object]
) -> grpc.aio.Channel:
    """A user's channel to the coordinator, over TLS when `ca_cert` is given."""
    if ca_cert is None:
        return grpc.aio.insecure_channel(
            address, options=client_options(), interceptors=interceptors
        )
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(ca_cert))
    return grpc.aio.secure_channel(
        address, credentials, options=client_options(), interceptors=interceptors
    )


def peer_names(context: grpc.aio.ServicerContext) -> list[str]:
    names = context.auth_context().get("x509_subject_alternative_name", [])
    return [name.decode("utf-8", "replace") for name in names]


class CoordinatorOnly(HandlerInterceptor):
    """An agent's calls are for its coordinator: under mutual TLS the peer's
    certificate must name the coordinator, not another agent."""

    def handler_for(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method = details.method
        if method.startswith(OPEN_METHOD_PREFIXES):
            return handler

        def wrap(
            behaviour: Behaviour, _request_streaming: bool, response_streaming: bool
        ) -> Behaviour:
            async def check(context: grpc.aio.ServicerContext) -> None:
                if COORDINATOR_NAME not in peer_names(context):
                    logger.warning("[%s] refused peer=%s", method, context.peer())
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        "only the coordinator's certificate may call this agent",
                    )

            async def unary(
                request: object, context: grpc.aio.ServicerContext
            ) -> object:
                await check(context)
                return await behaviour(request, context)

            async def streaming(
                request: object, context: grpc.aio.ServicerContext
            ) -> object:
                await check(context)
                async for response in behaviour(request, context):
                    yield response

            return streaming if response_streaming else unary

        return replace_behaviour(handler, wrap, handler.request_deserializer)
