"""gRPC test helpers: identity metadata, and a refused call's status with its details."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import message as pb_message
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from tests.fixtures.app import TOKEN

Metadata = tuple[tuple[str, str], ...]


def user(user_id: str = "alice", *roles: str) -> Metadata:
    metadata = [("x-user-id", user_id)]
    if roles:
        metadata.append(("x-user-roles", ",".join(roles)))
    return tuple(metadata)


ALICE = user("alice")
BOB = user("bob")
ADMIN = user("root", "admin")
SERVICE = (("x-service-token", TOKEN),)


@dataclass
class Refusal:
    """A failed call: its code, message and the google.rpc details of its rich status."""

    code: grpc.StatusCode
    message: str
    details: list[Any] = field(default_factory=list)

    def detail(self, kind: type[pb_message.Message]) -> Any:
        found = [d for d in self.details if isinstance(d, kind)]
        assert len(found) == 1, (kind, self.details)
        return found[0]

    @property
    def fields(self) -> dict[str, str]:
        """Field violations of its BadRequest: field → description."""
        bad = self.detail(error_details_pb2.BadRequest)
        return {v.field: v.description for v in bad.field_violations}

    @property
    def reason(self) -> str:
        return str(self.detail(error_details_pb2.ErrorInfo).reason)


_KINDS: list[type[pb_message.Message]] = [
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
]


async def refused(call: Awaitable[Any], code: grpc.StatusCode) -> Refusal:
    """Await a call that must fail with `code`; its rich status (grpc-status-details-bin)."""
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == code, (error.code(), error.details())
    refusal = Refusal(error.code(), error.details() or "")
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            assert status.code == code.value[0]
            assert status.message == refusal.message
            refusal.details += [_unpacked(packed) for packed in status.details]
    return refusal


def _unpacked(packed: Any) -> Any:
    for kind in _KINDS:
        if packed.Is(kind.DESCRIPTOR):
            detail = kind()
            packed.Unpack(detail)
            return detail
    raise AssertionError(f"an unexpected detail: {packed.type_url}")
