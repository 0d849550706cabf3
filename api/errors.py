"""Every error the API answers is JSON: {"error": {"type", "message", "errors"?}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigc.errors import (
    AigcError,
    Conflict,
    ErrorCode,
    Forbidden,
    Gone,
    InvalidBatch,
    InvalidRequest,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from aigc.storage import StoreUnavailable

log = logging.getLogger(__name__)

# Errors map to HTTP by class, here and nowhere else; the nearest base class decides.
HTTP_STATUS_BY_ERROR: dict[type[AigcError], int] = {
    InvalidRequest: 422,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
}


def http_status(exc: AigcError) -> int:
    for cls in type(exc).__mro__:
        status = HTTP_STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def error_body(
    type_: str,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    error_count: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "message": message}
    if errors is not None:
        body["errors"] = errors
    if error_count is not None:
        body["error_count"] = error_count
    return {"error": body}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's ("body", "params", "temperature") → "params.temperature"."""
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def invalid_request(
    exc: ValidationError | RequestValidationError, *, prefix: str = ""
) -> InvalidRequest:
    """pydantic's (or FastAPI's) validation errors as the 422 naming each wrong field;
    `prefix` places them inside the body ("params.")."""
    return InvalidRequest.from_errors(
        [
            {"field": prefix + field_path(error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
    )


FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AigcError)
    async def _aigc_error(_: Request, exc: AigcError) -> JSONResponse:
        status = http_status(exc)
        if status >= 500:
            log.error("unexpected %s: %s", exc.code, exc.message)
        count = exc.error_count if isinstance(exc, InvalidBatch) else None
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names its scheme
        return JSONResponse(
            error_body(exc.code, exc.message, exc.errors, count), status, headers=headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _aigc_error(request, invalid_request(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to a body it cannot decode (e.g. invalid UTF-8): say what it is.
            invalid = InvalidRequest.for_field("body", "not valid JSON in UTF-8")
            return await _aigc_error(request, invalid)
        type_ = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(type_, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            error_body("database_unavailable", "the database is unreachable; retry shortly"),
            503,
            headers={"Retry-After": "5"},
        )

    for db_error in (OperationalError, PoolTimeout):
        app.add_exception_handler(db_error, _database_down)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        # An outage like the database's, not a bug: the client retries, the log says which.
        log.warning("artifact store unavailable: %s", exc)
        return JSONResponse(
            error_body(
                ErrorCode.STORE_UNAVAILABLE, "the artifact store is unreachable; retry shortly"
            ),
            503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database_down(request, exc)
        log.exception("database error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "the database rejected the request"), 500)
