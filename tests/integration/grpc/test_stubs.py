"""The committed stubs of service/rpc/gen/ are what proto/ generates today."""

from __future__ import annotations

import importlib.util
import sys

from tests.fixtures.database import ROOT

_spec = importlib.util.spec_from_file_location("grpc_stubs", ROOT / "scripts" / "grpc_stubs.py")
assert _spec is not None
assert _spec.loader is not None
grpc_stubs = importlib.util.module_from_spec(_spec)
sys.modules["grpc_stubs"] = grpc_stubs
_spec.loader.exec_module(grpc_stubs)


def test_the_committed_stubs_are_current() -> None:
    stale = grpc_stubs.differences()
    assert not stale, f"regenerate with scripts/grpc_stubs.py: {stale} differ from proto/"


def test_the_stubs_cover_the_original_methods() -> None:
    from service.rpc.gen import operations_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["OperationsService"]
    assert service.full_name == "api.operations.v1.OperationsService"
    assert [m.name for m in service.methods] == [
        "CreateTask",
        "GetTask",
        "ListTasks",
        "CancelTask",
        "RetryTask",
        "UpdateTaskProgress",
        "GetDownloadUrl",
        "GetTaskLogs",
        "GetTaskEvents",
        "DeleteTask",
        "Health",
    ]
