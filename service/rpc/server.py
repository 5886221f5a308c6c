"""The gRPC server of the API process: a grpc.aio server started and stopped by the app's
lifespan (a Companion, as the embedded worker is), on OPS_GRPC_PORT beside the HTTP port."""

from __future__ import annotations

from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.bootstrap import Resources
from service.config import Settings
from service.rpc.gen import operations_pb2 as pb, operations_pb2_grpc as pb_grpc
from service.rpc.servicer import OperationsServicer

#: The full name of the service, as health checks and reflection know it.
SERVICE = pb.DESCRIPTOR.services_by_name["OperationsService"].full_name


def address(host: str, port: int) -> str:
    """host:port as gRPC binds it ([::1]:9000 for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcPortUnavailable(RuntimeError):
    """OPS_GRPC_PORT cannot be listened on: the process stops at start rather than run without
    the gRPC service its deployment announces."""


class GrpcServer:
    """OperationsService, grpc.health.v1.Health and server reflection on one port.

    Its calls share the app's resources (engine, store, catalog, group commit); stopping
    says NOT_SERVING to health checks, then lets calls in flight finish within
    OPS_GRPC_GRACE_SECONDS before it cancels them, ahead of the worker and the resources.
    """

    name = "grpc"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port: int | None = None
        self._server: aio.Server | None = None
        self._health: Any = None

    async def start(self, resources: Resources, *, shares_bus_with_api: bool) -> None:
        server = aio.server(
            options=[
                # a port another process holds is an error at start, not a shared port, unless
                # this is one of `common-ops api --workers N`'s processes
                ("grpc.so_reuseport", int(self.settings.grpc_reuse_port)),
                # a message as large as REST's largest JSON body
                ("grpc.max_receive_message_length", self.settings.max_body_bytes),
            ]
        )
        pb_grpc.add_OperationsServiceServicer_to_server(OperationsServicer(resources), server)
        checks = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        names = [SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        where = address(self.settings.host, self.settings.grpc_port)
        try:
            self.port = server.add_insecure_port(where)
        except RuntimeError as error:
            raise GrpcPortUnavailable(
                f"the gRPC server cannot listen on {where} (in use?): set OPS_GRPC_PORT to a free "
                "port, or to 0 to serve no gRPC"
            ) from error
        await server.start()
        for name in ("", SERVICE):
            await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._health = server, checks

    async def stop(self) -> None:
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self.settings.grpc_grace_seconds)
        self._server = None

    def health(self) -> dict[str, Any]:
        return {"status": "up" if self._server is not None else "down", "port": self.port}
