"""Which region an agent's TLS certificate names, to explain a refusal.

The coordinator's gRPC channel to an agent accepts only a certificate that
names the agent's configured region, so a wrong certificate shows up as a
failed handshake. This reads the certificate the agent presents, once, so
the log can say which region it names instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from cryptography import x509

from beacon.certs import regions_named
from beacon.tls import TlsFiles

logger = logging.getLogger(__name__)

PEEK_TIMEOUT_SECONDS = 3.0


def _context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    # The point is to read a name that does not match, so names are not checked
    # here; the chain still has to come from the deployment's CA.
    context.check_hostname = False
    context.load_cert_chain(str(tls.cert), str(tls.key))
    context.set_alpn_protocols(["h2"])
    return context


class NoHandshake(Exception):
    """The agent answered, but not with a certificate from the deployment's CA."""


async def presented_regions(address: str, tls: TlsFiles) -> list[str] | None:
    """The regions the agent's certificate names; None when it cannot be
    reached at all. Raises NoHandshake when TLS itself fails."""
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host.strip("[]"), int(port), ssl=_context(tls), server_hostname=None
            ),
            PEEK_TIMEOUT_SECONDS,
        )
    except ssl.SSLError as exc:
        raise NoHandshake(str(exc)) from exc
    except (OSError, TimeoutError, ValueError) as exc:
        logger.debug("no certificate read from agent=%s: %s", address, exc)
        return None
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    if not der:
        raise NoHandshake("no certificate presented")
    return regions_named(x509.load_der_x509_certificate(der))


async def certificate_problem(address: str, region: str, tls: TlsFiles) -> str:
    """Why the agent's certificate cannot serve `region` ("" if it names it)."""
    try:
        named = await presented_regions(address, tls)
    except NoHandshake as exc:
        return (
            f"agent {address} fails the TLS handshake ({exc}); it needs a "
            "certificate from the deployment's CA and to accept the coordinator's"
        )
    if named is None:
        return ""
    if region not in named:
        shown = ", ".join(named) if named else "no region"
        return (
            f"agent {address} presents a certificate for {shown}, not {region}; "
            "it gets none of this region's cells (give it the region's "
            "certificate from `beacon certs`)"
        )
    return ""
