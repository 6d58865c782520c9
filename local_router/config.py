"""Settings of the local router: which regions it serves and how."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from beacon.channels import ROUTER_IDLE_TIMEOUT_SECONDS
from beacon.regions import KNOWN_REGIONS
from beacon.settings import ConfigError, EnvVarName, ModelMap, ServerSettings
from beacon.timeouts import DEFAULT_UPSTREAM_SECONDS
from beacon.urls import check_http_url
from local_router.faults import FaultPlan

logger = logging.getLogger(__name__)

__all__ = ["ConfigError", "RouterConfig", "UpstreamConfig", "check_region_id"]

# Canonical ids only ("eu-west"); aliases such as "EU" are mapped at the edge.
REGION_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def check_region_id(region: str) -> str:
    """Return `region` if it is a canonical region id, else raise ValueError."""
    if not REGION_ID_PATTERN.match(region):
        raise ValueError(
            f"{region!r} is not a canonical region id (lowercase words joined by "
            f"'-', such as {', '.join(KNOWN_REGIONS)})"
        )
    return region


class UpstreamConfig(BaseModel):
    """An OpenAI-compatible server that answers one region's calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    model_map: ModelMap = Field(default_factory=dict)
    api_key_env: EnvVarName | None = None
    timeout_seconds: float = Field(default=DEFAULT_UPSTREAM_SECONDS, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_http_url(url, "upstream URL")


class RouterConfig(ServerSettings):
    """Everything `create_app` and `serve` need.

    File < BEACON_ROUTER_* environment < flags; see `load_settings`.
    """

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="BEACON_ROUTER_", allow_inf_nan=False
    )

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Regions answered by the offline provider.
    regions: list[str] = Field(default_factory=lambda: list(KNOWN_REGIONS))
    # An upstream replaces the offline provider of its region.
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict)
    call_log: Path | None = None
    offline_latency_seconds: float = Field(default=0.0, ge=0)
    # Probability of each injected fault shape per call (see faults.py).
    fault_rates: dict[str, float] = Field(default_factory=dict)
    fault_seed: int | None = None
    # Serve POST/GET/DELETE /faults, so a test can inject faults on demand.
    fault_control: bool = False
    # Fixed offline answers per (region, model, question); see script.py.
    script: Path | None = None
    ready_file: Path | None = None
    # Longer than clients' pooled-connection expiry (httpx: 5 s), so a client
    # never reuses a connection the server is just closing.
    keep_alive_seconds: int = Field(default=ROUTER_IDLE_TIMEOUT_SECONDS, ge=1)
    # In-flight calls get this long to finish on SIGTERM before being cancelled.
    shutdown_timeout_seconds: int = Field(default=10, ge=0)

    @field_validator("regions")
    @classmethod
    def _canonical_unique_regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            check_region_id(region)
        duplicates = sorted({r for r in regions if regions.count(r) > 1})
        if duplicates:
            raise ValueError(f"duplicate regions: {', '.join(duplicates)}")
        return regions

    @field_validator("fault_rates")
    @classmethod
    def _known_fault_shapes(cls, rates: dict[str, float]) -> dict[str, float]:
        FaultPlan(rates)
        return rates

    @field_validator("upstreams")
    @classmethod
    def _canonical_upstream_regions(
        cls, upstreams: dict[str, UpstreamConfig]
    ) -> dict[str, UpstreamConfig]:
        for region in upstreams:
            check_region_id(region)
        return upstreams

    @model_validator(mode="after")
    def _serves_something(self) -> RouterConfig:
        if not self.served_regions():
            raise ValueError("no regions configured: give regions or upstreams")
        return self

    def served_regions(self) -> list[str]:
        """Every region with a provider: offline ones first, then upstream-only."""
        return [*self.regions, *(r for r in self.upstreams if r not in self.regions)]
