"""Ed25519 keys for receipts: generation, files, key ids, sign and verify."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

logger = logging.getLogger(__name__)


class KeyFileError(ValueError):
    """A key file that cannot be used, with what to fix."""


def key_id_for(public_key_raw: bytes) -> str:
    """A short, stable id for a raw public key."""
    return "ed25519:" + hashlib.sha256(public_key_raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    # Both are asked for once per receipt; computed once per key.
    @cached_property
    def key_id(self) -> str:
        return key_id_for(self.raw)

    @cached_property
    def _verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    @classmethod
    def from_b64(cls, text: str) -> PublicKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError as exc:
            raise KeyFileError(f"public key is not valid base64: {exc}") from exc
        if len(raw) != 32:
            raise KeyFileError(
                f"public key must be 32 raw bytes (base64), got {len(raw)} bytes"
            )
        return cls(raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self._verifier.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """A private Ed25519 key with its public half and id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(raw)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, private_path: Path) -> Path:
        """Write the private key (mode 0600) and `<name>.pub` beside it."""
        private_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.private_pem())
        public_path = private_path.with_suffix(".pub")
        public_path.write_text(self.public.b64 + "\n", encoding="ascii")
        return public_path

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Load a PEM private key, refusing files that others can read."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError as exc:
            raise KeyFileError(
                f"signing key {path} does not exist; create one with `beacon keygen`"
            ) from exc
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"signing key {path} is not a file")
        if path.suffix == ".pub":
            raise KeyFileError(
                f"{path} is a public key; give the private key beside it "
                f"({path.with_suffix('.key').name} from `beacon keygen`)"
            )
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"signing key {path} is readable by others; run `chmod 600 {path}`"
            )
        try:
            private = serialization.load_pem_private_key(
                path.read_bytes(), password=None
            )
        except OSError as exc:
            raise KeyFileError(f"cannot read signing key {path}: {exc}") from exc
        except TypeError as exc:
            raise KeyFileError(
                f"signing key {path} is encrypted; Beacon needs an unencrypted "
                "key readable only by its owner (create one with `beacon keygen`)"
            ) from exc
        except ValueError as exc:
            raise KeyFileError(f"signing key {path} is not a PEM key: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(f"signing key {path} is not an Ed25519 key")
        return cls(private)


def load_public_key(value: str) -> PublicKey:
    """A public key given inline as base64, or as a path to a `.pub` file."""
    candidate = Path(value)
    if candidate.suffix == ".pub" or candidate.exists():
        try:
            return PublicKey.from_b64(candidate.read_text(encoding="ascii"))
        except FileNotFoundError as exc:
            raise KeyFileError(f"public key file {candidate} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read public key {candidate}: {exc}") from exc
    return PublicKey.from_b64(value)
