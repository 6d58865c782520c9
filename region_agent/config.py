"""The region agent's configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from beacon.regions import KNOWN_REGIONS, canonical_region
from beacon.secret_files import check_header_secret
from beacon.settings import (
    ConfigError,
    EnvVarName,
    ModelMap,
    ServerSettings,
    load_settings,
)
from beacon.tls import TlsFiles
from beacon.urls import check_host_port, check_http_url


class AgentConfig(ServerSettings):
    """Everything an agent needs; the router URL comes from here only.

    File < BEACON_AGENT_* environment < flags; see `load_settings`.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="BEACON_AGENT_", allow_inf_nan=False
    )

    region: str = Field(description="Canonical region this agent serves.")
    router_url: str = Field(
        description="Base URL of the hybrid router, or the API base of an "
        "OpenAI-compatible server (e.g. http://127.0.0.1:11434/v1)."
    )
    router_kind: Literal["hybrid", "openai"] = Field(
        default="hybrid",
        description="hybrid: POST /inference; openai: POST /chat/completions.",
    )
    model_map: ModelMap = Field(
        default_factory=dict,
        description="openai only: the name the server knows a Beacon model by.",
    )
    api_key_env: EnvVarName | None = Field(
        default=None,
        description="openai only: variable holding the server's bearer token.",
    )
    signing_key: Path = Field(description="Ed25519 private key (PEM, mode 0600).")
    listen: str = Field(default="127.0.0.1:50061", description="host:port to serve on.")
    agent_id: str = Field(
        default="", description="Defaults to agent-<region>-<key id prefix>."
    )
    capacity: int = Field(default=16, ge=1, le=1024, description="Cells at once.")
    max_router_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Upper bound on one router call."
    )
    max_output_chars: int = Field(
        default=100_000, ge=1, description="Longer answers are truncated."
    )
    receipt_cache_size: int = Field(
        default=200_000, ge=1, description="Signed receipts kept for replays."
    )
    receipt_cache_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Bytes of kept receipts."
    )
    ready_file: Path | None = None
    receipts_file: Path | None = Field(
        default=None,
        description="SQLite file keeping signed receipts, so a restarted agent "
        "replays them instead of calling the router again.",
    )
    receipt_retention_hours: float = Field(
        default=48.0, gt=0, description="How long kept receipts are replayable."
    )
    tls: TlsFiles | None = Field(
        default=None,
        description="Mutual TLS: this agent's certificate (naming its region), "
        "its key, and the CA that signs the coordinator's certificate.",
    )

    @field_validator("region")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_region(value, KNOWN_REGIONS)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_host_port(value, "listen address")

    @field_validator("router_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value, "router URL")

    def api_key(self) -> str | None:
        """The bearer token named by `api_key_env`; raises ConfigError if unset."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ConfigError(
                f"api_key_env: ${self.api_key_env} is not set (it should hold the "
                "OpenAI-compatible server's API key)"
            )
        try:
            return check_header_secret(key, f"api_key_env: ${self.api_key_env}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def agent_id_for(self, key_id: str) -> str:
        """The configured id, or one naming the region and the signing key,
        so replicas of a region are told apart in receipts and logs."""
        return self.agent_id or f"agent-{self.region}-{key_id.rsplit(':', 1)[-1][:8]}"


# Flags spelled differently from the setting they set.
FLAG_NAMES = {"router_url": "--router"}


def load_agent_config(path: Path | None, **flags: Any) -> AgentConfig:
    """The agent's settings from `path`, the environment and `flags` (None
    means not given); raises ConfigError naming the setting at fault."""
    return load_settings(AgentConfig, file=path, flags=flags, flag_names=FLAG_NAMES)
