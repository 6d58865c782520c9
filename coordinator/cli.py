"""The coordinator's command-line flags, layered over its file and environment."""

from __future__ import annotations

import argparse
from pathlib import Path

from beacon.settings import add_server_flags, server_flag_values
from coordinator.config import CoordinatorConfig, load_coordinator_config

# Dest prefix of the flags every server has, apart from `beacon`'s own.
PREFIX = "server_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags left out keep the value of the config file or environment."""
    add_server_flags(parser, CoordinatorConfig, PREFIX)
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to serve on")
    parser.add_argument("--store", type=Path, help="SQLite job store")
    parser.add_argument("--ready-file", type=Path)


def config_from_args(args: argparse.Namespace) -> CoordinatorConfig:
    """Raises ConfigError naming the setting at fault."""
    return load_coordinator_config(
        getattr(args, f"{PREFIX}config"),
        **server_flag_values(args, PREFIX),
        listen=args.listen,
        store=args.store,
        ready_file=args.ready_file,
    )
