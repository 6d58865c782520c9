"""`beacon router` / `python -m local_router`: run the local router."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, NoReturn, TypeVar

from beacon import event_loop
from beacon.regions import KNOWN_REGIONS
from beacon.settings import add_server_flags, load_settings, server_flag_values
from beacon.timeouts import DEFAULT_UPSTREAM_SECONDS
from local_router import flags
from local_router.config import ConfigError, RouterConfig
from local_router.faults import FAULT_SHAPES
from local_router.server import RouterStartupError, serve

logger = logging.getLogger(__name__)

T = TypeVar("T")

PROG = "beacon router"


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the router's flags; dests are prefixed so they never clash.

    A flag left out keeps the value of the config file or environment.
    """
    add_server_flags(parser, RouterConfig, "router_")
    parser.add_argument(
        "--host",
        dest="router_host",
        metavar="HOST",
        help="address to listen on (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        dest="router_port",
        type=flags.port,
        metavar="PORT",
        help="0 (the default) picks a free port",
    )
    parser.add_argument(
        "--region",
        dest="router_regions",
        action="append",
        type=flags.region,
        metavar="REGION",
        help=f"a region the offline provider answers (repeatable; default: "
        f"{', '.join(KNOWN_REGIONS)})",
    )
    parser.add_argument(
        "--upstream",
        dest="router_upstreams",
        action="append",
        type=flags.upstream,
        metavar="REGION=URL",
        help="forward REGION's calls to an OpenAI-compatible server whose API "
        "base is URL, e.g. http://127.0.0.1:11434/v1 (repeatable)",
    )
    parser.add_argument(
        "--model-map",
        dest="router_model_maps",
        action="append",
        type=flags.model_map,
        metavar="REGION:BEACON_MODEL=UPSTREAM_MODEL",
        help="the name REGION's upstream knows BEACON_MODEL by (repeatable)",
    )
    parser.add_argument(
        "--upstream-api-key-env",
        dest="router_api_key_envs",
        action="append",
        type=flags.api_key_env,
        metavar="REGION=ENVVAR",
        help="send $ENVVAR as bearer token to REGION's upstream",
    )
    parser.add_argument(
        "--upstream-timeout",
        dest="router_upstream_timeouts",
        action="append",
        type=flags.upstream_timeout,
        metavar="REGION=SECONDS",
        help="overall deadline of one upstream call "
        f"(default {DEFAULT_UPSTREAM_SECONDS:g})",
    )
    parser.add_argument(
        "--call-log",
        dest="router_call_log",
        type=flags.path,
        metavar="PATH",
        help="append one JSON line per /inference call to PATH",
    )
    parser.add_argument(
        "--offline-latency",
        dest="router_offline_latency",
        type=flags.seconds,
        metavar="SECONDS",
        help="artificial delay of each offline answer",
    )
    parser.add_argument(
        "--fault-rate",
        dest="router_fault_rates",
        action="append",
        type=flags.fault_rate,
        metavar="SHAPE=FRACTION",
        help=f"inject fault SHAPE into this fraction of calls (repeatable); "
        f"shapes: {', '.join(FAULT_SHAPES)}",
    )
    parser.add_argument(
        "--fault-seed",
        dest="router_fault_seed",
        type=int,
        metavar="N",
        help="seed of the fault draws, so a run can be repeated",
    )
    parser.add_argument(
        "--fault-control",
        dest="router_fault_control",
        action="store_true",
        help="serve /faults, through which tests inject faults on demand",
    )
    parser.add_argument(
        "--script",
        dest="router_script",
        type=flags.path,
        metavar="FILE",
        help="YAML/JSON of scripted offline answers per region, model and "
        "question (labelled as offline, like every offline answer)",
    )
    parser.add_argument(
        "--ready-file",
        dest="router_ready_file",
        type=flags.path,
        metavar="PATH",
        help="write the router's URL to PATH once it is listening",
    )


# Flags spelled differently from the setting they set.
FLAG_NAMES = {
    "regions": "--region",
    "upstreams": "--upstream",
    "offline_latency_seconds": "--offline-latency",
}


def config_from_args(args: argparse.Namespace) -> RouterConfig:
    """File < BEACON_ROUTER_* environment < flags, or raise ConfigError."""
    urls = _unique("--upstream", args.router_upstreams)
    timeouts = _unique("--upstream-timeout", args.router_upstream_timeouts)
    key_envs = _unique("--upstream-api-key-env", args.router_api_key_envs)
    upstreams: dict[str, dict[str, Any]] = {}
    for region, url in urls.items():
        upstreams.setdefault(region, {})["url"] = url
    for region, timeout in timeouts.items():
        upstreams.setdefault(region, {})["timeout_seconds"] = timeout
    for region, env in key_envs.items():
        upstreams.setdefault(region, {})["api_key_env"] = env
    for region, beacon_model, upstream_model in args.router_model_maps or []:
        mapping = upstreams.setdefault(region, {}).setdefault("model_map", {})
        if beacon_model in mapping:
            raise ConfigError(f"--model-map gives {region}:{beacon_model} twice")
        mapping[beacon_model] = upstream_model
    flags = {
        **server_flag_values(args, "router_"),
        "host": args.router_host,
        "port": args.router_port,
        "regions": args.router_regions,
        "upstreams": upstreams or None,
        "call_log": args.router_call_log,
        "offline_latency_seconds": args.router_offline_latency,
        "fault_rates": _unique("--fault-rate", args.router_fault_rates) or None,
        "fault_seed": args.router_fault_seed,
        "fault_control": args.router_fault_control or None,
        "script": args.router_script,
        "ready_file": args.router_ready_file,
    }
    return load_settings(
        RouterConfig, file=args.router_config, flags=flags, flag_names=FLAG_NAMES
    )


def run(args: argparse.Namespace) -> int:
    """Run the router until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad flags."""
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return _fail(exc, 2)
    flush = config.start_observing("beacon-router")
    try:
        event_loop.run(serve(config))
    except ConfigError as exc:
        return _fail(exc, 2)
    except RouterStartupError as exc:
        return _fail(exc, 1)
    finally:
        flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m local_router",
        description="Beacon's local router: the hybrid router's HTTP API, "
        "answered offline or by an OpenAI-compatible upstream per region.",
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def _unique(flag: str, pairs: list[tuple[str, T]] | None) -> dict[str, T]:
    # A region given twice is a mistake to report, not a value to overwrite.
    result: dict[str, T] = {}
    for region, value in pairs or []:
        if region in result:
            raise ConfigError(f"{flag} gives {region} twice")
        result[region] = value
    return result


def _fail(exc: Exception, code: int) -> int:
    print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
    return code
