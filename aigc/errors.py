"""One error hierarchy for the whole system, each error with a stable code.

Codes are what clients and operators see (a job's `error.code`, an API error's `type`);
Python class names never leave the process. HTTP statuses are attached in api/errors.py
only. models/ imports nothing of ours: its errors carry the same codes as a `code` class
attribute, and `error_code` reads them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Self


class ErrorCode(StrEnum):
    # A request refused at the edge.
    INVALID_REQUEST = "invalid_request"
    INVALID_BATCH = "invalid_batch"
    MODEL_NOT_FOUND = "model_not_found"
    OVER_BUDGET = "over_budget"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    GONE = "gone"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    DATABASE_UNAVAILABLE = "database_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    # A job that ran and failed.
    INVALID_INPUT = "invalid_input"
    MODEL_LOAD_FAILED = "model_load_failed"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    OUT_OF_MEMORY = "out_of_memory"
    CANCELED = "canceled"
    GENERATION_FAILED = "generation_failed"
    # Refused by moderation (the job ends `blocked`).
    CONTENT_BLOCKED = "content_blocked"
    # Anything else: a bug, logged with its traceback.
    INTERNAL_ERROR = "internal_error"


FieldError = dict[str, Any]  # {"field", "message"} and, for batch lines, "line"


class AigcError(Exception):
    """Base of our errors: a stable code, a message for people and, for bad input, the
    fields that are wrong."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class InvalidRequest(AigcError):
    """Input that fails validation; `errors` names each wrong field."""

    code = ErrorCode.INVALID_REQUEST

    @classmethod
    def for_field(cls, field: str, message: str) -> Self:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])

    @classmethod
    def from_errors(cls, errors: list[FieldError]) -> Self:
        return cls("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


class InvalidBatch(InvalidRequest):
    """One or more lines of a batch are invalid; `errors` carry their line numbers (the
    first ones, if there are many) and `error_count` counts them all."""

    code = ErrorCode.INVALID_BATCH

    def __init__(
        self, message: str, errors: list[FieldError], *, error_count: int | None = None
    ) -> None:
        super().__init__(message, errors)
        self.error_count = len(errors) if error_count is None else error_count


class ModelNotFound(InvalidRequest):
    code = ErrorCode.MODEL_NOT_FOUND


class OverBudget(InvalidRequest):
    """A job that would occupy a worker longer than the operator allows."""

    code = ErrorCode.OVER_BUDGET


class IdempotencyKeyReused(InvalidRequest):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class NotFound(AigcError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, what: str, ident: object, *, field: str | None = None) -> None:
        message = f"{what} {ident} does not exist"
        # An id given in a request body (an OpenAI batch's input_file_id) names its field.
        super().__init__(message, [{"field": field, "message": message}] if field else None)


class Conflict(AigcError):
    """The resource is in a state that forbids the operation (cancel a finished job)."""

    code = ErrorCode.CONFLICT


class Gone(AigcError):
    code = ErrorCode.GONE


class Unauthorized(AigcError):
    """No valid API key. The message never says whether a key exists."""

    code = ErrorCode.UNAUTHORIZED

    def __init__(self) -> None:
        super().__init__("a valid API key is required: send it as `Authorization: Bearer <key>`")


class Forbidden(AigcError):
    """Authenticated, or signed, but not allowed (an expired or altered signed URL, a member
    key on an admin route)."""

    code = ErrorCode.FORBIDDEN


class TooManyRequests(AigcError):
    """Over one of the team's limits; nothing was stored. `retry_after_s` (whole seconds,
    at least 1) is when trying again may succeed."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class RateLimited(TooManyRequests):
    """More submissions per second than the team's `rate_per_s`."""

    code = ErrorCode.RATE_LIMITED


class QuotaExceeded(TooManyRequests):
    """More jobs queued or running than the team's `max_queued`."""

    code = ErrorCode.QUOTA_EXCEEDED


class JobTimeout(AigcError):
    code = ErrorCode.TIMEOUT


class WorkerLost(AigcError):
    code = ErrorCode.WORKER_LOST


def error_code(exc: BaseException) -> ErrorCode:
    """The stable code to record for an exception raised while running a job."""
    if isinstance(exc, AigcError):
        return exc.code
    code = getattr(type(exc), "code", None)
    if isinstance(code, str) and code in ErrorCode._value2member_map_:
        return ErrorCode(code)
    # torch.cuda.OutOfMemoryError, without importing torch where it is not loaded.
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return ErrorCode.OUT_OF_MEMORY
    return ErrorCode.GENERATION_FAILED
