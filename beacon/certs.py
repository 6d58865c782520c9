"""A deployment's own certificate authority and certificates.

The coordinator's certificate serves clients (TLS) and is its client
certificate towards agents (mutual TLS). Each agent's certificate names its
region as the DNS name `<region>.region.beacon.internal`; the coordinator
connects to an agent expecting exactly that name, so an agent holding
another region's certificate fails the handshake and never gets a cell.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from beacon.secret_files import read_private_bytes, write_private_bytes

REGION_NAME_SUFFIX = ".region.beacon.internal"
COORDINATOR_NAME = "coordinator.beacon.internal"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
VALID_DAYS = 365

Private = ec.EllipticCurvePrivateKey


def region_server_name(region: str) -> str:
    """The name an agent's certificate must carry to serve `region`."""
    return region + REGION_NAME_SUFFIX


def regions_named(cert: x509.Certificate) -> list[str]:
    """The regions a certificate names (normally one, or none)."""
    return [
        name.removesuffix(REGION_NAME_SUFFIX)
        for name in dns_names(cert)
        if name.endswith(REGION_NAME_SUFFIX)
    ]


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


@dataclass(frozen=True)
class Authority:
    key: Private
    cert: x509.Certificate


def _name(common_name: str, unit: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Beacon deployment")]
    if unit:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


def _general_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _builder(
    subject: x509.Name, issuer: x509.Name, key: Private
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def new_authority() -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Beacon deployment CA")
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(
    ca: Authority,
    common_name: str,
    names: tuple[str, ...],
    *,
    unit: str = "",
    client: bool = False,
) -> tuple[Private, x509.Certificate]:
    """A leaf certificate for a server (and a client too when `client`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = (
        _builder(_name(common_name, unit), ca.cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(_general_names(names)), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return key, cert


def write_pair(
    directory: Path, stem: str, key: Private, cert: x509.Certificate
) -> None:
    """`<stem>.key` (mode 0600) and `<stem>.crt`, both PEM."""
    write_private_bytes(
        directory / f"{stem}.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    (directory / f"{stem}.crt").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
    )


def load_authority(directory: Path) -> Authority:
    key = serialization.load_pem_private_key(
        read_private_bytes(directory / "ca.key", "CA key"), password=None
    )
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'ca.key'} is not the CA key this tool writes")
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    return Authority(key, cert)


def create_deployment_certificates(
    directory: Path, regions: tuple[str, ...], hosts: tuple[str, ...]
) -> list[Path]:
    """A CA (reused when `directory` has one), the coordinator's certificate
    and one per region's agents; returns the certificate files written."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "ca.key").exists():
        ca = load_authority(directory)
    else:
        ca = new_authority()
        write_pair(directory, "ca", ca.key, ca.cert)
    all_hosts = tuple(dict.fromkeys((*DEFAULT_HOSTS, *hosts)))
    written = [directory / "ca.crt"]
    key, cert = issue(
        ca, "beacon coordinator", (COORDINATOR_NAME, *all_hosts), client=True
    )
    write_pair(directory, "coordinator", key, cert)
    written.append(directory / "coordinator.crt")
    for region in regions:
        key, cert = issue(
            ca,
            f"beacon agent {region}",
            (region_server_name(region), *all_hosts),
            unit=region,
        )
        write_pair(directory, f"agent-{region}", key, cert)
        written.append(directory / f"agent-{region}.crt")
    return written
