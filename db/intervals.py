"""Time arithmetic in SQL, in seconds: the one way db/ (and the processes that scan the
database) turn a number of seconds into a PostgreSQL interval."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.types import Interval


def seconds(value: float | ColumnElement[Any]) -> ColumnElement[timedelta]:
    """An interval of `value` seconds (fractions kept): `func.now() - seconds(ttl_s)`."""
    return func.make_interval(0, 0, 0, 0, 0, 0, value, type_=Interval)


def seconds_from_now(value: float) -> ColumnElement[Any]:
    """The database's now() plus `value` seconds: a lease's end."""
    return func.now() + seconds(value)


def seconds_ago(value: float) -> ColumnElement[Any]:
    """The database's now() minus `value` seconds: the edge of an age scan."""
    return func.now() - seconds(value)
