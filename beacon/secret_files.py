"""Files that hold secrets: readable by their owner only, or refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(ValueError):
    """A secret file that cannot be used, with what to fix."""


def check_private_file(path: Path, what: str) -> None:
    """Refuse a missing file, a non-file, or one that others may read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise SecretFileError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise SecretFileError(f"cannot read {what} {path}: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise SecretFileError(f"{what} {path} is not a file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{what} {path} is readable by others; run `chmod 600 {path}`"
        )


def read_private_bytes(path: Path, what: str) -> bytes:
    check_private_file(path, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"cannot read {what} {path}: {exc}") from exc


def write_private_bytes(path: Path, data: bytes) -> None:
    """Create or replace `path` with mode 0600 from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An existing file keeps its mode through O_TRUNC; tighten it too.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def check_header_secret(value: str, where: str) -> str:
    """`value` if an HTTP header can carry it; else ValueError naming `where`
    (never the value: it is a secret)."""
    if not value.isascii() or not value.isprintable() or value != value.strip():
        raise ValueError(
            f"{where} holds characters an HTTP header cannot carry (a line "
            "break, surrounding spaces or non-ASCII text); write the key alone"
        )
    return value
