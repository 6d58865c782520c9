"""`beacon config SERVER [flags]`: print a server's effective configuration.

The same flags, file and `BEACON_*` variables the server would read are
merged and validated; the result is printed as YAML (secrets masked), with
the timeout hierarchy the server takes part in.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from beacon import timeouts
from beacon.numbers import exact
from beacon.settings import ServerSettings

logger = logging.getLogger(__name__)

COLD_START_SECONDS = 150.0
UPSTREAM = "upstream model server"
ROUTER_CALL = "router call"
CAP = "router call cap (agent)"
ATTEMPT = "cell attempt"
JOB = "job"


@dataclass(frozen=True)
class Layer:
    """One level of the hierarchy: what it bounds, its setting, its seconds."""

    name: str
    setting: str
    seconds: float


def add_config_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from coordinator import cli as coordinator_cli
    from local_router import cli as router_cli
    from region_agent import cli as agent_cli

    text = "print a server's effective configuration and timeout hierarchy"
    config = sub.add_parser("config", help=text, description=text)
    servers = config.add_subparsers(dest="server", required=True, metavar="SERVER")
    for name, module in (
        ("coordinator", coordinator_cli),
        ("agent", agent_cli),
        ("router", router_cli),
    ):
        server = servers.add_parser(name, help=f"the {name}'s settings")
        module.add_arguments(server)
        server.set_defaults(handler=_printer(module.config_from_args))


def _printer(
    build: Callable[[argparse.Namespace], ServerSettings],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        text = render(args.server, build(args))
        print(text, end="")
        # A script checking a deployment's settings sees a broken hierarchy.
        return 1 if f"# {PROBLEM}: " in text else 0

    return handler


PROBLEM = "PROBLEM"


def render(server: str, config: ServerSettings) -> str:
    """The effective settings as YAML, then the timeout hierarchy."""
    prefix = config.env_prefix()
    lines = [
        f"# {server}: effective settings (config file < {prefix}* < flags)",
        yaml.safe_dump(
            config.model_dump(mode="json"), sort_keys=False, allow_unicode=True
        ).rstrip(),
        "",
        "# timeout hierarchy, innermost first (seconds)",
    ]
    layers = hierarchy(config)
    width = max(len(layer.name) for layer in layers)
    lines += [
        f"#   {layer.name:<{width}}  {layer.seconds:>7g}  {layer.setting}"
        for layer in layers
    ]
    lines += [f"# {check}" for check in checks(layers)]
    return "\n".join(lines) + "\n"


def hierarchy(config: ServerSettings) -> list[Layer]:
    """Upstream < router call < cell attempt < job, with this server's part."""
    layers = []
    upstreams = getattr(config, "upstreams", None)
    direct = getattr(config, "router_kind", "hybrid") == "openai"
    if upstreams:
        longest = max(upstream.timeout_seconds for upstream in upstreams.values())
        layers.append(Layer(UPSTREAM, "upstreams.*.timeout_seconds", longest))
    elif upstreams is None and not direct:
        # The coordinator's and a hybrid agent's view of the local router.
        layers.append(
            Layer(
                UPSTREAM,
                "router --upstream-timeout (default)",
                timeouts.DEFAULT_UPSTREAM_SECONDS,
            )
        )
    layers.append(
        Layer(
            ROUTER_CALL,
            "job timeouts.router_call_seconds (default)",
            timeouts.DEFAULT_ROUTER_CALL_SECONDS,
        )
    )
    cap = getattr(config, "max_router_timeout_seconds", None)
    if cap is not None:
        layers.append(Layer(CAP, "max_router_timeout_seconds", cap))
    layers += [
        Layer(
            ATTEMPT,
            "job timeouts.cell_attempt_seconds (default)",
            timeouts.DEFAULT_CELL_ATTEMPT_SECONDS,
        ),
        Layer(JOB, "job timeouts.job_seconds (default)", timeouts.DEFAULT_JOB_SECONDS),
    ]
    return layers


def checks(layers: list[Layer]) -> list[str]:
    """One line per relation, `ok` or `PROBLEM`; a cap is not a layer."""
    seconds = {layer.name: layer.seconds for layer in layers}
    call, attempt, job = seconds[ROUTER_CALL], seconds[ATTEMPT], seconds[JOB]
    upstream = seconds.get(UPSTREAM)
    # The innermost timeout must outlast a cold start of a hosted model.
    inner, inner_name = (upstream, "upstream") if upstream else (call, "router call")
    found = [
        _check(
            inner > COLD_START_SECONDS,
            f"cold start {COLD_START_SECONDS:g} s < {inner_name} timeout "
            f"{exact(inner)} s",
        )
    ]
    if upstream is not None:
        found.append(
            _check(
                upstream < call,
                f"upstream {exact(upstream)} s < router call {exact(call)} s, so "
                "the agent sees the upstream's own error",
            )
        )
    cap = seconds.get(CAP)
    if cap is not None:
        found.append(
            _check(
                call <= cap,
                f"router call {exact(call)} s <= the agent's cap {exact(cap)} s",
            )
        )
    found.append(
        _check(
            call < attempt < job,
            f"router call {exact(call)} s < cell attempt {exact(attempt)} s "
            f"< job {exact(job)} s",
        )
    )
    return found


def _check(holds: bool, text: str) -> str:
    if holds:
        return f"ok: {text}"
    return f"{PROBLEM}: this should hold but does not: {text}"
