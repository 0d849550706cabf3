"""A model's params schema, the JSON schema /v1/models serves, as the job form's inputs:
a parameter added to models/params.py appears on the page with no template change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# JSON-schema types the form has an input for; any other (array, object) is typed as JSON.
SCALAR_TYPES = frozenset({"integer", "number", "boolean", "string"})


@dataclass(frozen=True)
class ParamField:
    """One input. `type` is the JSON type job_form.js converts the input's text to
    (integer, number, boolean, string, or json for anything else)."""

    name: str
    type: str
    widget: str  # number, checkbox, select or text
    description: str
    value: str  # pre-filled text ("" starts empty); a checkbox's "true" is checked
    required: bool  # no default and not nullable: the API refuses the job without it
    choices: tuple[str, ...] = ()
    minimum: str | None = None
    maximum: str | None = None
    step: str | None = None
    min_length: int | None = None
    max_length: int | None = None


def param_fields(schema: Mapping[str, Any]) -> list[ParamField]:
    """The inputs for each property of an object schema, in the schema's order."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return [
        _field(name, prop, defs, name in required)
        for name, prop in schema.get("properties", {}).items()
    ]


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    # pydantic names enums by reference: {"$ref": "#/$defs/Colour"}.
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return {**defs.get(ref.removeprefix("#/$defs/"), {}), **node}
    return node


def _field(
    name: str, prop: Mapping[str, Any], defs: Mapping[str, Any], required: bool
) -> ParamField:
    prop = _resolve(prop, defs)
    # Optional[X] is anyOf [X, null]: the input is X's, and empty means "not given".
    branches = [_resolve(branch, defs) for branch in prop.get("anyOf", [prop])]
    nullable = any(branch.get("type") == "null" for branch in branches)
    present = [branch for branch in branches if branch.get("type") != "null"]
    body = {**present[0], **prop} if len(present) == 1 else dict(prop)
    kind = body.get("type") if body.get("type") in SCALAR_TYPES else "json"
    if "const" in body:
        body["enum"] = [body["const"]]
    default = prop.get("default")
    common: dict[str, Any] = {
        "name": name,
        "type": kind,
        "description": str(prop.get("description", "")),
        "required": required and not nullable,
    }
    if "enum" in body:
        return ParamField(
            widget="select",
            value=_text(default),
            choices=("",) * nullable + tuple(_text(choice) for choice in body["enum"]),
            **common,
        )
    if kind == "boolean":
        if nullable and default is None:
            # A checkbox has no "not given": a choice of true, false or nothing.
            return ParamField(widget="select", value="", choices=("", "true", "false"), **common)
        return ParamField(widget="checkbox", value=_text(default), **common)
    if kind in ("integer", "number"):
        minimum, maximum, step = _bounds(body, kind)
        return ParamField(
            widget="number",
            value=_text(default),
            minimum=minimum,
            maximum=maximum,
            step=step,
            **common,
        )
    return ParamField(
        widget="text",
        value=_text(default),
        min_length=body.get("minLength") if kind == "string" else None,
        max_length=body.get("maxLength") if kind == "string" else None,
        **common,
    )


def _bounds(body: Mapping[str, Any], kind: str) -> tuple[str | None, str | None, str]:
    """min, max and step of a number input. HTML has no exclusive bounds: an integer's is
    the next integer inside; a number's is kept and the API refuses the bound itself."""
    integer = kind == "integer"
    minimum = body.get("minimum")
    if minimum is None and "exclusiveMinimum" in body:
        minimum = body["exclusiveMinimum"] + 1 if integer else body["exclusiveMinimum"]
    maximum = body.get("maximum")
    if maximum is None and "exclusiveMaximum" in body:
        maximum = body["exclusiveMaximum"] - 1 if integer else body["exclusiveMaximum"]
    step = body.get("multipleOf", 1 if integer else None)
    return (
        None if minimum is None else _text(minimum),
        None if maximum is None else _text(maximum),
        "any" if step is None else _text(step),
    )


def _text(value: Any) -> str:
    """A value as an input holds it: "" for none, JSON otherwise (true, 0.7, [1, 2]); a
    string as itself."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
