"""The one JSON decoder for everything a client sends (request bodies, batch lines, input
files): it accepts only what PostgreSQL's jsonb and our serializer can hold and give back.

Refused, each with the path of the field (`metadata.tags[3]`, `params.seed`):
- NaN, Infinity and -Infinity (not JSON; jsonb refuses them);
- numbers out of range: floats that overflow to infinity (`1e400`), integers outside
  signed 64 bits (no model parameter needs more; other languages' clients lose them);
- lone surrogates (`"\\ud800"`) and NUL characters, in values and in keys (neither can be
  stored as text in PostgreSQL nor encoded as UTF-8);
- nesting deeper than MAX_DEPTH levels;
- duplicate keys in one object (which one wins differs between parsers).

Imports nothing from api/ so the CLI can check a file before sending it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from aigc.errors import FieldError, InvalidRequest

# Levels of objects and arrays, the body itself being level 1: room for real metadata
# (a job body's `metadata` may nest 30 levels), none for a body built to exhaust a parser.
MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Past this depth the error names the whole body, without a path: the path search walks
# the decoded value, and the C decoder itself recurses once per level.
_PATH_SEARCH_DEPTH = 200
# A decoding error lists at most this many fields.
MAX_REPORTED_ERRORS = 20

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


class InvalidJson(InvalidRequest):
    """A body or line that is not JSON we accept; `errors` name each bad field."""


class _Rejected:
    """A value the decoder refused, reported with its path once the path is known."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Pairs(list[tuple[str, Any]]):
    """An object's key/value pairs as written, duplicates included."""


def loads(data: bytes | str, *, root: str = "body", max_depth: int = MAX_DEPTH) -> Any:
    """Decode one JSON document strictly. `root` names the document itself in errors (a
    whole request body is "body", a batch line "line").

    Raises InvalidJson listing the bad fields."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson.for_field(root, f"is not valid UTF-8 (byte {exc.start})") from exc
    else:
        text = data
    # Text that decoded as UTF-8 holds no surrogates, and JSON forbids raw control
    # characters in strings: NUL and lone surrogates can only come from \u escapes.
    escapes = "\\u" in text
    depth = nesting_depth(text, stop_after=_PATH_SEARCH_DEPTH)
    if depth > _PATH_SEARCH_DEPTH:
        raise InvalidJson.for_field(root, f"nests deeper than {max_depth} levels")
    try:
        raw = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson.for_field(
            root, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:  # a nesting the depth scan did not see; never a 500
        raise InvalidJson.for_field(root, f"nests deeper than {max_depth} levels") from exc
    errors: list[FieldError] = []
    strings = _string_problem if escapes else _no_problem
    value = _checked(raw, [], 1, max_depth, errors, strings)
    if errors:
        for error in errors:
            error["field"] = error["field"] or root
        raise InvalidJson.from_errors(errors[:MAX_REPORTED_ERRORS])
    return value


def _constant(name: str) -> _Rejected:
    return _Rejected(f"{name} is not a JSON number")


def _float(text: str) -> float | _Rejected:
    value = float(text)
    if math.isinf(value):
        return _Rejected(f"{text[:32]} is out of range for a 64-bit float")
    return value


def _int(text: str) -> int | _Rejected:
    # The length check first: int() of thousands of digits is slow, then refused.
    if len(text) <= 20:
        value = int(text)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    return _Rejected(f"{text[:32]}{'...' if len(text) > 32 else ''} is outside signed 64 bits")


# One decoder for every call (building one per call was a tenth of decoding a batch line);
# its scanner keeps no state between calls.
_DECODER = json.JSONDecoder(
    parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_Pairs
)


def nesting_depth(text: str, *, stop_after: int) -> int:
    """How deep arrays and objects nest in JSON text (strings skipped), counting no further
    than `stop_after` + 1. Linear, without recursion, whatever the input."""
    if text.count("[") + text.count("{") <= stop_after:
        return 0  # cannot nest deeper than it has brackets
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def field_name(path: list[str | int]) -> str:
    """`["metadata", "tags", 3]` → `metadata.tags[3]`; a key that is not a plain word is
    written as a JSON string in brackets (`metadata["a.b"]`), ASCII only, so the error
    that names it can always be sent."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=True)}]"
    return out


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _no_problem(text: str) -> None:
    return None


# Decoded values with nothing to check (a refused number is a _Rejected, not one of these).
_PLAIN_SCALARS = frozenset({int, float, bool, type(None)})


def _checked(
    value: Any,
    path: list[str | int],
    depth: int,
    max_depth: int,
    errors: list[FieldError],
    string_problem: Callable[[str], str | None] = _string_problem,
) -> Any:
    """The decoded value with objects as dicts; each problem is appended to `errors`."""
    if len(errors) >= MAX_REPORTED_ERRORS:
        return None
    if isinstance(value, _Rejected):
        errors.append({"field": field_name(path), "message": value.message})
        return None
    if isinstance(value, str):
        if problem := string_problem(value):
            errors.append({"field": field_name(path), "message": problem})
        return value
    if not isinstance(value, list):
        return value  # int, float, bool, None
    if depth > max_depth:
        errors.append(
            {"field": field_name(path), "message": f"nests deeper than {max_depth} levels"}
        )
        return None
    if not isinstance(value, _Pairs):
        return [
            _checked(item, [*path, index], depth + 1, max_depth, errors, string_problem)
            for index, item in enumerate(value)
        ]
    result: dict[str, Any] = {}
    for key, item in value:
        if (problem := string_problem(key)) or key in result:
            message = f"this key {problem}" if problem else "is a duplicate key"
            errors.append({"field": field_name([*path, key]), "message": message})
            continue
        if item.__class__ in _PLAIN_SCALARS or (
            item.__class__ is str and string_problem is _no_problem
        ):
            result[key] = item  # nothing to check: the common case, without a call
            continue
        key_path: list[str | int] = [*path, key]
        result[key] = _checked(item, key_path, depth + 1, max_depth, errors, string_problem)
    return result
