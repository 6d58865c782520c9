"""Booleans given for numeric fields of a decoded job file.

Protobuf's JSON parser takes `true` for a double as 1.0 (and refuses it for
an integer with a message that names no field), so a job file's booleans are
found before parsing and refused by field, the same for every number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

logger = logging.getLogger(__name__)

_NUMBERS = frozenset(
    {
        FieldDescriptor.CPPTYPE_DOUBLE,
        FieldDescriptor.CPPTYPE_FLOAT,
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    }
)


def _field(descriptor: Descriptor, key: object) -> FieldDescriptor | None:
    if not isinstance(key, str):
        return None
    found: FieldDescriptor | None = descriptor.fields_by_name.get(key)
    if found is None:
        found = next((f for f in descriptor.fields if f.json_name == key), None)
    return found


def boolean_numbers(
    data: Any, descriptor: Descriptor, prefix: str = ""
) -> Iterator[tuple[str, bool]]:
    """The path (e.g. `generation.temperature`) and value of each numeric
    field given a boolean in `data`, a decoded mapping for `descriptor`."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        field = _field(descriptor, key)
        if field is None:
            continue
        name = f"{prefix}{field.name}"
        items = (
            [(f"{name}[{i}]", v) for i, v in enumerate(value)]
            if field.is_repeated and isinstance(value, list)
            else [(name, value)]
        )
        for path, item in items:
            if field.message_type is not None:
                yield from boolean_numbers(item, field.message_type, f"{path}.")
            elif field.cpp_type in _NUMBERS and isinstance(item, bool):
                yield path, item
