"""RFC 9457 problem+json: every error the API returns is rendered here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.domain import errors
from service.storage.base import FileTooLarge
from service.usecases.files import UnsupportedMediaType

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
    return problem(
        status,
        _slug(name),
        (type(error).__doc__ or name).strip(),
        error.detail,
        instance=request.url.path,
        **extra,
    )


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
