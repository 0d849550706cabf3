"""Every error the API answers is JSON: {"error": {"type", "message", "errors"?}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigc.errors import (
    AigcError,
    Conflict,
    Gone,
    InvalidRequest,
    NotFound,
)

log = logging.getLogger(__name__)

# Errors map to HTTP by class, here and nowhere else; the nearest base class decides.
HTTP_STATUS_BY_ERROR: dict[type[AigcError], int] = {
    InvalidRequest: 422,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
}


def http_status(exc: AigcError) -> int:
    for cls in type(exc).__mro__:
        status = HTTP_STATUS_BY_ERROR.get(cls)  # type: ignore[call-overload]
        if status is not None:
            return status
    return 500


class ApiError(Exception):
    """An error with its HTTP status, a stable `type` and a message for people."""

    def __init__(
        self,
        status_code: int,
        type_: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type_
        self.message = message
        self.errors = errors


def invalid(field: str, message: str) -> ApiError:
    """A 422 naming the one field that is wrong."""
    return ApiError(
        422, "invalid_request", f"{field}: {message}", [{"field": field, "message": message}]
    )


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} does not exist")


def error_body(
    type_: str, message: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "message": message}
    if errors is not None:
        body["errors"] = errors
    return {"error": body}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's ("body", "params", "temperature") → "params.temperature"."""
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_errors(errors: list[Any], prefix: str = "") -> list[dict[str, str]]:
    return [
        {"field": prefix + field_path(error["loc"]), "message": error["msg"]} for error in errors
    ]


FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AigcError)
    async def _aigc_error(_: Request, exc: AigcError) -> JSONResponse:
        status = http_status(exc)
        if status >= 500:
            log.error("unexpected %s: %s", exc.code, exc.message)
        return JSONResponse(error_body(exc.code, exc.message, exc.errors), status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.type, exc.message, exc.errors), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(error_body("invalid_request", message, errors), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to a body it cannot decode (e.g. invalid UTF-8): say what it is.
            message = "body: not valid JSON in UTF-8"
            return JSONResponse(
                error_body("invalid_request", message, [{"field": "body", "message": message}]),
                422,
            )
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

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database_down(request, exc)
        log.exception("database error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "the database rejected the request"), 500)
