"""Reading JSONL batches: one decoder for the API and the CLI, so a file the CLI accepts is
read line for line as the server reads it. Each line goes through the strict JSON decoder
(aigc.strict_json)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aigc import strict_json
from aigc.errors import ErrorCode, FieldError, InvalidBatch, InvalidRequest

# A 422 lists at most this many bad lines (and counts them all in `error_count`).
MAX_REPORTED_LINE_ERRORS = 1000


class LineErrors:
    """Errors found while reading a batch, each with its 1-based line number (0: the batch
    as a whole)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.count = 0

    def add(
        self, line: int, field: str, message: str, code: str = ErrorCode.INVALID_REQUEST
    ) -> None:
        """One error; `code` says its kind (`model_not_found`, `over_budget`, ...)."""
        self.count += 1
        if len(self.errors) < MAX_REPORTED_LINE_ERRORS:
            self.errors.append({"line": line, "field": field, "message": message, "code": code})

    def add_all(self, line: int, exc: InvalidRequest) -> None:
        """Each field error of `exc`, with its own code, else the error's."""
        for error in exc.errors or [{"field": "line", "message": exc.message}]:
            self.add(line, error["field"], error["message"], error.get("code", exc.code))

    def raise_if_any(self) -> None:
        if not self.count:
            return
        lines = sorted({e["line"] for e in self.errors})
        shown = ", ".join(str(n) for n in lines[:10]) + (", ..." if len(lines) > 10 else "")
        raise InvalidBatch(
            f"{self.count} error(s) in the batch (lines {shown}); nothing was stored",
            self.errors,
            error_count=self.count,
        )


class BadLine(ValueError):
    """A line that is not one JSON object we accept; `errors` name the fields ("line" for
    the line as a whole, `params.seed` for a value inside it)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def whole(cls, message: str) -> BadLine:
        return cls([{"field": "line", "message": message}])


def decode_line(raw: bytes, *, max_bytes: int) -> dict[str, Any]:
    """One JSONL line as the JSON object it holds; raises BadLine saying why not."""
    if len(raw) > max_bytes:
        raise BadLine.whole(f"longer than {max_bytes} bytes")
    try:
        value = strict_json.loads(raw, root="line")
    except strict_json.InvalidJson as exc:
        raise BadLine(exc.errors or []) from exc
    if not isinstance(value, dict):
        raise BadLine.whole("must be a JSON object")
    return value


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) for each line that is not blank."""
    for number, raw in enumerate(data.splitlines(), start=1):
        if raw.strip():
            yield number, raw


def decode_lines(data: bytes, *, max_line_bytes: int) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; raises one InvalidBatch listing every
    line that is not a JSON object."""
    errors = LineErrors()
    decoded: list[tuple[int, dict[str, Any]]] = []
    for number, raw in iter_lines(data):
        try:
            decoded.append((number, decode_line(raw, max_bytes=max_line_bytes)))
        except BadLine as exc:
            for error in exc.errors:
                errors.add(number, error["field"], error["message"])
    errors.raise_if_any()
    return decoded
