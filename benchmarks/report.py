"""The shape every benchmark reports in: its figure, the baseline measured in the same run,
their ratio, and the targets checked."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

# A target: a comparison and a bound, e.g. (">=", 20.0).
Target = tuple[str, float]
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


def comparison(
    *,
    description: str,
    figure: dict[str, Any],
    baseline: dict[str, Any],
    ratio: float,
    targets: Mapping[str, Target] | None = None,
    values: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A benchmark's report. `targets` name `ratio` or one of `values`."""
    checked = {"ratio": ratio, **(values or {})}
    results = {
        name: {
            "target": f"{op} {bound:g}",
            "value": checked[name],
            "met": _OPERATORS[op](checked[name], bound),
        }
        for name, (op, bound) in (targets or {}).items()
    }
    return {
        "description": description,
        "figure": figure,
        "baseline": baseline,
        "ratio": ratio,
        "targets": results,
        "met": all(result["met"] for result in results.values()),
    }


def rounded(value: Any) -> Any:
    """Floats cut to 4 significant digits, all through a JSON-like document: timings carry
    no more precision than that."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value
