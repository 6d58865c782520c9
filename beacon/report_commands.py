"""`beacon export` and `beacon diff`: a job's results for auditors (with a
warning when the job has not finished)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from google.protobuf import json_format

from beacon import event_loop
from beacon.client import CoordinatorClient, Endpoint
from beacon.diff import diff_lines, diff_results
from beacon.export import FORMATS, export
from beacon.render import unfinished_warning
from beacon.v1 import job_pb2

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]
EndpointOf = Callable[[argparse.Namespace], Endpoint]


async def _fetch(endpoint: Endpoint, *job_ids: str) -> list[job_pb2.JobResult]:
    async with CoordinatorClient(endpoint) as client:
        return [await client.result(job_id) for job_id in job_ids]


def _results(args: argparse.Namespace, *job_ids: str) -> list[job_pb2.JobResult]:
    endpoint_of: EndpointOf = args.endpoint_of
    return event_loop.run(_fetch(endpoint_of(args), *job_ids))


class ResultFileError(ValueError):
    """A saved result that cannot be read, with what to fix."""


def read_result_file(path: Path) -> job_pb2.JobResult:
    """A JobResult saved by `beacon export --format json` or `beacon run --output`."""
    try:
        text = path.read_text(encoding="utf-8")
        # protobuf's parser reads a top-level array as an empty message.
        if not isinstance(json.loads(text), dict):
            raise ValueError("the file holds JSON, but not an object")
        result = json_format.Parse(text, job_pb2.JobResult())
        _check_not_degenerate(result)
    except (OSError, ValueError, json_format.ParseError) as exc:
        raise ResultFileError(
            f"cannot read a JobResult from {path}: {exc} (expected the JSON that "
            "`beacon export JOB_ID --format json` writes)"
        ) from exc
    return result


def _check_not_degenerate(result: job_pb2.JobResult) -> None:
    """A result with nothing to report is a wrong file, not an empty audit."""
    missing = [
        name
        for name, present in (
            ("job_id", bool(result.job_id)),
            ("spec", result.HasField("spec")),
            ("outcomes", bool(result.outcomes)),
        )
        if not present
    ]
    if missing:
        raise ValueError(f"it has no {', no '.join(missing)}")


def _warn_if_unfinished(result: job_pb2.JobResult) -> None:
    # On standard error: standard output may be the export itself.
    warning = unfinished_warning(result)
    if warning is not None:
        print(warning, file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    if args.input is not None:
        result = read_result_file(args.input)
    else:
        (result,) = _results(args, args.job_id)
    _warn_if_unfinished(result)
    text = export(result, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.format} export of {result.job_id} written to {args.output}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = _results(args, args.job_a, args.job_b)
    for result in (a, b):
        _warn_if_unfinished(result)
    diff = diff_results(a, b)
    if args.format == "json":
        print(json.dumps(diff.as_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(diff_lines(diff)))
    return 0


def add_report_commands(
    command: AddCommand,
    add_coordinator_flag: Callable[[argparse.ArgumentParser], None],
    endpoint_of: EndpointOf,
) -> None:
    """Register the commands; `endpoint_of` reads the coordinator flags."""
    export_cmd = command(
        "export", cmd_export, "export a job's result and analysis to a file"
    )
    source = export_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "job_id", nargs="?", help="the job to fetch from the coordinator"
    )
    source.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="a saved JSON result instead of a job id (no coordinator needed)",
    )
    export_cmd.add_argument("--format", choices=tuple(FORMATS), default="json")
    export_cmd.add_argument(
        "--output", "-o", type=Path, help="file to write (default: standard output)"
    )
    add_coordinator_flag(export_cmd)
    export_cmd.set_defaults(endpoint_of=endpoint_of)

    diff_cmd = command(
        "diff", cmd_diff, "show what changed between two runs of the same questions"
    )
    diff_cmd.add_argument("job_a")
    diff_cmd.add_argument("job_b")
    diff_cmd.add_argument("--format", choices=("text", "json"), default="text")
    add_coordinator_flag(diff_cmd)
    diff_cmd.set_defaults(endpoint_of=endpoint_of)
