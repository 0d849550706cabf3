"""The strict JSON decoder on its own: no services."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aigc.strict_json import MAX_DEPTH, InvalidJson, field_name, loads, nesting_depth


def _refused(data: str | bytes, **kwargs: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidJson) as raised:
        loads(data, **kwargs)
    assert raised.value.errors
    return raised.value.errors


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{"a": NaN}', "a", "NaN is not a JSON number"),
        ('{"a": [Infinity]}', "a[0]", "Infinity is not a JSON number"),
        ('{"a": {"b": -Infinity}}', "a.b", "-Infinity is not a JSON number"),
        ('{"a": 1e400}', "a", "out of range"),
        ('{"a": -1.8e308}', "a", "out of range"),
        ('{"a": 9223372036854775808}', "a", "outside signed 64 bits"),
        ('{"a": -9223372036854775809}', "a", "outside signed 64 bits"),
        ('{"a": ' + "1" * 10_000 + "}", "a", "outside signed 64 bits"),
        ('{"a": "\\ud800"}', "a", "lone surrogate"),
        ('{"a": ["ok", "\\udc00"]}', "a[1]", "lone surrogate"),
        ('{"\\ud800": 1}', '["\\ud800"]', "this key contains a lone surrogate"),
        ('{"a": "\\u0000"}', "a", "NUL"),
        ('{"a": {"b\\u0000c": 1}}', 'a["b\\u0000c"]', "this key contains a NUL"),
        ('{"a": 1, "a": 1}', "a", "duplicate key"),
        ('{"x": {"a": 1, "b": 2, "a": 3}}', "x.a", "duplicate key"),
        ('{"a.b": {"c": NaN}}', '["a.b"].c', "NaN"),
    ],
)
def test_refused_values_name_their_path(text: str, field: str, message: str) -> None:
    [error] = _refused(text)
    assert error["field"] == field
    assert message in error["message"]


def test_every_bad_field_is_listed() -> None:
    errors = _refused('{"a": NaN, "b": [1e999, "\\u0000"], "c": {"d": 1, "d": 2}}')
    assert [e["field"] for e in errors] == ["a", "b[0]", "b[1]", "c.d"]


def test_a_root_value_is_named_by_root() -> None:
    assert _refused("NaN", root="line")[0]["field"] == "line"
    assert _refused(b"\xff\xfe", root="line")[0]["message"].startswith("is not valid UTF-8")
    assert "not valid JSON" in _refused(b'{"a": }')[0]["message"]


def test_depth_limit() -> None:
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(at_limit) is not None
    over = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    [error] = _refused(over)
    assert error["field"] == "[0]" * MAX_DEPTH
    assert "deeper than 32" in error["message"]


@pytest.mark.parametrize("opener", ["[", '{"a":', '{"a":['])
def test_huge_nesting_never_recurses(opener: str) -> None:
    for text in (opener * 100_000, opener * 100_000 + "1"):
        [error] = _refused(text)
        assert error["field"] == "body"
        assert "deeper than" in error["message"]


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 10_000 + '\\"{' * 1000})
    assert loads(text) == json.loads(text)
    assert nesting_depth(text, stop_after=200) == 1


def test_what_is_accepted_decodes_as_json_does() -> None:
    value = {
        "emoji": "🎨👩🏽‍🔬",
        "escaped": '\u2028\t"\\',
        "ints": [0, -1, 2**63 - 1, -(2**63)],
        "floats": [0.1, -0.0, 1e308, 5e-324, 1.0],
        "nested": {"a": [{"b": None}, True, False]},
        "": "empty key",
    }
    text = json.dumps(value)
    assert loads(text) == value
    assert loads(text.encode()) == value


def test_field_name() -> None:
    assert field_name(["metadata", "tags", 3]) == "metadata.tags[3]"
    assert field_name([0, "a"]) == "[0].a"
    assert field_name(["a b", "\ud800"]) == '["a b"]["\\ud800"]'
