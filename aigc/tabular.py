"""Rows of a table (a CSV file, a spreadsheet) as the jobs of a batch.

Columns: `prompt` (required), optional `kind`, `model`, `custom_id`, `priority`, and
`params.<name>` / `metadata.<name>` for one entry of a job's params or metadata. A params
value is parsed as JSON where it parses (`4` is a number, `true` a boolean), else kept as
a string; metadata values stay strings. Empty cells are left out. Shared by the SDK and the
web page's uploads, so it imports only the standard library.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PLAIN_COLUMNS = ("prompt", "kind", "model", "custom_id", "priority")
NESTED_PREFIXES = ("params.", "metadata.")
DEFAULT_KIND = "text"


def read_csv(source: str | Path | bytes) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV file (a path, or its bytes), keyed by the header row."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    text = data.decode("utf-8-sig")  # a spreadsheet's export often starts with a BOM
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def rows_to_jobs(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One job dict per row; a ValueError naming the row (1-based, after the header) and
    the column for the first bad cell, before anything else happens."""
    jobs = []
    for number, row in enumerate(rows, start=1):
        jobs.append(_row_to_job(number, row))
    if not jobs:
        raise ValueError("the table has no rows")
    return jobs


def _row_to_job(number: int, row: Mapping[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {"kind": DEFAULT_KIND}
    for column, raw in row.items():
        if column is None:
            raise ValueError(f"row {number}: more cells than the header has columns")
        name = column.strip()
        value = "" if raw is None else str(raw).strip()
        if name in PLAIN_COLUMNS:
            if value:
                job[name] = value
        elif name.startswith(NESTED_PREFIXES):
            group, _, key = name.partition(".")
            if not key:
                raise ValueError(f"row {number}, column {name!r}: names no {group} entry")
            if value:
                job.setdefault(group, {})[key] = _param(value) if group == "params" else value
        elif name:
            raise ValueError(
                f"row {number}, column {name!r}: unknown column; use prompt, kind, model, "
                "custom_id, priority, params.<name> or metadata.<name>"
            )
    if not job.get("prompt"):
        raise ValueError(f"row {number}, column 'prompt': is required")
    return job


def _param(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
