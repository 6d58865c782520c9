"""The agent's command-line flags, layered over its file and environment."""

from __future__ import annotations

import argparse
from pathlib import Path

from beacon.settings import ConfigError, add_server_flags, server_flag_values
from beacon.signing import KeyFileError, SigningKey
from region_agent.config import AgentConfig, load_agent_config

# Dest prefix of the flags every server has, apart from `beacon`'s own.
PREFIX = "server_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags left out keep the value of the config file or environment."""
    add_server_flags(parser, AgentConfig, PREFIX)
    parser.add_argument("--region", help="us-east, eu-west, asia-pacific")
    parser.add_argument(
        "--router", metavar="URL", help="hybrid router URL, or an OpenAI API base"
    )
    parser.add_argument(
        "--router-kind",
        choices=("hybrid", "openai"),
        help="the API at --router: hybrid (POST /inference, the default) or "
        "openai (POST /chat/completions: Ollama, vLLM, llama.cpp, LiteLLM)",
    )
    parser.add_argument(
        "--model-map",
        action="append",
        type=_model_pair,
        metavar="BEACON_MODEL=SERVER_MODEL",
        help="openai: the name the server knows a model by (repeatable)",
    )
    parser.add_argument(
        "--api-key-env", metavar="ENVVAR", help="openai: send $ENVVAR as bearer token"
    )
    parser.add_argument("--signing-key", type=Path, help="Ed25519 key (PEM)")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address to serve on (127.0.0.1:50061)"
    )
    parser.add_argument("--agent-id")
    parser.add_argument("--capacity", type=int, help="cells at once (16)")
    parser.add_argument("--max-output-chars", type=int, help="(100000)")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument(
        "--receipts-file", type=Path, help="SQLite file keeping signed receipts"
    )
    parser.add_argument("--tls-cert", type=Path, help="certificate naming the region")
    parser.add_argument("--tls-key", type=Path, help="its private key (mode 600)")
    parser.add_argument("--tls-ca", type=Path, help="CA of the coordinator's cert")


def _model_pair(text: str) -> tuple[str, str]:
    beacon_model, sep, server_model = text.partition("=")
    if not sep or not beacon_model or not server_model:
        raise argparse.ArgumentTypeError(
            f"expected BEACON_MODEL=SERVER_MODEL, got {text!r}"
        )
    return beacon_model, server_model


def _tls_files(args: argparse.Namespace) -> dict[str, Path] | None:
    given = {"ca": args.tls_ca, "cert": args.tls_cert, "key": args.tls_key}
    if not any(given.values()):
        return None
    if not all(given.values()):
        raise ConfigError("tls: mutual TLS needs --tls-ca, --tls-cert and --tls-key")
    return given


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """Raises ConfigError naming the setting at fault, or a bad key file."""
    config = load_agent_config(
        getattr(args, f"{PREFIX}config"),
        **server_flag_values(args, PREFIX),
        region=args.region,
        router_url=args.router,
        router_kind=args.router_kind,
        model_map=dict(args.model_map) if args.model_map else None,
        api_key_env=args.api_key_env,
        signing_key=args.signing_key,
        listen=args.listen,
        agent_id=args.agent_id,
        capacity=args.capacity,
        max_output_chars=args.max_output_chars,
        ready_file=args.ready_file,
        receipts_file=args.receipts_file,
        tls=_tls_files(args),
    )
    try:
        SigningKey.load(config.signing_key)
    except KeyFileError as exc:
        raise ConfigError(f"signing_key: {exc}") from exc
    config.api_key()
    return config
