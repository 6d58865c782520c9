"""`beacon verify FILE`: check an exported JobResult's receipts offline."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from beacon.receipt_audit import Audit, CellCheck, KeySource, audit, pinned_source
from beacon.regions import UnknownRegionError, canonical_region
from beacon.signing import KeyFileError, PublicKey, load_public_key
from beacon.statuses import CellStatus
from beacon.v1 import job_pb2
from beacon.yamlfiles import load_yaml

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]


class VerifyInputError(ValueError):
    """A result file or a key that cannot be read, with what to fix."""


def load_result(path: Path) -> job_pb2.JobResult:
    """A JobResult in the protobuf JSON mapping (`beacon export --format json`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyInputError(f"cannot read {path}: {exc}") from exc
    try:
        result = json_format.Parse(text, job_pb2.JobResult())
    except json_format.ParseError as exc:
        raise VerifyInputError(
            f"{path} is not a JobResult in JSON (`beacon export JOB_ID --format "
            f"json` writes one): {exc}"
        ) from exc
    if not result.job_id or not result.outcomes:
        raise VerifyInputError(
            f"{path} holds no job's outcomes: nothing to verify "
            "(`beacon export JOB_ID --format json` writes a whole result)"
        )
    return result


def _pin(region: str, value: str, base: Path | None = None) -> tuple[str, PublicKey]:
    if base is not None and value.endswith(".pub") and not Path(value).is_absolute():
        value = str(base / value)
    try:
        return canonical_region(region), load_public_key(value)
    except (UnknownRegionError, KeyFileError) as exc:
        raise VerifyInputError(f"pinned key for {region}: {exc}") from exc


def read_pins(flags: list[str], pins_file: Path | None) -> dict[str, list[PublicKey]]:
    """Keys from `--pin REGION=KEY` and a YAML file of `region: key or [keys]`."""
    pairs: list[tuple[str, PublicKey]] = []
    for flag in flags:
        region, sep, value = flag.partition("=")
        if not sep or not value:
            raise VerifyInputError(f"--pin {flag!r}: write REGION=KEY (base64 or .pub)")
        pairs.append(_pin(region, value))
    if pins_file is not None:
        try:
            data = load_yaml(pins_file.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise VerifyInputError(f"cannot read {pins_file}: {exc}") from exc
        if not isinstance(data, dict):
            raise VerifyInputError(f"{pins_file}: expected `region: key` lines")
        for region, value in data.items():
            for key in value if isinstance(value, list) else [value]:
                pairs.append(_pin(str(region), str(key), pins_file.parent))
    pins: dict[str, list[PublicKey]] = {}
    for region, key in pairs:
        pins.setdefault(region, []).append(key)
    return pins


def _line(cell_status: CellStatus, verdict: str, *fields: object) -> str:
    status = job_pb2.CellStatus.Name(cell_status).removeprefix("CELL_STATUS_")
    return f"{verdict:10} {status.lower():15} " + "  ".join(str(f) for f in fields)


UNFINISHED = frozenset({job_pb2.JOB_STATUS_PENDING, job_pb2.JOB_STATUS_RUNNING})


def report_lines(report: Audit, job_status: int) -> list[str]:
    lines = [f"job {report.job_id}", f"keys: {report.keys.description}"]
    if job_status in UNFINISHED:
        lines.append(
            "the job had not finished when this result was exported: open cells "
            "are PENDING and the analysis is provisional"
        )
    for cell in report.cells:
        verdict = _verdict(cell)
        where = (cell.region, cell.model, cell.question_id, f"#{cell.sample}")
        lines.append(_line(cell.status, verdict, *where, cell.cell_id))
        lines += [f"           - {problem}" for problem in cell.problems]
    lines += [f"result: {problem}" for problem in report.problems]
    verdicts = Counter(_verdict(cell) for cell in report.cells)
    lines.append(
        f"{len(report.cells)} cells: {verdicts['VALID']} valid, "
        f"{verdicts['INVALID']} invalid, {verdicts['PENDING']} pending, "
        f"{verdicts['UNSIGNED']} unsigned (their status is the coordinator's "
        "word: no receipt backs it)"
    )
    return lines


def _verdict(cell: CellCheck) -> str:
    if not cell.valid:
        return "INVALID"
    if cell.status == job_pb2.CELL_STATUS_OPEN:
        return "PENDING"
    return "VALID" if cell.receipts else "UNSIGNED"


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        result = load_result(args.file)
        pins = read_pins(args.pin, args.pins)
    except VerifyInputError as exc:
        print(f"beacon verify: {exc}", file=sys.stderr)
        return 2
    keys: KeySource | None = None
    if pins:
        origin = " and ".join(
            part
            for part, given in (("--pin", args.pin), (str(args.pins), args.pins))
            if given
        )
        keys = pinned_source(pins, origin)
    report = audit(result, keys)
    print("\n".join(report_lines(report, result.status)))
    if not report.valid:
        return 1
    if args.strict and any(_verdict(cell) != "VALID" for cell in report.cells):
        return 1
    return 0


def add_verify_command(command: AddCommand) -> None:
    verify = command(
        "verify", cmd_verify, "check the receipts of an exported result offline"
    )
    verify.add_argument("file", type=Path, help="JobResult as JSON")
    verify.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="REGION=KEY",
        help="trust only this public key (base64 or .pub) for REGION; repeatable",
    )
    verify.add_argument(
        "--pins", type=Path, help="YAML file of `region: key` or `region: [keys]`"
    )
    verify.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a cell is pending or has no receipt behind its status",
    )
