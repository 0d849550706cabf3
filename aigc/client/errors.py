"""The API's errors as exceptions: each carries the HTTP status, the API's error code
(`error.type`), its message and, for bad input, the fields that are wrong."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict


class FieldError(BaseModel):
    """One wrong field: dotted (`params.steps`), with the batch line for batch uploads."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str
    line: int | None = None


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field_errors: list[FieldError] | None = None,
        error_count: int | None = None,
        retry_after_s: float | None = None,
        request: str = "",
    ) -> None:
        super().__init__(f"{request}: {status} {message}" if request else f"{status} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field_errors = field_errors or []
        # A batch upload lists at most 1,000 bad lines and counts them all here.
        self.error_count = error_count if error_count is not None else len(self.field_errors)
        self.retry_after_s = retry_after_s


class InvalidRequest(ApiError):
    """400/422: the request itself is wrong; `field_errors` say where."""


class Unauthorized(ApiError):
    """401: no key, or a key the API does not know (or revoked)."""


class Forbidden(ApiError):
    """403: the key may not do this."""


class NotFound(ApiError):
    """404: no such object for this team."""


class Conflict(ApiError):
    """409: the object is not in a state that allows this."""


class Gone(ApiError):
    """410: the object (an expired artifact, say) is no longer there."""


class RateLimited(ApiError):
    """429: a rate or queue limit; `retry_after_s` says when to try again."""


class Unavailable(ApiError):
    """503: the API or one of its stores is down for now."""


class ChecksumMismatch(ValueError):
    """A downloaded artifact's bytes do not match its sha256; nothing was written."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (its delta-seconds form, which the API sends)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(response: httpx.Response) -> ApiError:
    """The typed exception for an error answer, whatever its body (a proxy's HTML page too)."""
    code, message, detail = f"http_{response.status_code}", "", {}
    try:
        body: Any = response.json()
        detail = body["error"]
        code, message = str(detail["type"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:200] or response.reason_phrase
        detail = {}
    errors = [FieldError.model_validate(e) for e in detail.get("errors") or []]
    cls = _BY_STATUS.get(response.status_code, ApiError)
    return cls(
        response.status_code,
        code,
        message,
        field_errors=errors,
        error_count=detail.get("error_count"),
        retry_after_s=retry_after_s(response),
        request=f"{response.request.method} {response.request.url.path}",
    )
