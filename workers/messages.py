"""Broker messages a worker cannot use are dropped with one log line; the worker serves on.

Anyone who can write to Redis can push anything onto a queue. Left to themselves, kombu and
Celery stop the worker process on most malformed messages ("Unrecoverable error"), and some
of those messages are restored to the queue when it stops, so every restart dies again on
the same message. Each layer is closed with the hook its library offers:

- kombu's Redis channel parses the raw message (JSON, envelope, body encoding) before any
  Celery code sees it: `Channel` drops what it cannot parse (the message is already off the
  queue and not yet held as unacknowledged, so dropping it is the whole cleanup), and its
  `QoS` deletes unacknowledged entries it cannot restore.
- Celery's consumer reads headers and body and looks the task up: `WorkerConsumer` (the
  `worker_consumer` setting) serves only `aigc.run_jobs`, logs each discard in one line and
  acknowledges the message, whatever the failure.
- Our task's `Strategy` (`checked_strategy`) refuses a body that is not Celery's protocol 2
  `[args, kwargs, embed]` before Celery unpacks it, and the task checks its own arguments
  (`parse_job_ids`).

Dropping is safe: PostgreSQL is the record of what is owed, and a real job whose message
went missing is put back to wait and sent again by the dispatcher.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer
from celery.worker.strategy import default as default_strategy
from kombu.message import Message
from kombu.transport import redis as kombu_redis

from workers.routing import RUN_JOBS_TASK

log = logging.getLogger(__name__)

# What kombu raises on a message it cannot parse: JSON (ValueError), base64 (binascii.Error,
# a ValueError), an envelope that is not a mapping or lacks a key (TypeError, KeyError,
# AttributeError). Connection errors are redis-py's own classes and OSError, none of these.
MALFORMED_ERRORS = (ValueError, TypeError, KeyError, AttributeError)
# The tasks a worker runs; any other name (Celery's built-ins included) is discarded.
ALLOWED_TASKS = frozenset({RUN_JOBS_TASK})
MAX_REPORTED_CHARS = 200  # how much of a bad value a log line quotes


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_REPORTED_CHARS else text[:MAX_REPORTED_CHARS] + "..."


class QoS(kombu_redis.QoS):
    """kombu's Redis bookkeeping of unacknowledged messages, except that an entry it cannot
    parse is deleted. kombu raises on it in the restore sweep that runs as the worker starts,
    which stops the worker, at every restart."""

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        try:
            super().restore_by_tag(tag, client, leftmost)  # type: ignore[no-untyped-call]
        except MALFORMED_ERRORS as exc:
            log.error(
                "dropped a malformed unacknowledged message %s: %s: %s",
                _short(tag),
                type(exc).__name__,
                exc,
            )
            self._remove_from_indices(tag).execute()  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, except that a message it cannot parse is dropped, not raised
    into the worker's event loop (where it would stop the worker)."""

    QoS = QoS

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))  # type: ignore[no-untyped-call]
        except MALFORMED_ERRORS as exc:
            log.error("dropped a malformed broker message: %s: %s", type(exc).__name__, exc)
            return True


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above (`broker_transport` names it)."""

    Channel = Channel


class WorkerConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, serving only our task and discarding anything else in one line."""

    def update_strategies(self) -> None:
        super().update_strategies()
        # No strategy means "unknown task": Celery's built-ins (celery.chord_unlock,
        # celery.backend_cleanup, ...) are never run here, whatever a message asks.
        for name in set(self.strategies) - ALLOWED_TASKS:
            del self.strategies[name]

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Message], None]:
        handle = super().create_task_handler(*args, **kwargs)
        # Connection trouble must still reach Celery, which reconnects. kombu counts
        # KeyError among Redis' connection errors; here it only ever means a bad message.
        broker_errors = tuple(
            cls for cls in (*self.connection_errors, *self.channel_errors) if cls is not KeyError
        )

        def on_task_received(message: Message) -> None:
            try:
                handle(message)
            except broker_errors:
                raise
            except Exception as exc:
                self._discard(message, f"{type(exc).__name__}: {exc}")

        return on_task_received

    def _discard(self, message: Message, why: str) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        log.error(
            "discarded a broker message (task %s, id %s): %s",
            _short(headers.get("task")),
            _short(headers.get("id")),
            why,
        )
        if not message.acknowledged:
            # On Redis a reject without requeue removes the message for good.
            message.reject_log_error(  # type: ignore[no-untyped-call]
                log, self.connection_errors, requeue=False
            )

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self._discard(message, "not a task message")

    def on_unknown_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._discard(message, "not a task this worker runs")

    def on_invalid_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._discard(message, f"invalid task message: {exc}")

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        self._discard(message, f"undecodable body ({message.content_type}): {exc}")


def checked_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Callable[..., Any]:
    """Celery's default strategy behind a check of the body's shape (the task's `Strategy`):
    a bad one raises InvalidTaskError, which the consumer turns into one discard line."""
    handle = default_strategy(task, app, consumer, **kwargs)

    def task_message_handler(message: Message, body: Any, *args: Any, **kw: Any) -> Any:
        if body is not None:
            # Celery hands over a decoded body only for protocol 1, which we never send.
            raise InvalidTaskError("protocol 1 task messages are not accepted")
        payload = message.payload
        if not (
            isinstance(payload, list)
            and len(payload) == 3
            and isinstance(payload[0], list)
            and isinstance(payload[1], dict)
            and isinstance(payload[2], dict | None)
        ):
            raise InvalidTaskError(f"the body is not [args, kwargs, embed]: {_short(payload)}")
        return handle(message, body, *args, **kw)

    return task_message_handler


def parse_job_ids(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[uuid.UUID] | None:
    """The job ids of a `run_jobs` call: one non-empty list of UUID strings and nothing else.
    None, after one log line, for anything else."""
    ids = args[0] if len(args) == 1 and not kwargs and isinstance(args[0], list) else None
    if ids and all(isinstance(job_id, str) for job_id in ids):
        try:
            return [uuid.UUID(job_id) for job_id in ids]
        except ValueError:
            pass
    log.error("discarded a run_jobs call with arguments %s %s", _short(args), _short(kwargs))
    return None
