"""One typed configuration per server, from three layers.

A setting comes from the server's YAML file, is overridden by a `BEACON_*`
environment variable, which is overridden by a command-line flag. The merged
values are validated once, at start; a problem is reported as one line that
names the setting and where its value came from.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

from beacon import tracing
from beacon.logs import LOG_FORMATS, LOG_LEVELS, LogFormat
from beacon.logs import configure as configure_logs
from beacon.tracing import TRACE_EXPORTERS, TraceExporter
from beacon.urls import check_host_port, check_http_url
from beacon.yamlfiles import load_yaml

logger = logging.getLogger(__name__)

S = TypeVar("S", bound="ServerSettings")


class ConfigError(ValueError):
    """A configuration that cannot be used, with what to fix."""


_ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_var_name(name: str) -> str:
    if not _ENV_VAR_PATTERN.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    return name


def _model_names(model_map: dict[str, str]) -> dict[str, str]:
    if not all(model_map) or not all(model_map.values()):
        raise ValueError("model_map names must not be empty")
    return model_map


# The name of a variable that holds a secret (the secret is never a setting).
EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
# Beacon model id -> the name a model server knows it by.
ModelMap = Annotated[dict[str, str], AfterValidator(_model_names)]


class ServerSettings(BaseSettings):
    """Base of every server's settings.

    Building one directly uses only the values given; `load_settings` adds
    the file and the environment under them.
    """

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR.")
    log_format: LogFormat = Field(
        default="text", description="text lines, or one JSON object per line."
    )

    metrics_listen: str | None = Field(
        default=None,
        description="host:port of the Prometheus /metrics endpoint; off if unset.",
    )

    trace_exporter: TraceExporter = Field(
        default="none",
        description="Where spans go: none (tracing off), console (stderr) or otlp.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; "
        "unset: the exporter's default or OTEL_EXPORTER_OTLP_* variables.",
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value, "OTLP endpoint")

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_address(cls, value: str | None) -> str | None:
        return None if value is None else check_host_port(value, "metrics address")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def env_prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix", ""))

    def start_observing(self, service_name: str) -> Callable[[], None]:
        """Set up logging and tracing as configured; returns what flushes
        the spans still buffered, for the server's exit."""
        configure_logs(self.log_level, self.log_format)
        return tracing.configure(service_name, self.trace_exporter, self.otlp_endpoint)


def add_server_flags(
    parser: argparse.ArgumentParser, model: type[ServerSettings], prefix: str
) -> None:
    """Flags every server has; their dests start with `prefix`."""
    parser.add_argument(
        "--config",
        dest=f"{prefix}config",
        type=Path,
        metavar="FILE",
        help=f"YAML file of settings ({model.env_prefix()}* and flags override it)",
    )
    parser.add_argument(
        "--log-level",
        dest=f"{prefix}log_level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="INFO (default): lifecycle; DEBUG: every cell too",
    )
    parser.add_argument(
        "--log-format",
        dest=f"{prefix}log_format",
        choices=LOG_FORMATS,
        help="text (default) or json, one object per line",
    )
    parser.add_argument(
        "--metrics-listen",
        dest=f"{prefix}metrics_listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (off by default)",
    )
    parser.add_argument(
        "--trace-exporter",
        dest=f"{prefix}trace_exporter",
        choices=TRACE_EXPORTERS,
        help="export OpenTelemetry spans: none (default), console or otlp",
    )
    parser.add_argument(
        "--otlp-endpoint",
        dest=f"{prefix}otlp_endpoint",
        metavar="URL",
        help="OTLP/HTTP traces URL for --trace-exporter otlp",
    )


def server_flag_values(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The values of `add_server_flags`' flags, keyed by setting."""
    return {
        # `beacon --log-level X SERVER` counts when the server's own is not given.
        "log_level": getattr(args, f"{prefix}log_level")
        or getattr(args, "log_level", None),
        "log_format": getattr(args, f"{prefix}log_format"),
        "metrics_listen": getattr(args, f"{prefix}metrics_listen"),
        "trace_exporter": getattr(args, f"{prefix}trace_exporter"),
        "otlp_endpoint": getattr(args, f"{prefix}otlp_endpoint"),
    }


def load_settings(
    model: type[S],
    *,
    file: Path | None,
    flags: Mapping[str, Any],
    flag_names: Mapping[str, str] | None = None,
    adjust_file: Callable[[dict[str, Any], Path], None] | None = None,
) -> S:
    """Merge file < environment < flags into `model`, or raise ConfigError.

    `flags` maps each setting that has a flag to its value (None: not
    given); `flag_names` names the flag where it is not spelled like the
    setting.
    `adjust_file` may rewrite file values relative to the file's folder.
    """
    file_values = read_settings_file(file) if file is not None else {}
    if file is not None and adjust_file is not None:
        adjust_file(file_values, file.parent)
    env_values = _environment(model)
    flag_values = {k: v for k, v in flags.items() if v is not None}
    merged = _deep_merge(_deep_merge(file_values, env_values), flag_values)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        origins = _Origins(model, file, file_values, env_values, flag_values)
        origins.flag_names.update(
            {k: flag_names.get(k, _flag(k)) if flag_names else _flag(k) for k in flags}
        )
        raise ConfigError(origins.describe(exc)) from exc


def read_settings_file(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_flat(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def _environment(model: type[ServerSettings]) -> dict[str, Any]:
    source = EnvSettingsSource(
        model,
        env_prefix=model.env_prefix(),
        env_nested_delimiter="__",
        case_sensitive=False,
    )
    try:
        return dict(source())
    except SettingsError as exc:
        raise ConfigError(
            f"environment: {_flat(exc)} (variables start with {model.env_prefix()}; "
            "structured values are JSON)"
        ) from exc


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def _flat(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _Origins:
    """Says which layer gave the setting a validation error is about."""

    def __init__(
        self,
        model: type[ServerSettings],
        file: Path | None,
        file_values: Mapping[str, Any],
        env_values: Mapping[str, Any],
        flag_values: Mapping[str, Any],
    ) -> None:
        self.prefix = model.env_prefix()
        self.file = file
        self.file_values = file_values
        self.env_values = env_values
        self.flag_values = flag_values
        self.flag_names: dict[str, str] = {}

    def describe(self, exc: ValidationError) -> str:
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            setting = ".".join(loc) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{setting}: {message}{self.origin(loc)}")
        return "invalid settings: " + "; ".join(problems)

    def variable_for(self, loc: list[str]) -> str:
        """The variable that set `loc`: a nested one (`A__B`) when given."""
        present = {name.upper() for name in os.environ}
        for depth in range(len(loc), 0, -1):
            name = f"{self.prefix}{'__'.join(loc[:depth])}".upper()
            if name in present:
                return name
        return f"{self.prefix}{loc[0]}".upper()

    def origin(self, loc: list[str]) -> str:
        top = loc[0] if loc else ""
        if not top:
            return ""
        variable = f"{self.prefix}{top.upper()}"
        if top in self.flag_values:
            return f" (from {self.flag_names[top]})"
        if top in self.env_values:
            return f" (from environment variable {self.variable_for(loc)})"
        if top in self.file_values:
            return f" (from {self.file})"
        ways = [self.flag_names[top]] if top in self.flag_names else []
        ways += [variable, f"'{top}:' in the config file"]
        return f" (give {', '.join(ways[:-1])} or {ways[-1]})"
