"""A whole deployment on loopback: router, one agent per region, coordinator.

Everything lives under one state folder: keys, logs, the job store, the
router's call log and exported results.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from google.protobuf import json_format
from rich.console import Console
from rich.markup import escape

from beacon import event_loop
from beacon.client import Endpoint
from beacon.job_file import check_job_file
from beacon.metrics_http import ANNOUNCEMENT as METRICS_ANNOUNCEMENT
from beacon.processes import ProcessGroup
from beacon.progress import run_job
from beacon.regions import KNOWN_REGIONS
from beacon.render import print_result
from beacon.secret_files import write_private_bytes
from beacon.signing import SigningKey
from beacon.tokens import Role, new_token, token_digest
from beacon.v1 import job_pb2

logger = logging.getLogger(__name__)

# Every server of a local deployment serves metrics on a port of its own.
METRICS_ARGS = ("--metrics-listen", "127.0.0.1:0")
SCRAPE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class LocalDeployment:
    coordinator: str
    router_url: str
    call_log: Path
    token: str
    # Each server's Prometheus endpoint, by process name.
    metrics: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"LocalDeployment(coordinator={self.coordinator!r})"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.coordinator, self.token)


def agent_command(
    region: str,
    router_url: str,
    key_path: Path,
    *extra: str,
    listen: str = "127.0.0.1:0",
) -> list[str]:
    """`beacon agent` for `region`, as ProcessGroup.start takes it."""
    return [
        "beacon",
        "agent",
        "--region",
        region,
        "--router",
        router_url,
        "--signing-key",
        str(key_path),
        "--listen",
        listen,
        *extra,
    ]


def ensure_region_key(keys_dir: Path, region: str) -> tuple[Path, str]:
    """The region's signing key file and public key, created on first use."""
    path = keys_dir / f"{region}.key"
    if not path.exists():
        SigningKey.generate().write(path)
    key = SigningKey.load(path)
    return path, key.public.b64


def write_run_token(tokens_file: Path) -> str:
    """A fresh submit token for this run; only its SHA-256 is written."""
    token = new_token()
    entry = {"name": "local", "role": Role.SUBMIT.value, "sha256": token_digest(token)}
    write_private_bytes(
        tokens_file, yaml.safe_dump({"tokens": [entry]}).encode("utf-8")
    )
    return token


def start_local(
    group: ProcessGroup,
    state_dir: Path,
    regions: tuple[str, ...] = KNOWN_REGIONS,
    router_args: tuple[str, ...] = (),
) -> LocalDeployment:
    call_log = state_dir / "router-calls.jsonl"
    router = group.start(
        "router",
        [
            "local_router",
            "--port",
            "0",
            "--call-log",
            str(call_log),
            *METRICS_ARGS,
            *router_args,
        ],
    )
    router_url = router.wait_ready()

    agents = {}
    for region in regions:
        key_path, public_key = ensure_region_key(state_dir / "keys", region)
        agent = group.start(
            f"agent-{region}",
            agent_command(
                region,
                router_url,
                key_path,
                *METRICS_ARGS,
                "--receipts-file",
                str(state_dir / "receipts" / f"{region}.db"),
            ),
        )
        agents[region] = (agent, public_key)
    tokens_file = state_dir / "tokens.yaml"
    token = write_run_token(tokens_file)
    config = {
        "listen": "127.0.0.1:0",
        "store": str(state_dir / "beacon.db"),
        "tokens_file": str(tokens_file.resolve()),
        "regions": {
            region: {"agents": [{"address": agent.wait_ready(), "public_key": key}]}
            for region, (agent, key) in agents.items()
        },
    }
    config_path = state_dir / "coordinator.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    coordinator = group.start(
        "coordinator",
        ["beacon", "coordinator", "--config", str(config_path), *METRICS_ARGS],
    )
    address = coordinator.wait_ready()
    metrics = {p.name: p.announced(METRICS_ANNOUNCEMENT) for p in group.processes}
    return LocalDeployment(address, router_url, call_log, token, metrics)


def run_local(
    job_file: Path,
    state_dir: Path,
    console: Console,
    router_args: tuple[str, ...] = (),
) -> job_pb2.JobResult:
    """Start the deployment, run one job with progress, print it, shut down."""
    spec, _ = check_job_file(job_file)
    group = ProcessGroup(state_dir / "run")
    try:
        console.print(f"starting a local deployment (state in {state_dir}) ...")
        deployment = start_local(group, state_dir, router_args=router_args)
        console.print(
            f"router {deployment.router_url}, coordinator {deployment.coordinator}, "
            f"regions {', '.join(KNOWN_REGIONS)}"
        )
        started = time.monotonic()
        result = event_loop.run(run_job(deployment.endpoint, spec, console))
        elapsed = time.monotonic() - started
        metrics_dir = state_dir / "metrics"
        missing = scrape_metrics(deployment, metrics_dir)
        died = [
            f"{child.name} exited during the job with code "
            f"{child.process.returncode}; its log: {child.log_path}"
            for child in group.exited()
        ]
    finally:
        group.stop_all()
    print_result(console, result, elapsed)
    out = state_dir / "results" / f"{result.job_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json_format.MessageToJson(result), encoding="utf-8")
    console.print(f"full result with signed receipts: {out}")
    console.print(f"metrics of every server after the job: {metrics_dir}")
    for line in [*died, *(f"metrics not saved for {m}" for m in missing)]:
        console.print(f"[bold red]{escape(line)}[/]")
    return result


def scrape_metrics(deployment: LocalDeployment, out_dir: Path) -> list[str]:
    """Save each server's /metrics page as NAME.prom in `out_dir`; returns
    why each page that could not be read is missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, url in deployment.metrics.items():
        try:
            page = httpx.get(url, timeout=SCRAPE_TIMEOUT_SECONDS)
            page.raise_for_status()
        except httpx.HTTPError as exc:
            # A server that died during the job: its page is lost, the
            # job's result is not.
            missing.append(f"{name}: {exc}")
            continue
        (out_dir / f"{name}.prom").write_text(page.text, encoding="utf-8")
    return missing
