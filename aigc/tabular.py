"""Rows of a table (a CSV file, a spreadsheet) as the jobs of a batch.

Columns: `prompt` (required), optional `kind`, `model`, `custom_id`, and
`params.<name>` / `metadata.<name>` for one entry of a job's params or metadata. A params
value is parsed as JSON where it parses (`4` is a number, `true` a boolean), else kept as
a string; metadata values stay strings. Empty cells are left out. Priority is the batch's,
chosen when it is submitted. Shared by the SDK and the
web page's uploads, so it imports only the standard library.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PLAIN_COLUMNS = ("prompt", "kind", "model", "custom_id")
NESTED_PREFIXES = ("params.", "metadata.")
DEFAULT_KIND = "text"
COLUMN_RULE = "use prompt, kind, model, custom_id, params.<name> or metadata.<name>"


class RowError(ValueError):
    """A row that cannot be a job: its number (1-based, after the header; 0 for the table
    as a whole) and the column at fault ("" for the row as a whole)."""

    def __init__(self, row: int, column: str, message: str) -> None:
        where = [f"row {row}"] if row else []
        where += [f"column {column!r}"] if column else []
        super().__init__(": ".join([", ".join(where), message]) if where else message)
        self.row, self.column, self.message = row, column, message


def read_csv(source: str | Path | bytes) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV file (a path, or its bytes), keyed by the header row; a
    ValueError saying what is wrong with a file that is not UTF-8 or not CSV."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's export often starts with a BOM
        return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text: save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise ValueError(f"is not a readable CSV file ({exc})") from None


def column_use(column: str) -> str:
    """What a column of the header becomes in each job, in words ("" for a column that is
    not allowed)."""
    name = column.strip()
    if name in PLAIN_COLUMNS:
        return name
    group, _, key = name.partition(".")
    if f"{group}." in NESTED_PREFIXES and key:
        return f"{group} entry {key!r}"
    return ""


def table_jobs(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    """(row number, job) for each good row, and a RowError for each bad column of the
    header and each bad row (its first bad cell), so that all can be listed at once."""
    jobs: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    for number, row in enumerate(rows, start=1):
        if number == 1:
            errors.extend(_header_errors(row))
        try:
            jobs.append((number, _row_to_job(number, row)))
        except RowError as exc:
            errors.append(exc)
    if not jobs and not errors:
        errors.append(RowError(0, "", "the table has no rows"))
    return jobs, errors


def rows_to_jobs(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One job dict per row; a RowError (a ValueError) naming the row and the column of the
    first bad cell, before anything else happens."""
    jobs, errors = table_jobs(rows)
    if errors:
        raise errors[0]
    return [job for _, job in jobs]


def _header_errors(row: Mapping[str, Any]) -> list[RowError]:
    """A RowError (row 0) for each column no job field takes; its cells are then left out."""
    errors = []
    for column in row:
        name = (column or "").strip()
        if not name or column_use(name):
            continue
        group = name.partition(".")[0]
        if f"{group}." in NESTED_PREFIXES:
            errors.append(RowError(0, name, f"names no {group} entry"))
        else:
            errors.append(RowError(0, name, f"unknown column; {COLUMN_RULE}"))
    return errors


def _row_to_job(number: int, row: Mapping[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {"kind": DEFAULT_KIND}
    for column, raw in row.items():
        if column is None:
            raise RowError(number, "", "more cells than the header has columns")
        name = column.strip()
        value = "" if raw is None else str(raw).strip()
        if not value or not column_use(name):
            continue  # an empty cell, or a bad column (reported once, for the header)
        if name in PLAIN_COLUMNS:
            job[name] = value
        else:
            group, _, key = name.partition(".")
            job.setdefault(group, {})[key] = _param(value) if group == "params" else value
    if not job.get("prompt"):
        raise RowError(number, "prompt", "is required")
    return job


def _param(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
