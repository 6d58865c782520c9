"""Validating and normalising a JobSpec, and loading job files.

The same rules serve the coordinator's RPCs and the CLI, so a job file is
rejected on the user's machine with the same words the server would use.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from google.protobuf import json_format

from beacon import timeouts
from beacon.cells import cell_count
from beacon.generation import max_tokens_problem, temperature_problem
from beacon.regions import KNOWN_REGIONS, UnknownRegionError, canonical_region
from beacon.spec_numbers import boolean_numbers
from beacon.v1 import job_pb2
from beacon.yamlfiles import load_yaml

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
MAX_QUESTION_CHARS = 4000
MAX_SYSTEM_PROMPT_CHARS = 8000
MAX_TITLE_CHARS = 200
MAX_GROUP_CHARS = 64
MAX_SAMPLES = 100
MAX_ATTEMPTS = 10
DEFAULT_MAX_CELLS = 100_000
DEFAULT_TEMPERATURE = 0.1
DEFAULT_MAX_TOKENS = 512
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    # The line of a job file that holds the field, when known.
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.description}"


@dataclass
class JobSpecError(ValueError):
    """A spec that breaks one or more rules; each names its field."""

    violations: list[FieldViolation] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [str(v) for v in self.violations]
        return "invalid job spec:\n  " + "\n  ".join(lines)


@dataclass(frozen=True)
class SpecLimits:
    max_cells: int = DEFAULT_MAX_CELLS
    known_regions: tuple[str, ...] = KNOWN_REGIONS


def normalize_spec(
    spec: job_pb2.JobSpec, limits: SpecLimits | None = None
) -> job_pb2.JobSpec:
    """Return a copy with defaults filled and regions canonical, or raise."""
    limits = limits or SpecLimits()
    out = job_pb2.JobSpec()
    out.CopyFrom(spec)
    problems: list[FieldViolation] = []

    def bad(path: str, description: str) -> None:
        problems.append(FieldViolation(path, description))

    _check_job_id(out, bad)
    _check_title(out, bad)
    _check_questions(out, bad)
    _check_models(out, bad)
    _check_regions(out, limits, bad)
    _check_generation(out, bad)
    _check_counts(out, bad)
    _check_timeouts(out, bad)
    if not problems and cell_count(out) > limits.max_cells:
        bad(
            "questions",
            f"the job expands to {cell_count(out)} cells, more than the limit "
            f"of {limits.max_cells}; split it into smaller jobs",
        )
    if problems:
        raise JobSpecError(problems)
    if not out.job_id:
        out.job_id = "job-" + uuid.uuid4().hex[:12]
    return out


Reporter = Any


def _check_job_id(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    if spec.job_id and not ID_PATTERN.fullmatch(spec.job_id):
        bad(
            "job_id",
            "must be 1-64 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (or empty to get one assigned)",
        )


def _check_title(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    if len(spec.title) > MAX_TITLE_CHARS:
        bad("title", f"is {len(spec.title)} characters; the limit is {MAX_TITLE_CHARS}")
    elif not spec.title.isprintable():
        bad("title", "must be one line of printable text (no control characters)")


def _check_questions(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    if not spec.questions:
        bad("questions", "at least one question is required")
    seen: set[str] = set()
    for i, question in enumerate(spec.questions):
        where = f"questions[{i}]"
        if not question.id:
            bad(f"{where}.id", "is empty; give every question a short id")
        elif not ID_PATTERN.fullmatch(question.id):
            bad(
                f"{where}.id",
                f"{question.id!r} must be 1-64 letters, digits, '.', '_' or '-'",
            )
        elif question.id in seen:
            bad(f"{where}.id", f"duplicate question id {question.id!r}")
        seen.add(question.id)
        if len(question.group) > MAX_GROUP_CHARS or not question.group.isprintable():
            bad(
                f"{where}.group",
                f"must be a short label of printable text (at most "
                f"{MAX_GROUP_CHARS} characters), like control or sensitive",
            )
        if not question.text.strip():
            bad(f"{where}.text", "is empty; write the question to ask")
        elif len(question.text) > MAX_QUESTION_CHARS:
            bad(
                f"{where}.text",
                f"is {len(question.text)} characters; the limit is "
                f"{MAX_QUESTION_CHARS}",
            )
    if len(spec.system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
        bad(
            "system_prompt",
            f"is {len(spec.system_prompt)} characters; the limit is "
            f"{MAX_SYSTEM_PROMPT_CHARS}",
        )


def _check_models(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    if not spec.models:
        bad("models", "at least one model is required, e.g. llama3.2-1b")
    seen: set[str] = set()
    for i, model in enumerate(spec.models):
        if not MODEL_PATTERN.fullmatch(model):
            bad(
                f"models[{i}]",
                f"{model!r} is not a model id (letters, digits, '.', '_', "
                "':', '/', '-'; at most 128)",
            )
        elif model in seen:
            bad(f"models[{i}]", f"duplicate model {model!r}")
        seen.add(model)


def _check_regions(spec: job_pb2.JobSpec, limits: SpecLimits, bad: Reporter) -> None:
    if not spec.regions:
        bad(
            "regions",
            f"at least one region is required: {', '.join(limits.known_regions)}",
        )
    canonical: list[str] = []
    for i, name in enumerate(spec.regions):
        try:
            region = canonical_region(name, limits.known_regions)
        except UnknownRegionError as exc:
            bad(f"regions[{i}]", str(exc))
            continue
        if region in canonical:
            bad(f"regions[{i}]", f"duplicate region {name!r} (= {region})")
        canonical.append(region)
    del spec.regions[:]
    spec.regions.extend(canonical)


def _check_generation(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    gen = spec.generation
    # A value given is checked as given; only one left out takes the default.
    checks: tuple[
        tuple[Literal["temperature", "max_tokens"], Callable[[Any], str | None], float],
        ...,
    ] = (
        ("temperature", temperature_problem, DEFAULT_TEMPERATURE),
        ("max_tokens", max_tokens_problem, DEFAULT_MAX_TOKENS),
    )
    for name, problem_of, default in checks:
        if not gen.HasField(name):
            setattr(gen, name, default)
        elif problem := problem_of(getattr(gen, name)):
            bad(f"generation.{name}", f"{problem} (or leave it out for {default:g})")


def _check_counts(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    if not 0 <= spec.samples <= MAX_SAMPLES:
        bad("samples", f"{spec.samples} is outside 0 (default 1) to {MAX_SAMPLES}")
    elif spec.samples == 0:
        spec.samples = 1
    if not 0 <= spec.max_attempts <= MAX_ATTEMPTS:
        bad(
            "max_attempts",
            f"{spec.max_attempts} is outside 0 (default "
            f"{DEFAULT_MAX_ATTEMPTS}) to {MAX_ATTEMPTS}",
        )
    elif spec.max_attempts == 0:
        spec.max_attempts = DEFAULT_MAX_ATTEMPTS


def _check_timeouts(spec: job_pb2.JobSpec, bad: Reporter) -> None:
    t = spec.timeouts
    defaults = (
        ("router_call_seconds", timeouts.DEFAULT_ROUTER_CALL_SECONDS),
        ("cell_attempt_seconds", timeouts.DEFAULT_CELL_ATTEMPT_SECONDS),
        ("job_seconds", timeouts.DEFAULT_JOB_SECONDS),
    )
    valid = True
    for name, default in defaults:
        value = getattr(t, name)
        if not 0.0 <= value <= timeouts.MAX_JOB_SECONDS:
            bad(
                f"timeouts.{name}",
                f"{value} is outside 0 (default) to {timeouts.MAX_JOB_SECONDS:.0f}",
            )
            valid = False
        elif value == 0.0:
            setattr(t, name, default)
    hierarchy = timeouts.TimeoutHierarchy(
        t.router_call_seconds, t.cell_attempt_seconds, t.job_seconds
    )
    if valid and not hierarchy.is_ordered():
        bad(
            "timeouts",
            "must satisfy router_call_seconds < cell_attempt_seconds < "
            f"job_seconds; got {t.router_call_seconds} / "
            f"{t.cell_attempt_seconds} / {t.job_seconds} (defaults filled)",
        )


def spec_from_mapping(data: Any, source: str = "job") -> job_pb2.JobSpec:
    """Parse a decoded YAML/JSON document into a JobSpec (not yet validated)."""
    if not isinstance(data, dict):
        raise JobSpecError(
            [
                FieldViolation(
                    source, "must be a mapping with questions, models, regions"
                )
            ]
        )
    booleans = [
        FieldViolation(path, f"{str(value).lower()} is not a number; give a number")
        for path, value in boolean_numbers(data, job_pb2.JobSpec.DESCRIPTOR)
    ]
    if booleans:
        raise JobSpecError(booleans)
    try:
        return json_format.ParseDict(data, job_pb2.JobSpec())
    except json_format.ParseError as exc:
        raise JobSpecError([FieldViolation(source, str(exc))]) from exc


def load_job_file(path: Path) -> job_pb2.JobSpec:
    """Read a YAML or JSON job file into a JobSpec (not yet validated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobSpecError([FieldViolation(str(path), f"cannot read: {exc}")]) from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise JobSpecError(
            [FieldViolation(str(path), f"not valid YAML/JSON: {exc}")]
        ) from exc
    return spec_from_mapping(data, str(path))
