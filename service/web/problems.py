"""RFC 9457 problem+json: every error the API and the worker return is rendered here, in
camelCase. Without FastAPI (the worker's app is Starlette's own); only the API's request
validation and OpenAPI description need it (`add_request_validation`, `describe_problems`)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic.alias_generators import to_camel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.db import availability
from service.domain import errors
from service.storage.base import FileTooLarge
from service.usecases.content_types import UnsupportedMediaType
from service.web import allow
from service.web.schemas import Problem

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://common-operations.dev/problems/"

STATUS: dict[type[errors.OperationsError], int] = {
    errors.NotFound: 404,
    errors.IllegalTransition: 409,
    errors.IdempotencyMismatch: 422,
    errors.MalformedRequest: 400,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.InvalidInput: 422,
    errors.Unavailable: 503,
    errors.PreconditionRequired: 428,
    FileTooLarge: 413,
    UnsupportedMediaType: 415,
}

#: Where FastAPI says a value came from (the first item of a validation error's loc).
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")
#: Clearer reasons than pydantic's for a few error types.
_REASONS = {"extra_forbidden": "is not a field of this request"}


def _slug(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _camel(name: str) -> str:
    """task_id → taskId: the API's names are camelCase, whatever Python calls them."""
    return to_camel(name) if _SNAKE.fullmatch(name) else name


class ProblemResponse(JSONResponse):
    """A problem as JSON with every non-ASCII character escaped: a problem may quote the
    client's input, lone surrogates included, which UTF-8 cannot encode but JSON escapes can."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def problem_body(status: int, type_: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    return body | {_camel(k): v for k, v in extra.items()}


def problem(status: int, type_: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = problem_body(status, type_, title, detail, **extra)
    return ProblemResponse(body, status_code=status)


def error_body(error: errors.OperationsError, instance: str) -> dict[str, Any]:
    """The problem of an error, as the answer's body or an item of a batch answer."""
    extra: dict[str, Any] = {k: v for k, v in error.context.items() if v is not None}
    if isinstance(error, errors.InvalidInput) and error.field:
        extra["errors"] = [
            {"field": error.field, "reason": error.detail},
            *({"field": f, "reason": r} for f, r in error.others),
        ]
    name = type(error).__name__
    return problem_body(
        _status_for(error),
        _slug(name),
        (type(error).__doc__ or name).strip(),
        error.detail,
        instance=instance,
        **extra,
    )


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _status_for(error: errors.OperationsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _operations_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.OperationsError)
    body = error_body(error, request.url.path)
    response = ProblemResponse(body, status_code=body["status"])
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


#: Steps pydantic puts in an error's loc for its own validators ("function-wrap[_check()]"):
#: not part of the client's JSON, so not of the field it names.
_VALIDATOR_STEP = re.compile(r"^function-(wrap|before|after|plain)\[.*\]$")


def _field(error: dict[str, Any]) -> str:
    """The field an error names, as the client spells it: pageSize, params.mode, taskId, body.

    Only the top-level name is camelCased: deeper parts are keys of the client's own JSON, and
    an unknown field keeps the spelling it was sent with."""
    loc = [part for part in error["loc"] if not _VALIDATOR_STEP.match(str(part))]
    source = loc.pop(0) if loc and loc[0] in _SOURCES else "body"
    if error["type"] == "json_invalid":  # FastAPI puts the character's position in loc
        loc = [part for part in loc if isinstance(part, str)]
    if not loc:
        return str(source)
    if isinstance(loc[0], str) and error["type"] != "extra_forbidden":
        loc[0] = _camel(loc[0])
    return ".".join(str(part) for part in loc)


@runtime_checkable
class _Invalid(Protocol):
    """A request refused before its route ran: FastAPI's RequestValidationError or ours."""

    def errors(self) -> Sequence[Any]: ...


class RequestInvalid(Exception):
    """Input an app without FastAPI (the worker's) refuses as FastAPI's validation would:
    pydantic's errors, each with a loc that starts with where the value came from."""

    def __init__(self, found: Sequence[dict[str, Any]]) -> None:
        super().__init__(found)
        self._found = found

    def errors(self) -> Sequence[dict[str, Any]]:
        return self._found


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, _Invalid)
    found = list(error.errors())
    # A nullable field's value that fails its type also fails the `null` branch of its union:
    # that "should be None" says nothing the other error does not.
    meaningful = [e for e in found if e["type"] != "none_required"] or found
    field_errors = [
        {"field": _field(e), "reason": _REASONS.get(e["type"], e["msg"])} for e in meaningful
    ]
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
    extra: dict[str, Any] = {}
    if error.status_code == 413:
        extra["errors"] = [{"field": "body", "reason": detail}]
    response = problem(
        error.status_code,
        f"http-{error.status_code}",
        _phrase(error.status_code) or detail,
        detail,
        instance=request.url.path,
        **extra,
    )
    for key, value in (error.headers or {}).items():
        response.headers[key] = value
    if error.status_code == 405:  # Starlette names the methods of one route of the path only
        response.headers["Allow"] = ", ".join(allow.allowed(request))
    return response


def add_exception_handlers(app: Starlette) -> None:
    app.add_exception_handler(errors.OperationsError, _operations_error)
    app.add_exception_handler(RequestInvalid, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for candidate in availability.CANDIDATES:
        app.add_exception_handler(candidate, _infrastructure_error)
    app.add_exception_handler(Exception, _unexpected)


def add_request_validation(app: FastAPI) -> None:
    """FastAPI's own validation errors (bodies, queries, headers) answered as RequestInvalid is."""
    from fastapi.exceptions import RequestValidationError  # the worker's app never loads FastAPI

    app.add_exception_handler(RequestValidationError, _validation_error)


_DESCRIPTIONS = {
    400: "A malformed request: a header (Idempotency-Key, If-Match) or a multipart body that "
    "cannot be read",
    401: "No caller identity: send X-User-ID, or the service token",
    403: "The caller may not do this",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with the current state",
    412: "If-Match names a version the resource no longer has: read it again",
    413: "The request body (or the file it announces) is too large",
    415: "The body or file has a media type this operation does not take",
    422: "Invalid input; `errors` names each field",
    428: "The If-Match header is missing: send the ETag of the version this replaces",
    503: "The database is unavailable; try again",
}
_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI answers of an operation's errors (for `responses=`), each an RFC 9457 problem."""
    return {
        code: {"description": _DESCRIPTIONS[code], "content": {MEDIA_TYPE: {"schema": _SCHEMA}}}
        for code in codes
    }


def describe_problems(app: FastAPI) -> None:
    """Add the Problem schema, which the error answers of every operation refer to, to the
    app's OpenAPI description (FastAPI's documented way to extend it: replace app.openapi)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_schemas(type(app).openapi(app))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_schemas(openapi: dict[str, Any]) -> None:
    """Put Problem (and the models it uses) in the description's components, where the error
    answers of `responses` refer to it."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["Problem"] = schema


#: Answers of every operation that needs a caller and the database.
CALLER_RESPONSES = responses(401, 422, 503)
#: ... and of one that finds a resource and may conflict with its state.
PROBLEM_RESPONSES = responses(401, 404, 409, 422, 503)
#: The extra answers of routes that receive or announce a file.
FILE_RESPONSES = responses(413, 415)
