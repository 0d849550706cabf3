"""An uploaded batch file checked before it is submitted: how its columns map to job
fields, its first jobs as they will be stored, and every bad row with its column. The
checks are the ones POST /v1/batches makes (api.batching.ValidLines), so a file the preview
passes is accepted; nothing is stored here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aigc.catalog import Catalog
from aigc.errors import FieldError, InvalidBatch
from aigc.jsonl import MAX_REPORTED_LINE_ERRORS, decode_lines
from aigc.settings import Settings
from aigc.tabular import column_use, table_jobs
from api.batching import ValidLines
from api.ui.tables import read_table
from api.validation import ValidJob, parse_batch_job

SAMPLE_JOBS = 5
JSONL_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Column:
    name: str
    use: str  # what it becomes in each job; "" for a column that is not allowed


@dataclass
class Preview:
    rows: int = 0
    columns: list[Column] = field(default_factory=list)  # none for JSONL: its keys are fields
    sample: list[tuple[int, ValidJob]] = field(default_factory=list)  # (row, job)
    errors: list[FieldError] = field(default_factory=list)  # the first ones, by row
    error_count: int = 0

    def add_errors(self, errors: list[FieldError], count: int) -> None:
        room = MAX_REPORTED_LINE_ERRORS - len(self.errors)
        self.errors.extend(errors[:room])
        self.error_count += count


def is_jsonl(name: str) -> bool:
    return name.lower().endswith(JSONL_SUFFIX)


def preview_upload(name: str, data: bytes, settings: Settings, catalog: Catalog) -> Preview:
    """The preview of a .csv, .xlsx or .jsonl file named `name`."""
    preview = Preview()
    items: list[tuple[int, Any]]
    try:
        if is_jsonl(name):
            items = decode_lines(data, max_line_bytes=settings.max_jsonl_line_bytes)
            preview.rows = len(items)
        else:
            rows = read_table(name, data, max_rows=settings.max_batch_jobs)
            header = [column for column in rows[0] if column] if rows else []
            preview.columns = [Column(column, column_use(column)) for column in header]
            preview.rows = len(rows)
            jobs, row_errors = table_jobs(rows)
            items = list(jobs)
            preview.add_errors(
                [
                    {"line": e.row, "field": e.column or "row", "message": e.message}
                    for e in row_errors
                ],
                len(row_errors),
            )
    except InvalidBatch as exc:  # JSONL lines that are not JSON objects
        preview.add_errors(exc.errors or [], exc.error_count)
        return preview
    except ValueError as exc:  # the file as a whole
        preview.add_errors([{"line": 0, "field": "file", "message": str(exc)}], 1)
        return preview
    if not items:
        return preview

    number_of = {id(raw): number for number, raw in items}

    def parse(raw: Any) -> ValidJob:
        job = parse_batch_job(raw, catalog, settings)
        if len(preview.sample) < SAMPLE_JOBS:
            preview.sample.append((number_of[id(raw)], job))
        return job

    try:
        for _ in ValidLines(items, parse, settings, require_custom_id=is_jsonl(name)):
            pass
    except InvalidBatch as exc:
        preview.add_errors(exc.errors or [], exc.error_count)
    preview.errors.sort(key=lambda error: error["line"])
    return preview
