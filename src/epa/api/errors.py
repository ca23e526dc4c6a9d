"""The one place where EPA errors become HTTP answers: ``{"error": {"code", "message"}}``.

Codes are stable (they come from the error classes, see ``epa.errors``); only the HTTP status is
decided here, by the nearest class in this table."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from epa.errors import (
    Conflict,
    EpaError,
    Forbidden,
    GenerationConflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)

HTTP_STATUS: tuple[tuple[type[EpaError], int], ...] = (
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (ServiceUnavailable, 503),
)
# Codes for errors that come from the framework rather than from EPA's error classes.
HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
}


def status_for(error: EpaError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def validation_message(exc: RequestValidationError) -> str:
    """Name the field and the value of the first problem (and count the rest)."""
    errors = list(exc.errors())
    if not errors:
        return "the request is not valid"
    first = errors[0]
    field = _loc(tuple(first.get("loc", ())))
    if len(field) > 120:  # a key of the body is part of the location: it may be as long as the body
        field = field[:117] + "..."
    value = first.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 80:
        shown = shown[:77] + "..."
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return bounded(f"{field} ({shown}): {first.get('msg', 'is not valid')}{more}")


# A message quotes the values at fault; a value is bounded by its field's cap, and a message by this (a
# backstop: a 1 MB bad value must not come back as a 1 MB answer).
MAX_MESSAGE = 1000


def bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def epa_error_response(exc: EpaError, headers: dict[str, str] | None = None) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, GenerationConflict):
        extra["current_generation"] = exc.current
    status = status_for(exc)
    all_headers = dict(headers or {})
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        error_body(exc.code, bounded(exc.message), **extra), status_code=status, headers=all_headers or None
    )


def invalid_response(exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(error_body("invalid_input", validation_message(exc)), status_code=400)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, bounded(str(exc.detail))), status_code=exc.status_code, headers=exc.headers)


def error_response(exc: Exception) -> JSONResponse | None:
    """The answer to ``exc`` as the app's handlers give it (None: not one of theirs), for code that serves a
    request outside the framework's exception handling (the edge's lanes, ``epa.api.limits``)."""
    if isinstance(exc, EpaError):
        return epa_error_response(exc)
    if isinstance(exc, RequestValidationError):
        return invalid_response(exc)
    if isinstance(exc, StarletteHTTPException):
        return http_error_response(exc)
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(EpaError)
    async def _epa(_: Request, exc: EpaError) -> JSONResponse:
        return epa_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(exc)
