"""retry_transient: database, broker and artifact store blips are retried with backoff;
anything else, and a blip that outlasts the give-up time, propagates."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from aigc.storage import StoreUnavailable
from workers import retry
from workers.retry import retry_transient


class Clock:
    """time.monotonic and time.sleep for workers.retry, with sleeps that only move the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(retry.time, "monotonic", lambda: fake.now)
    monkeypatch.setattr(retry.time, "sleep", fake.sleep)
    return fake


def _failing(times: int, error: Exception) -> Callable[[], str]:
    calls = 0

    def operation() -> str:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error
        return f"done after {calls} calls"

    return operation


DB_DOWN = OperationalError("SELECT 1", {}, ConnectionError("connection refused"))


def test_a_database_blip_is_retried(clock: Clock) -> None:
    assert retry_transient(_failing(3, DB_DOWN), what="x") == "done after 4 calls"
    assert len(clock.sleeps) == 3


def test_broker_store_and_connection_errors_are_transient(clock: Clock) -> None:
    for error in (BrokerError("broker down"), StoreUnavailable("S3 down"), ConnectionResetError()):
        assert retry_transient(_failing(1, error), what="x") == "done after 2 calls"


def test_backoff_grows_with_full_jitter_and_is_capped(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)  # the jitter's top
    retry_transient(_failing(8, DB_DOWN), what="x")
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_other_errors_propagate_at_once(clock: Clock) -> None:
    with pytest.raises(ValueError):
        retry_transient(_failing(1, ValueError("a bug")), what="x")
    assert clock.sleeps == []


def test_gives_up_after_its_time(clock: Clock) -> None:
    with pytest.raises(OperationalError):
        retry_transient(_failing(10_000, DB_DOWN), what="x", give_up_after_s=30)
    assert clock.now <= 30
    assert len(clock.sleeps) > 3
