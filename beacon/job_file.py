"""Checking a job file with the coordinator's rules, naming the line at fault.

The rules are those of `normalize_spec`; this adds, where the file shows
it, the line of each offending field, for YAML and JSON alike (JSON is read
as YAML to find the lines).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import yaml

from beacon.jobspec import JobSpecError, SpecLimits, load_job_file, normalize_spec
from beacon.v1 import job_pb2

_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")
# Field names quoted in protobuf's own parse errors.
_NAMED = re.compile(r'field named "(\w+)"|parse (\w+) field|field "?(\w+)"?')


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _path(field: str) -> list[str | int]:
    return [int(i) if i else name for name, i in _PART.findall(field)]


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(part, int) and isinstance(node, yaml.SequenceNode):
        if part >= len(node.value):
            return None
        item: yaml.Node = node.value[part]
        return item
    if isinstance(part, str) and isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) in (part, _camel(part)):
                found: yaml.Node = key if isinstance(value, yaml.ScalarNode) else value
                return found
    return None


def line_of(root: yaml.Node | None, field: str) -> int | None:
    """The 1-based line of `field` (e.g. `questions[2].id`), or of the
    nearest part of it the file has; None when the file shows none."""
    node, found = root, None
    for part in _path(field):
        node = _child(node, part) if node is not None else None
        if node is None:
            break
        found = node
    return found.start_mark.line + 1 if found is not None else None


def _key_line(root: yaml.Node | None, name: str) -> int | None:
    """The line of the first key called `name` anywhere in the file."""
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) in (name, _camel(name)):
                    return int(key.start_mark.line) + 1
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _with_lines(error: JobSpecError, path: Path) -> JobSpecError:
    root = _compose(path)
    located = []
    for violation in error.violations:
        line = line_of(root, violation.field)
        if line is None:
            names = _NAMED.search(violation.description)
            name = next((g for g in names.groups() if g), "") if names else ""
            line = _key_line(root, name) if name else None
        located.append(replace(violation, line=line))
    return JobSpecError(located)


def check_job_file(
    path: Path, limits: SpecLimits | None = None
) -> tuple[job_pb2.JobSpec, job_pb2.JobSpec]:
    """The spec as written and as the coordinator would take it; raises
    JobSpecError naming each field and, where it can, its line."""
    try:
        spec = load_job_file(path)
        return spec, normalize_spec(spec, limits)
    except JobSpecError as exc:
        raise _with_lines(exc, path) from exc
