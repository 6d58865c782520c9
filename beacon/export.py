"""Writing a JobResult out: JSON, JSON Lines, CSV or a self-contained HTML report.

The JSON export is the protobuf JSON mapping of the whole JobResult, receipts
and analysis included, so it can be read back and its receipts verified
offline. The other formats are views for people and spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import fields
from typing import Final

from google.protobuf import json_format

from beacon.export_rows import CellRow, cell_rows
from beacon.html_report import render_html
from beacon.v1 import job_pb2

logger = logging.getLogger(__name__)

# A spreadsheet runs a cell that starts with one of these as a formula; an
# answer is untrusted text, so such a cell gets a leading apostrophe. A line
# break inside a value gets the same guard: a reader that splits records on a
# bare CR (or a spreadsheet import that ignores quotes) starts a cell there.
_FORMULA_AT_LINE_START: Final = re.compile(r"^(?=[=+\-@\t\r])|(?<=[\r\n])(?=[=+\-@\t])")


def to_json(result: job_pb2.JobResult) -> str:
    return json_format.MessageToJson(result) + "\n"


def to_jsonl(result: job_pb2.JobResult) -> str:
    return "".join(
        json.dumps(row.as_dict(), ensure_ascii=False) + "\n"
        for row in cell_rows(result)
    )


def _spreadsheet_safe(value: object) -> object:
    if isinstance(value, str):
        return _FORMULA_AT_LINE_START.sub("'", value)
    return value


def to_csv(result: job_pb2.JobResult) -> str:
    out = io.StringIO()
    # Every field quoted: a CR, a tab or a `;` (the separator of some locales)
    # inside an answer then never ends a record or a cell.
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([f.name for f in fields(CellRow)])
    for row in cell_rows(result):
        values = row.as_dict()
        values["flags"] = "; ".join(row.flags)
        if row.similarity_to_other_regions is None:
            values["similarity_to_other_regions"] = ""
        writer.writerow(_spreadsheet_safe(v) for v in values.values())
    return out.getvalue()


FORMATS: Final[dict[str, Callable[[job_pb2.JobResult], str]]] = {
    "json": to_json,
    "jsonl": to_jsonl,
    "csv": to_csv,
    "html": render_html,
}


def export(result: job_pb2.JobResult, fmt: str) -> str:
    """The result in `fmt` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt](result)
