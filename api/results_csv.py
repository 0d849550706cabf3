"""A batch's results as CSV for spreadsheets: one row per artifact (one per job without
any), written from the same result lines as the JSONL, a page at a time. Also the cell
escaping every CSV the API writes goes through."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

RESULTS_CSV_FIELDS = (
    "line",
    "custom_id",
    "job_id",
    "status",
    "artifact_index",
    "url",
    "mime_type",
    "sha256",
    "text",
    "error_code",
    "error_message",
)
# Excel reads a CSV without a byte order mark in the system's legacy code page, not UTF-8.
UTF8_BOM = "\ufeff"
# A spreadsheet runs a cell that starts with one of these as a formula (tab and CR are
# stripped first by some): prompts and outputs are user- and model-written text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The value as a cell a spreadsheet shows as text: a leading `'` where it would start
    a formula (OWASP's CSV injection advice); None is an empty cell."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe_cell(value) for value in values]


def result_rows(line: dict[str, Any]) -> Iterator[list[str]]:
    """The CSV rows of one result line (api.routes.batches.result_line's dict)."""
    error = line["error"] or {}
    job = (line["line"], line["custom_id"], line["job_id"], line["status"])
    failure = (error.get("code"), error.get("message"))
    if not line["artifacts"]:
        yield safe_row((*job, None, None, None, None, None, *failure))
    for artifact in line["artifacts"]:
        yield safe_row(
            (
                *job,
                artifact["index"],
                artifact["url"],
                artifact["mime_type"],
                artifact["sha256"],
                artifact.get("text"),  # text artifacts only, and not once expired
                *failure,
            )
        )


def results_csv_chunks(pages: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """The CSV's bytes, UTF-8 with a byte order mark: the header, then one chunk per page
    of result lines."""
    yield (UTF8_BOM + _rows([list(RESULTS_CSV_FIELDS)])).encode()
    for page in pages:
        yield _rows(row for line in page for row in result_rows(line)).encode()


def _rows(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
