"""Checking an exported JobResult offline, with public keys only.

Every receipt in the result (the final outcome's and each attempt's) must
verify with a key for its cell's region, name that cell of that job, carry
the prompt the job's spec composes for it, and back up what the outcome
says (status, classification, answer). Keys are either pinned by the person
checking, or taken from the result itself, which only shows the receipts
were not changed after signing, not who signed them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import ValidationError

from beacon.cells import Cell, expand_cells
from beacon.signing import PublicKey, key_id_for
from beacon.statuses import CellStatus
from beacon.v1 import job_pb2, receipt_pb2
from coordinator.analysis import analyze_result
from coordinator.analysis.similarity import METHOD
from coordinator.analysis.thresholds import AnalysisThresholds
from coordinator.outcomes import verdict_for_receipt
from coordinator.verify import (
    PinnedKeys,
    ReceiptRejected,
    SentAttempt,
    check_body,
    open_receipt,
)

logger = logging.getLogger(__name__)

# Outcomes whose status comes from the receipt they carry.
DECIDED_BY_RECEIPT = frozenset(
    {
        job_pb2.CELL_STATUS_COMPLETED,
        job_pb2.CELL_STATUS_REGION_MISMATCH,
        job_pb2.CELL_STATUS_MODEL_MISMATCH,
    }
)


# A success may arrive after a cancel or the deadline ended its cell; it is
# kept in the history and rightly not the outcome.
LATE = frozenset({job_pb2.CELL_STATUS_CANCELLED, job_pb2.CELL_STATUS_TIMED_OUT})

# Outcomes the coordinator decides without a receipt of their own.
ENDED_BY_COORDINATOR = frozenset(
    {
        job_pb2.CELL_STATUS_FAILED,
        job_pb2.CELL_STATUS_TIMED_OUT,
        job_pb2.CELL_STATUS_CANCELLED,
        job_pb2.CELL_STATUS_NOT_RUN,
    }
)


@dataclass(frozen=True)
class KeySource:
    """Where the keys come from, said in the report."""

    description: str
    pinned: PinnedKeys
    # True when the keys come from the result under check.
    embedded: bool


@dataclass(frozen=True)
class CellCheck:
    cell_id: str
    region: str
    model: str
    question_id: str
    sample: int
    status: CellStatus
    receipts: int
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class Audit:
    job_id: str
    keys: KeySource
    cells: list[CellCheck] = field(default_factory=list)
    # Problems of the result as a whole (cells missing or repeated, keys).
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems and all(cell.valid for cell in self.cells)


def pinned_source(pins: Mapping[str, Sequence[PublicKey]], origin: str) -> KeySource:
    pinned = {region: {k.key_id: k for k in keys} for region, keys in pins.items()}
    regions = ", ".join(sorted(pinned)) or "none"
    return KeySource(f"pinned keys from {origin} (regions: {regions})", pinned, False)


def embedded_source(result: job_pb2.JobResult) -> tuple[KeySource, list[str]]:
    """Keys from the result, each given to the regions its receipts name."""
    problems = []
    keys: dict[str, PublicKey] = {}
    for key_id, raw in result.public_keys.items():
        if key_id_for(raw) != key_id:
            problems.append(f"public key listed as {key_id!r} has another id")
            continue
        keys[key_id] = PublicKey(raw)
    regions_of: dict[str, set[str]] = {}
    for outcome in result.outcomes:
        for receipt in _receipts(outcome):
            regions_of.setdefault(receipt.key_id, set()).add(outcome.region)
    pinned: dict[str, dict[str, PublicKey]] = {}
    for key_id, regions in regions_of.items():
        if len(regions) > 1:
            problems.append(
                f"key {key_id} signs receipts of several regions: "
                f"{', '.join(sorted(regions))}"
            )
            continue
        if key_id in keys:
            pinned.setdefault(regions.pop(), {})[key_id] = keys[key_id]
    description = (
        "public keys embedded in the result: they show the receipts were not "
        "altered after signing, not who signed them (pin keys with --pin or "
        "--pins for that)"
    )
    return KeySource(description, pinned, True), problems


def _receipts(outcome: job_pb2.CellOutcome) -> list[receipt_pb2.Receipt]:
    found = [outcome.receipt] if outcome.receipt.body else []
    return found + [a.receipt for a in outcome.attempts if a.receipt.body]


def audit(result: job_pb2.JobResult, keys: KeySource | None = None) -> Audit:
    """Check every cell of `result`; keys default to those embedded in it."""
    problems: list[str] = []
    if keys is None:
        keys, problems = embedded_source(result)
    report = Audit(result.job_id, keys, problems=problems)
    cells = {cell.cell_id: cell for cell in expand_cells(result.spec)}
    token = _job_token(result, keys.pinned)

    seen: Counter[str] = Counter(outcome.cell_id for outcome in result.outcomes)
    for cell_id, count in seen.items():
        if count > 1:
            report.problems.append(f"cell {cell_id} has {count} outcomes")
    missing = sorted(set(cells) - set(seen))
    if missing:
        report.problems.append(
            f"{len(missing)} cell(s) of the spec have no outcome: {missing[:5]}"
        )
    checker = _Checker(result.spec, cells, keys.pinned, token)
    report.cells.extend(checker.check(outcome) for outcome in result.outcomes)
    report.problems += analysis_problems(result)
    return report


def analysis_problems(result: job_pb2.JobResult) -> list[str]:
    """Whether the analysis in the result is what its outcomes give.

    No signature covers the analysis: it is recomputed from the outcomes
    (whose receipts are checked) with the thresholds the file names.
    """
    if not result.HasField("analysis"):
        return []
    stated = result.analysis
    if stated.similarity_method != METHOD:
        return [
            f"the analysis was made with the {stated.similarity_method!r} method; "
            f"this version computes {METHOD!r}, so it was not checked"
        ]
    try:
        thresholds = AnalysisThresholds.model_validate(
            json_format.MessageToDict(
                stated.thresholds, preserving_proto_field_name=True
            )
        )
    except ValidationError as exc:
        return [f"the analysis names thresholds that are not valid: {exc}"]
    recomputed = analyze_result(result, thresholds)
    if recomputed == stated:
        return []
    path, says, gives = first_difference(stated, recomputed)
    return [
        f"the analysis is not what the outcomes give: {path} is {says} in the "
        f"file; recomputed, it is {gives}"
    ]


def first_difference(
    stated: Message, recomputed: Message, path: str = ""
) -> tuple[str, str, str]:
    """The first field where two messages of one type differ, and each value."""
    for member in stated.DESCRIPTOR.fields:
        here = f"{path}.{member.name}" if path else member.name
        ours, theirs = getattr(stated, member.name), getattr(recomputed, member.name)
        if ours == theirs:
            continue
        enum = member.enum_type
        names = {v.number: v.name for v in enum.values} if enum else {}
        if member.is_repeated:
            for index, (one, other) in enumerate(zip(ours, theirs, strict=False)):
                if one != other:
                    return _differing(f"{here}[{index}]", one, other, names)
            return here, f"{len(ours)} long", f"{len(theirs)} long"
        return _differing(here, ours, theirs, names)
    return path, "one thing", "another"


def _differing(
    path: str, ours: object, theirs: object, enum_names: Mapping[int, str]
) -> tuple[str, str, str]:
    if isinstance(ours, Message) and isinstance(theirs, Message):
        return first_difference(ours, theirs, path)
    if isinstance(ours, int) and isinstance(theirs, int) and enum_names:
        return (
            path,
            enum_names.get(ours, str(ours)),
            enum_names.get(theirs, str(theirs)),
        )
    return path, repr(ours), repr(theirs)


def _job_token(result: job_pb2.JobResult, pinned: PinnedKeys) -> str:
    """The token most signed receipts carry: that of this run of the job.

    A receipt from another run of the same job id carries another token.
    """
    tokens: Counter[str] = Counter()
    for outcome in result.outcomes:
        for receipt in _receipts(outcome):
            try:
                tokens[open_receipt(receipt, outcome.region, pinned).job_token] += 1
            except ReceiptRejected:
                continue
    return tokens.most_common(1)[0][0] if tokens else ""


@dataclass(frozen=True)
class _Checker:
    """What every cell of one result is checked against."""

    spec: job_pb2.JobSpec
    cells: Mapping[str, Cell]
    pinned: PinnedKeys
    token: str

    def check(self, outcome: job_pb2.CellOutcome) -> CellCheck:
        problems: list[str] = []
        cell = self.cells.get(outcome.cell_id)
        where = (outcome.region, outcome.model, outcome.question_id, outcome.sample)
        if cell is None:
            problems.append("the cell is not one the job's spec expands to")
        elif (cell.region, cell.model, cell.question_id, cell.sample) != where:
            problems.append("the outcome's region, model, question or sample differ")

        receipts = _receipts(outcome)
        if outcome.receipt.body:
            body = self._body(outcome.receipt, outcome, cell, "receipt", problems)
            if body is not None:
                problems += _outcome_problems(outcome, body, self.spec.max_attempts)
        elif outcome.status in DECIDED_BY_RECEIPT:
            problems.append("the outcome has no receipt to back it")
        for attempt in outcome.attempts:
            if not attempt.receipt.body:
                continue
            label = f"attempt {attempt.attempt}"
            body = self._body(attempt.receipt, outcome, cell, label, problems)
            if body is not None and body.attempt != attempt.attempt:
                problems.append(f"{label}: the receipt is for attempt {body.attempt}")
            if (
                body is not None
                and outcome.status not in LATE
                and verdict_for_receipt(body, self.spec.max_attempts).status
                == job_pb2.CELL_STATUS_COMPLETED
            ):
                problems.append(f"{label}: a signed success the outcome does not show")
        return CellCheck(
            *(outcome.cell_id, *where),
            status=outcome.status,
            receipts=len(receipts),
            problems=tuple(problems),
        )

    def _body(
        self,
        receipt: receipt_pb2.Receipt,
        outcome: job_pb2.CellOutcome,
        cell: Cell | None,
        label: str,
        problems: list[str],
    ) -> receipt_pb2.ReceiptBody | None:
        generation = self.spec.generation
        try:
            body = open_receipt(receipt, outcome.region, self.pinned)
            if cell is not None:
                check_body(
                    body,
                    SentAttempt(
                        cell,
                        body.attempt,
                        generation.temperature,
                        generation.max_tokens,
                        self.token,
                    ),
                )
        except ReceiptRejected as exc:
            problems.append(f"{label}: {_explain(exc)}")
            return None
        return body


def _explain(exc: ReceiptRejected) -> str:
    hints = {
        "unknown_key": "signed by a key not known for this region",
        "bad_signature": "the signed bytes were altered",
        "job_id_mismatch": "replayed from another job",
        "job_token_mismatch": "replayed from another run of this job",
        "cell_id_mismatch": "replayed from another cell",
    }
    hint = hints.get(exc.reason)
    return f"{exc} ({hint})" if hint else str(exc)


def _outcome_problems(
    outcome: job_pb2.CellOutcome, body: receipt_pb2.ReceiptBody, max_attempts: int
) -> list[str]:
    """What the outcome says that its verified receipt does not."""
    verdict = verdict_for_receipt(body, max_attempts)
    problems = []
    if verdict.retry:
        # A failure with attempts left: only the coordinator can have ended
        # the cell (a deadline, a cancel), never as a success or mismatch.
        if outcome.status not in ENDED_BY_COORDINATOR:
            problems.append(
                f"the outcome says {job_pb2.CellStatus.Name(outcome.status)}, but "
                "its receipt is a failure that would have been retried"
            )
    elif verdict.status != outcome.status:
        problems.append(
            f"the outcome says {job_pb2.CellStatus.Name(outcome.status)}, its receipt "
            f"{job_pb2.CellStatus.Name(verdict.status)}"
        )
    if outcome.status == job_pb2.CELL_STATUS_COMPLETED:
        if outcome.answer != body.output:
            problems.append("the answer shown is not the answer signed in the receipt")
        if outcome.classification != verdict.classification:
            problems.append("the classification is not the receipt's")
    return problems
