"""An uploaded table (CSV or XLSX) as a batch's jobs, with aigc.tabular's column rules.
The page then submits them to POST /v1/batches like any client: one path for every check."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from aigc.tabular import read_csv


def read_xlsx(data: bytes, *, max_rows: int) -> list[dict[str, Any]]:
    """The first sheet's rows keyed by its header row; a ValueError for a file that is not
    a workbook or has more than `max_rows` rows."""
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ValueError("not a readable XLSX workbook") from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(cell or "") for cell in next(rows, ())]
        table: list[dict[str, Any]] = []
        for row in rows:
            if all(cell is None for cell in row):
                continue  # spreadsheets keep formatted but empty rows
            if len(table) == max_rows:
                raise ValueError(f"more than {max_rows} rows")
            table.append({name: cell for name, cell in zip(header, row, strict=False) if name})
        return table
    finally:
        workbook.close()


def read_table(name: str, data: bytes, *, max_rows: int) -> list[dict[str, Any]]:
    """The rows of a .csv or .xlsx file, told apart by its name."""
    suffix = name.rsplit(".", 1)[-1].lower()
    if suffix == "csv":
        rows: list[dict[str, Any]] = list(read_csv(data))
        if len(rows) > max_rows:
            raise ValueError(f"more than {max_rows} rows")
        return rows
    if suffix == "xlsx":
        return read_xlsx(data, max_rows=max_rows)
    raise ValueError("must be a .csv or .xlsx file (or .jsonl, sent to /v1/batches as it is)")
