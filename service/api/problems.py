"""RFC 9457 problem+json: every error the API returns is rendered here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.db import availability
from service.domain import errors
from service.storage.base import FileTooLarge
from service.usecases.files import UnsupportedMediaType

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://common-operations.dev/problems/"

STATUS: dict[type[errors.OperationsError], int] = {
    errors.NotFound: 404,
    errors.IllegalTransition: 409,
    errors.IdempotencyMismatch: 409,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.InvalidInput: 422,
    errors.Unavailable: 503,
    FileTooLarge: 413,
    UnsupportedMediaType: 415,
}


def _slug(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def problem(status: int, type_: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _status_for(error: errors.OperationsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _operations_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.OperationsError)
    status = _status_for(error)
    extra: dict[str, Any] = {k: v for k, v in error.context.items() if v is not None}
    if isinstance(error, errors.InvalidInput) and error.field:
        extra["errors"] = [{"field": error.field, "reason": error.detail}]
    name = type(error).__name__
    response = problem(
        status,
        _slug(name),
        (type(error).__doc__ or name).strip(),
        error.detail,
        instance=request.url.path,
        **extra,
    )
    if isinstance(error, errors.Unavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


#: Seconds a client is asked to wait while the database is away.
DATABASE_RETRY_AFTER = 5


async def _infrastructure_error(request: Request, error: Exception) -> JSONResponse:
    """A database error: 503 with Retry-After while the database is unreachable (the request
    changed nothing that was committed), else an unexpected failure, logged as the bug it is."""
    if availability.is_unavailable(error):
        logger.warning(
            "database unavailable",
            extra={"action": "db.unavailable", "path": request.url.path, "error": str(error)[:200]},
        )
        unavailable = errors.Unavailable(
            "the database cannot be reached right now; nothing was changed, try again shortly",
            retry_after=DATABASE_RETRY_AFTER,
        )
        return await _operations_error(request, unavailable)
    logger.error("unexpected error", exc_info=error, extra={"action": "api.unexpected_error"})
    return _internal_error(request)


def _internal_error(request: Request) -> JSONResponse:
    return problem(
        500,
        "internal-error",
        "Internal server error.",
        "the service failed to answer this request; the failure is logged",
        instance=request.url.path,
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    """Any other exception: a problem+json 500 (Starlette still logs the traceback)."""
    return _internal_error(request)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    field_errors = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in error.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in field_errors)
    return problem(
        422,
        "validation-error",
        "The request is not valid.",
        detail,
        instance=request.url.path,
        errors=field_errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    detail = str(error.detail)
    response = problem(
        error.status_code, f"http-{error.status_code}", detail, detail, instance=request.url.path
    )
    for key, value in (error.headers or {}).items():
        response.headers[key] = value
    return response


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.OperationsError, _operations_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for candidate in availability.CANDIDATES:
        app.add_exception_handler(candidate, _infrastructure_error)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {MEDIA_TYPE: {}}}
    for code, text in {
        401: "No caller identity",
        404: "Not found or not visible",
        409: "Conflicts with the task's state",
        422: "Invalid input",
    }.items()
}
#: The extra answers of routes that receive or announce a file.
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "The file is too large", "content": {MEDIA_TYPE: {}}},
    415: {"description": "The file's content type is not accepted", "content": {MEDIA_TYPE: {}}},
}
