"""Retrying transient failures (a database, broker or artifact store blip) with exponential
backoff and jitter; anything else propagates at once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from aigc.storage import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0
# Long enough to ride out a database or broker restart; a worker that cannot reach its
# database for longer gives the message back (its lease lapses and the job is requeued).
GIVE_UP_AFTER_S = 120.0


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc, OperationalError | PoolTimeout | BrokerError | ConnectionError | StoreUnavailable
    ):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retry_transient(
    operation: Callable[[], T], *, what: str, give_up_after_s: float = GIVE_UP_AFTER_S
) -> T:
    """Run `operation`, retrying transient errors with full-jitter exponential backoff."""
    deadline = time.monotonic() + give_up_after_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return operation()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            pause = random.uniform(0, delay)  # full jitter: retries from many workers spread out
            log.warning("%s failed (%s); retrying in %.2fs", what, type(exc).__name__, pause)
            time.sleep(pause)
            delay = min(delay * 2, MAX_DELAY_S)
