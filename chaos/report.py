"""Checking a fault run's result against the router's record of every call."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beacon.cells import expand_cells
from beacon.signing import PublicKey
from beacon.v1 import job_pb2, receipt_pb2

# A cell as the router sees it: what was asked, and of whom.
CallKey = tuple[str, str, str]


@dataclass
class ChaosReport:
    cells: int = 0
    job_status: str = ""
    outcomes: Counter[str] = field(default_factory=Counter)
    classifications: Counter[str] = field(default_factory=Counter)
    # Cells that did not complete, by the code that ended them.
    endings: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    router_calls: int = 0
    executed: int = 0
    replayed: int = 0
    abandoned: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    duplicate_successes: int = 0
    lost_receipts: int = 0
    lost_detail: list[str] = field(default_factory=list)
    unverified_receipts: int = 0
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def open_cells(self) -> int:
        return self.outcomes["open"]

    @property
    def kept_promises(self) -> bool:
        return (
            self.duplicate_successes == 0
            and self.lost_receipts == 0
            and self.unverified_receipts == 0
            and self.open_cells == 0
        )

    def lines(self) -> list[str]:
        def listed(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in sorted(counter.items()))

        return [
            f"cells: {self.cells}",
            f"job status: {self.job_status}",
            f"final outcomes: {listed(self.outcomes)}",
            f"  completed cells by classification: {listed(self.classifications)}",
            f"  other cells by what ended them: {listed(self.endings)}",
            f"  still open: {self.open_cells}",
            f"attempts recorded: {self.attempts}",
            f"router calls made: {self.router_calls} (executed {self.executed}, "
            f"replayed by idempotency key {self.replayed}, abandoned by the "
            f"caller {self.abandoned})",
            f"  faults injected: {listed(self.faults)}",
            f"duplicate successful executions of a cell: {self.duplicate_successes}",
            f"lost receipts: {self.lost_receipts}",
            *(f"  {line}" for line in self.lost_detail[:10]),
            f"receipts failing verification: {self.unverified_receipts}",
            *(f"event: {event}" for event in self.events),
            f"wall time: {self.seconds:.1f} s",
        ]


def read_calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_report(
    result: job_pb2.JobResult,
    calls: list[dict[str, Any]],
    reported_final: dict[str, job_pb2.CellStatus.ValueType],
) -> ChaosReport:
    """Count outcomes and calls, and look for duplicates and lost receipts.

    `reported_final` is the status progress events announced for each cell
    during the run: a cell announced final must end with that status.
    """
    report = ChaosReport(cells=len(result.outcomes))
    report.job_status = job_pb2.JobStatus.Name(result.status)
    keys = {key_id: PublicKey(raw) for key_id, raw in result.public_keys.items()}
    asked = {
        c.cell_id: (c.region, c.model, c.prompt) for c in expand_cells(result.spec)
    }

    successes: dict[CallKey, list[dict[str, Any]]] = {}
    for call in calls:
        report.router_calls += 1
        if call["abandoned"]:
            report.abandoned += 1
        elif call["replayed"]:
            report.replayed += 1
        else:
            report.executed += 1
        if call["fault"]:
            report.faults[call["fault"]] += 1
        if call["success"] and not call["abandoned"]:
            asked_of = (call["region_preference"], call["model"], call["prompt"])
            successes.setdefault(asked_of, []).append(call)

    for key_calls in successes.values():
        executions = [c for c in key_calls if not c["replayed"]]
        report.duplicate_successes += max(0, len(executions) - 1)

    for outcome in result.outcomes:
        status = job_pb2.CellStatus.Name(outcome.status)
        report.outcomes[status.removeprefix("CELL_STATUS_").lower()] += 1
        report.attempts += len(outcome.attempts)
        body = receipt_pb2.ReceiptBody()
        if outcome.receipt.body:
            body.ParseFromString(outcome.receipt.body)
            key = keys.get(outcome.receipt.key_id)
            if key is None or not key.verify(
                outcome.receipt.signature, outcome.receipt.body
            ):
                report.unverified_receipts += 1
        if outcome.status == job_pb2.CELL_STATUS_COMPLETED:
            name = receipt_pb2.Classification.Name(outcome.classification)
            report.classifications[name.removeprefix("CLASSIFICATION_").lower()] += 1
        else:
            report.endings[outcome.reason.split(" ", 1)[0] or status] += 1
        region, model, prompt = asked[outcome.cell_id]
        served = successes.get((region, model, prompt), [])
        _check_not_lost(report, outcome, body, served, reported_final)
    return report


def _check_not_lost(
    report: ChaosReport,
    outcome: job_pb2.CellOutcome,
    body: receipt_pb2.ReceiptBody,
    served: list[dict[str, Any]],
    reported_final: dict[str, job_pb2.CellStatus.ValueType],
) -> None:
    """A cell announced final keeps the status it was announced with, and a
    success its own region's router served ends as the cell's outcome."""
    announced = reported_final.get(outcome.cell_id)
    if announced is not None and announced != outcome.status:
        report.lost_receipts += 1
        report.lost_detail.append(
            f"{outcome.cell_id}: announced {job_pb2.CellStatus.Name(announced)}, "
            f"ended {job_pb2.CellStatus.Name(outcome.status)}"
        )
        return
    answers = {
        c["answer_sha256"] for c in served if c["served_region"] == outcome.region
    }
    if not answers:
        return
    if (
        outcome.status != job_pb2.CELL_STATUS_COMPLETED
        or body.output_sha256 not in answers
    ):
        report.lost_receipts += 1
        report.lost_detail.append(
            f"{outcome.cell_id}: the router answered it, but it ended "
            f"{job_pb2.CellStatus.Name(outcome.status)}"
        )
