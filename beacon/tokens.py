"""Bearer tokens for the coordinator: roles, the tokens file, hashing.

The tokens file is YAML, readable by its owner only:

    tokens:
      - {name: ci, role: submit, sha256: <hex SHA-256 of the token>}
      - {name: dashboard, role: read, token: <the token itself>}

Storing the SHA-256 is preferred: the file then holds nothing a reader
could present. Tokens are random 256-bit strings, so a plain hash is enough.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from beacon.secret_files import (
    SecretFileError,
    check_private_file,
    read_private_bytes,
    write_private_bytes,
)
from beacon.yamlfiles import load_yaml

TOKEN_ENV = "BEACON_TOKEN"


class Role(enum.Enum):
    """What a token may do: read jobs, or also submit and cancel them."""

    READ = "read"
    SUBMIT = "submit"


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    sha256: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "bct_" + secrets.token_urlsafe(32)


def _entry(raw: Any, where: str) -> TokenEntry:
    if not isinstance(raw, dict):
        raise SecretFileError(f"{where}: expected a mapping with name, role, sha256")
    unknown = set(raw) - {"name", "role", "sha256", "token"}
    if unknown:
        raise SecretFileError(f"{where}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SecretFileError(f"{where}.name: give every token a name")
    try:
        role = Role(raw.get("role"))
    except ValueError:
        raise SecretFileError(
            f"{where}.role: must be 'read' or 'submit' (read, submit and cancel)"
        ) from None
    digest, plain = raw.get("sha256"), raw.get("token")
    if (digest is None) == (plain is None):
        raise SecretFileError(f"{where}: give exactly one of sha256 or token")
    if plain is not None:
        if not isinstance(plain, str) or len(plain) < 16:
            raise SecretFileError(f"{where}.token: must be at least 16 characters")
        digest = token_digest(plain)
    if not isinstance(digest, str) or len(digest) != 64:
        raise SecretFileError(f"{where}.sha256: must be 64 hex characters")
    try:
        bytes.fromhex(digest)
    except ValueError:
        raise SecretFileError(f"{where}.sha256: must be 64 hex characters") from None
    return TokenEntry(name, role, digest.lower())


def load_tokens(path: Path) -> dict[str, TokenEntry]:
    """The tokens of a file, by digest; refuses a file others can read."""
    text = read_private_bytes(path, "tokens file")
    try:
        data = load_yaml(text.decode("utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        # The parser's own message quotes the line, which may hold a token.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SecretFileError(f"tokens file {path} is not valid YAML{where}") from None
    raw_entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(raw_entries, list):
        raise SecretFileError(f"tokens file {path}: expected `tokens:` with a list")
    entries: dict[str, TokenEntry] = {}
    for i, raw in enumerate(raw_entries):
        entry = _entry(raw, f"{path}: tokens[{i}]")
        if entry.sha256 in entries:
            raise SecretFileError(f"{path}: tokens[{i}] repeats another token")
        entries[entry.sha256] = entry
    return entries


def add_token(path: Path, name: str, role: Role) -> str:
    """Create a token, store its SHA-256 in `path` (mode 0600), return it."""
    data: dict[str, Any] = {"tokens": []}
    if path.exists():
        check_private_file(path, "tokens file")
        load_tokens(path)
        data = load_yaml(path.read_text(encoding="utf-8")) or data
    if any(entry.get("name") == name for entry in data["tokens"]):
        raise SecretFileError(f"{path} already has a token named {name!r}")
    token = new_token()
    data["tokens"].append(
        {"name": name, "role": role.value, "sha256": token_digest(token)}
    )
    write_private_bytes(path, yaml.safe_dump(data, sort_keys=False).encode("utf-8"))
    return token


def read_token_file(path: Path) -> str:
    """A client's token, kept alone in a file readable by its owner only."""
    token = read_private_bytes(path, "token file").decode("utf-8").strip()
    if not token:
        raise SecretFileError(f"token file {path} is empty")
    return token
