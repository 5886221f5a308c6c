"""Errors as gRPC status codes with google.rpc details: the REST problems' twins, in one place."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from service.db import availability
from service.domain import errors
from service.web.problems import DATABASE_RETRY_AFTER

logger = logging.getLogger(__name__)

#: ErrorInfo.domain of every error this service answers.
DOMAIN = "common-operations.dev"

#: Each error family's status code; a subclass takes its nearest ancestor's (as STATUS of REST).
CODES: dict[type[errors.OperationsError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

#: Names REST gives to what gRPC carries as fields or metadata.
_RENAMED = {"Idempotency-Key": "idempotency_key", "body": "request"}
_SNAKE_SEGMENT = re.compile(r"[a-z][A-Za-z0-9]*")


def field_name(field: str) -> str:
    """A field as the .proto names it: the first segment snake_case (taskType → task_type);
    deeper segments are keys of the caller's own params and stay as sent."""
    if field in _RENAMED:
        return _RENAMED[field]
    head, dot, rest = field.partition(".")
    if _SNAKE_SEGMENT.fullmatch(head):
        head = to_snake(head)
    return head + dot + rest


def _code_of(error: errors.OperationsError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def _reason(error: errors.OperationsError) -> str:
    """ErrorInfo.reason: the problem type of REST in UPPER_SNAKE_CASE (not-found → NOT_FOUND)."""
    return to_snake(type(error).__name__).upper()


def _packed(*details: object) -> list[any_pb2.Any]:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)  # type: ignore[arg-type]
        packed.append(holder)
    return packed


def _status(
    code: grpc.StatusCode, message: str, details: Sequence[any_pb2.Any] = ()
) -> grpc.Status:
    value: int = code.value[0]
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=value, message=message, details=details)
    )
    return status


def violations(pairs: Sequence[tuple[str, str]]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=reason)
            for field, reason in pairs
        ]
    )


def of_operations_error(error: errors.OperationsError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason=_reason(error),
        domain=DOMAIN,
        metadata={k: str(v) for k, v in error.context.items() if v is not None},
    )
    details: list[object] = [info]
    if isinstance(error, errors.InvalidInput):
        details.append(violations([(field_name(error.field or "request"), error.detail)]))
    if isinstance(error, errors.Unavailable):
        delay = duration_pb2.Duration(seconds=error.retry_after)
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    return _status(_code_of(error), error.detail, _packed(*details))


def of_validation_error(error: ValidationError) -> grpc.Status:
    """A request the request model refused: INVALID_ARGUMENT naming each field."""
    pairs = [
        (field_name(".".join(str(part) for part in e["loc"]) or "request"), e["msg"])
        for e in error.errors()
    ]
    info = error_details_pb2.ErrorInfo(reason="VALIDATION_ERROR", domain=DOMAIN)
    message = "; ".join(f"{field}: {reason}" for field, reason in pairs)
    return _status(grpc.StatusCode.INVALID_ARGUMENT, message, _packed(info, violations(pairs)))


def of_exception(error: Exception, method: str) -> grpc.Status:
    """Any exception of a call, as the status it answers (a database away: UNAVAILABLE with
    RetryInfo, as REST's 503 with Retry-After; anything unforeseen: INTERNAL, logged)."""
    if isinstance(error, errors.OperationsError):
        return of_operations_error(error)
    if isinstance(error, ValidationError):
        return of_validation_error(error)
    if isinstance(error, availability.CANDIDATES) and availability.is_unavailable(error):
        logger.warning(
            "database unavailable",
            extra={"action": "db.unavailable", "path": method, "error": str(error)[:200]},
        )
        return of_operations_error(
            errors.Unavailable(
                "the database cannot be reached right now; nothing was changed, try again shortly",
                retry_after=DATABASE_RETRY_AFTER,
            )
        )
    logger.error("unexpected error", exc_info=error, extra={"action": "grpc.unexpected_error"})
    return _status(
        grpc.StatusCode.INTERNAL, "the service failed to answer this call; the failure is logged"
    )


__all__ = ["CODES", "field_name", "of_exception"]
