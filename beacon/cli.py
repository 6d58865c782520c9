"""The `beacon` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from google.protobuf import json_format
from rich.console import Console

from beacon import event_loop, logs
from beacon.cells import cell_count
from beacon.client import CoordinatorClient, CoordinatorError, Endpoint
from beacon.entry import INTERRUPTED
from beacon.job_file import check_job_file
from beacon.jobspec import DEFAULT_MAX_CELLS, JobSpecError, SpecLimits
from beacon.progress import StreamBroken
from beacon.render import job_status_name, print_result
from beacon.report_commands import ResultFileError, add_report_commands
from beacon.secret_files import SecretFileError
from beacon.settings import ConfigError
from beacon.signing import KeyFileError, SigningKey
from beacon.state_dir import writable_dir
from beacon.tokens import TOKEN_ENV, read_token_file
from beacon.urls import check_host_port
from beacon.v1 import job_pb2
from beacon.verify_cmd import add_verify_command

DEFAULT_COORDINATOR = "127.0.0.1:50051"
CA_CERT_ENV = "BEACON_CA_CERT"


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _console() -> Console:
    return Console(stderr=False)


# Servers


def cmd_router(args: argparse.Namespace) -> int:
    from local_router.cli import run

    return run(args)


def cmd_agent(args: argparse.Namespace) -> int:
    from region_agent.cli import config_from_args
    from region_agent.server import run_agent

    config = config_from_args(args)
    flush = config.start_observing(f"beacon-agent-{config.region}")
    try:
        event_loop.run(run_agent(config))
    finally:
        flush()
    return 0


def cmd_coordinator(args: argparse.Namespace) -> int:
    from coordinator.cli import config_from_args
    from coordinator.server import run_coordinator

    config = config_from_args(args)
    flush = config.start_observing("beacon-coordinator")
    try:
        event_loop.run(run_coordinator(config))
    finally:
        flush()
    return 0


# Keys and local deployment


def cmd_keygen(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        raise UsageError(f"{args.out} exists; pass --force to replace it")
    key = SigningKey.generate()
    public_path = key.write(args.out)
    print(f"private key {args.out} (mode 600), public key {public_path}")
    print(f"key id {key.key_id}")
    print(f"public key {key.public.b64}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from beacon.token_cmd import run

    return run(args)


def cmd_certs(args: argparse.Namespace) -> int:
    from beacon.certs_cmd import run

    return run(args)


def cmd_local(args: argparse.Namespace) -> int:
    from beacon.local import run_local

    router_args = ("--script", str(args.router_script)) if args.router_script else ()
    run_local(args.job, args.state_dir, _console(), router_args)
    return 0


# Client commands


def _load_spec(path: Path) -> job_pb2.JobSpec:
    # The coordinator applies the same rules; checking here names the file
    # and the line.
    spec, _ = check_job_file(path)
    return spec


def cmd_validate(args: argparse.Namespace) -> int:
    if args.max_cells < 1:
        raise UsageError("--max-cells must be 1 or more")
    _, spec = check_job_file(args.job, SpecLimits(max_cells=args.max_cells))
    print(f"{args.job}: valid, {cell_count(spec)} cells")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from beacon.progress import run_job

    spec = _load_spec(args.job)
    console = _console()
    result = event_loop.run(run_job(_endpoint(args), spec, console))
    print_result(console, result, None)
    if args.output:
        args.output.write_text(json_format.MessageToJson(result), encoding="utf-8")
        console.print(f"result written to {args.output}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    spec = _load_spec(args.job)

    async def submit() -> None:
        async with CoordinatorClient(_endpoint(args)) as client:
            reply = await client.submit(spec)
        state = "submitted" if reply.created else "already exists"
        print(f"{reply.job_id} {state} ({reply.cells} cells)")

    event_loop.run(submit())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    async def show() -> job_pb2.JobResult:
        async with CoordinatorClient(_endpoint(args)) as client:
            return await client.result(args.job_id)

    result = event_loop.run(show())
    if args.format == "json":
        print(json_format.MessageToJson(result))
    else:
        print_result(_console(), result, None)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from beacon.progress import watch_job

    console = _console()
    result = event_loop.run(watch_job(_endpoint(args), args.job_id, console))
    print_result(console, result, None)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be 1 or more")

    async def list_jobs() -> None:
        jobs: list[job_pb2.JobSummary] = []
        token = ""
        async with CoordinatorClient(_endpoint(args)) as client:
            while len(jobs) < args.limit:
                reply = await client.list_jobs(args.limit - len(jobs), token)
                jobs.extend(reply.jobs)
                token = reply.next_page_token
                if not token:
                    break
        for job in jobs:
            c = job.counts
            print(
                f"{job.job_id}  {job_status_name(job.status):9}"
                f"  {c.total - c.open}/{c.total} final"
                f"  {job.title}"
            )
        if token:
            print(f"(the newest {len(jobs)} are shown; pass --limit for more)")

    event_loop.run(list_jobs())
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    async def cancel() -> None:
        async with CoordinatorClient(_endpoint(args)) as client:
            job = await client.cancel(args.job_id)
        print(f"{job.job_id} {job_status_name(job.status)}")

    event_loop.run(cancel())
    return 0


# Parser


def _endpoint(args: argparse.Namespace) -> Endpoint:
    """The coordinator's address and the token: --token-file, else $BEACON_TOKEN."""
    if args.token_file is not None:
        token = read_token_file(args.token_file)
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    ca_cert = args.ca_cert
    if ca_cert is None and os.environ.get(CA_CERT_ENV):
        ca_cert = Path(os.environ[CA_CERT_ENV])
    return Endpoint(args.coordinator, token, ca_cert)


def _address(value: str) -> str:
    try:
        return check_host_port(value, "coordinator address")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_coordinator_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        type=_address,
        default=DEFAULT_COORDINATOR,
        metavar="HOST:PORT",
        help=f"coordinator address (default {DEFAULT_COORDINATOR})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the bearer token (mode 600); default ${TOKEN_ENV}",
    )
    parser.add_argument(
        "--ca-cert",
        type=Path,
        help=f"use TLS, trusting this CA certificate; default ${CA_CERT_ENV}",
    )


def build_parser() -> argparse.ArgumentParser:
    from beacon.config_command import add_config_command
    from coordinator.cli import add_arguments as add_coordinator_arguments
    from local_router.cli import add_arguments as add_router_arguments
    from region_agent.cli import add_arguments as add_agent_arguments

    parser = argparse.ArgumentParser(
        prog="beacon",
        description="Ask models the same questions from several regions and compare.",
    )
    parser.add_argument(
        "--log-level", type=str.upper, help="DEBUG, INFO (default), WARNING"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(handler=handler)
        return cmd

    router = command("router", cmd_router, "run the local hybrid router")
    add_router_arguments(router)

    agent = command("agent", cmd_agent, "run a region agent")
    add_agent_arguments(agent)

    coordinator = command("coordinator", cmd_coordinator, "run the coordinator")
    add_coordinator_arguments(coordinator)

    add_config_command(sub)

    keygen = command("keygen", cmd_keygen, "create an agent's Ed25519 signing key")
    keygen.add_argument("--out", required=True, type=Path, help="private key path")
    keygen.add_argument("--force", action="store_true")

    token = command("token", cmd_token, "create a bearer token for the coordinator")
    token.add_argument("--tokens-file", required=True, type=Path)
    token.add_argument("--name", required=True, help="who or what uses it")
    token.add_argument("--role", choices=("read", "submit"), default="read")
    token.add_argument("--out", type=Path, help="write the token here (mode 600)")

    certs = command(
        "certs", cmd_certs, "create a CA and the TLS certificates of a deployment"
    )
    certs.add_argument("--out", required=True, type=Path, help="folder to write")
    certs.add_argument(
        "--regions",
        default="us-east,eu-west,asia-pacific",
        help="comma-separated regions that get an agent certificate",
    )
    certs.add_argument(
        "--host",
        action="append",
        default=[],
        help="a DNS name or IP the servers are reached at (repeatable); "
        "localhost and loopback are always included",
    )

    local = command(
        "local", cmd_local, "start a local deployment, run one job, shut down"
    )
    local.add_argument("--job", required=True, type=Path, help="job file (YAML/JSON)")
    local.add_argument("--state-dir", type=writable_dir, default=".beacon/local")
    local.add_argument(
        "--router-script", type=Path, help="scripted offline answers (YAML/JSON)"
    )

    validate = command("validate", cmd_validate, "check a job file")
    validate.add_argument("job", type=Path)
    validate.add_argument(
        "--max-cells",
        type=int,
        default=DEFAULT_MAX_CELLS,
        help=f"the coordinator's max_cells_per_job (default {DEFAULT_MAX_CELLS})",
    )

    run = command("run", cmd_run, "run a job and show its progress and result")
    run.add_argument("job", type=Path)
    run.add_argument("--output", type=Path, help="write the JobResult as JSON")
    _add_coordinator_flag(run)

    submit = command("submit", cmd_submit, "submit a job and print its id")
    submit.add_argument("job", type=Path)
    _add_coordinator_flag(submit)

    show = command("show", cmd_show, "show a job's result")
    show.add_argument("job_id")
    show.add_argument("--format", choices=("table", "json"), default="table")
    _add_coordinator_flag(show)

    watch = command("watch", cmd_watch, "follow a running job")
    watch.add_argument("job_id")
    _add_coordinator_flag(watch)

    list_cmd = command("list", cmd_list, "list jobs")
    list_cmd.add_argument("--limit", type=int, default=50)
    _add_coordinator_flag(list_cmd)

    cancel = command("cancel", cmd_cancel, "cancel a job")
    cancel.add_argument("job_id")
    _add_coordinator_flag(cancel)

    add_report_commands(command, _add_coordinator_flag, _endpoint)
    add_verify_command(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level or "INFO")
    try:
        event_loop.check_choice()
        code: int = args.handler(args)
    except BrokenPipeError:
        # The reader went away (`beacon show ... | head`); nothing to report.
        sys.stderr.close()
        return 0
    except (
        UsageError,
        JobSpecError,
        KeyFileError,
        CoordinatorError,
        ConfigError,
        SecretFileError,
        StreamBroken,
        ResultFileError,
        OSError,
    ) as exc:
        print(f"beacon {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
