"""Time arithmetic on the database's clock, so every process compares against one clock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func


def seconds(amount: float) -> Any:
    """An SQL interval of `amount` seconds (fractions kept)."""
    return func.make_interval(0, 0, 0, 0, 0, 0, amount)


def seconds_from_now(amount: float) -> Any:
    return func.now() + seconds(amount)


def seconds_ago(amount: float) -> Any:
    return func.now() - seconds(amount)
