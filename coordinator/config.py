"""The coordinator's configuration: where it listens, its store, its agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from beacon.jobspec import DEFAULT_MAX_CELLS
from beacon.numbers import exact
from beacon.regions import KNOWN_REGIONS, canonical_region
from beacon.settings import ConfigError, ServerSettings, load_settings
from beacon.signing import KeyFileError, PublicKey, load_public_key
from beacon.tls import TlsFiles
from beacon.urls import check_host_port
from coordinator.analysis.thresholds import AnalysisThresholds

__all__ = ["AgentEndpoint", "ConfigError", "CoordinatorConfig", "RegionConfig"]


class AgentEndpoint(BaseModel):
    """One agent replica and the public key pinned for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(description="host:port of the agent's gRPC server.")
    public_key: str = Field(description="Base64 Ed25519 public key, or a .pub path.")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_host_port(value, "agent address")

    @field_validator("public_key")
    @classmethod
    def _loadable(cls, value: str) -> str:
        try:
            load_public_key(value)
        except KeyFileError as exc:
            raise ValueError(str(exc)) from exc
        return value

    def pinned_key(self) -> PublicKey:
        return load_public_key(self.public_key)


class RegionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: list[AgentEndpoint] = Field(min_length=1)


class CoordinatorConfig(ServerSettings):
    """File < BEACON_COORDINATOR_* environment < flags; see `load_settings`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="BEACON_COORDINATOR_",
        allow_inf_nan=False,
    )

    listen: str = Field(default="127.0.0.1:50051", description="host:port to serve on.")
    store: Path = Field(default=Path(".beacon/beacon.db"), description="SQLite file.")
    regions: dict[str, RegionConfig] = Field(description="Agents of each region.")
    max_cells_per_job: int = Field(default=DEFAULT_MAX_CELLS, ge=1)
    retry_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles per attempt."
    )
    retry_max_seconds: float = Field(default=30.0, gt=0)
    reconnect_max_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait between agent reconnects."
    )
    ready_file: Path | None = None
    analysis: AnalysisThresholds = Field(
        default_factory=AnalysisThresholds,
        description="Thresholds of the cross-region analysis in each JobResult.",
    )
    tokens_file: Path | None = Field(
        default=None,
        description="YAML file of bearer tokens and roles (mode 0600); "
        "without it every call except health and reflection is refused.",
    )
    tls: TlsFiles | None = Field(
        default=None,
        description="TLS for clients, and mutual TLS to agents whose "
        "certificates name their region (files from `beacon certs`).",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_host_port(value, "listen address")

    @model_validator(mode="after")
    def _retry_base_within_cap(self) -> CoordinatorConfig:
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError(
                f"retry_base_seconds {exact(self.retry_base_seconds)} is above "
                f"retry_max_seconds {exact(self.retry_max_seconds)}; the first delay "
                "must fit under the cap"
            )
        return self

    @field_validator("regions")
    @classmethod
    def _canonical_regions(
        cls, value: dict[str, RegionConfig]
    ) -> dict[str, RegionConfig]:
        if not value:
            raise ValueError("at least one region with an agent is required")
        regions: dict[str, RegionConfig] = {}
        for name, cfg in value.items():
            region = canonical_region(name, KNOWN_REGIONS)
            if region in regions:
                raise ValueError(
                    f"region {region} is configured twice (as {name!r} too); "
                    "list all its agents under one entry"
                )
            regions[region] = cfg
        return regions

    @property
    def region_ids(self) -> tuple[str, ...]:
        return tuple(self.regions)


def _resolve_key_paths(data: dict[str, Any], base: Path) -> None:
    """Relative `.pub` and secret file paths are read from beside the
    configuration file."""
    tokens = data.get("tokens_file")
    if isinstance(tokens, str) and not Path(tokens).is_absolute():
        data["tokens_file"] = str(base / tokens)
    tls = data.get("tls")
    if isinstance(tls, dict):
        for name, value in tls.items():
            if isinstance(value, str) and not Path(value).is_absolute():
                tls[name] = str(base / value)
    regions = data.get("regions")
    if not isinstance(regions, dict):
        return
    for region in regions.values():
        agents = region.get("agents") if isinstance(region, dict) else None
        for agent in agents if isinstance(agents, list) else []:
            key = agent.get("public_key") if isinstance(agent, dict) else None
            if (
                isinstance(key, str)
                and key.endswith(".pub")
                and not Path(key).is_absolute()
            ):
                agent["public_key"] = str(base / key)


def load_coordinator_config(
    path: Path | None, **overrides: object
) -> CoordinatorConfig:
    """The coordinator's settings from `path`, the environment and `overrides`
    (flags; None means not given)."""
    return load_settings(
        CoordinatorConfig, file=path, flags=overrides, adjust_file=_resolve_key_paths
    )
