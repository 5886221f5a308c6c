"""Several API processes on one port, each with a listening socket of its own (SO_REUSEPORT).

uvicorn's `--workers` binds one socket in the supervisor and hands that same socket to every
worker: the kernel then gives each new connection to whichever worker's accept runs first, and
a worker that is idle when clients connect takes them all (measured: 16 keep-alive clients, all
16 on one of two workers, the other idle). With SO_REUSEPORT every worker listens on a socket
of its own in one group, and the kernel spreads connections over the group by their addresses.

uvicorn's supervisor (`Multiprocess`: restarts, SIGHUP, SIGTTIN/SIGTTOU) stays as it is; only
the socket it passes to each worker differs: `PortClaim` pickles as its address, so each
worker that unpickles it binds a socket of its own. The supervisor's claim is bound and never
listens: it keeps the port from anyone else and receives no connection. Linux semantics (on
BSD and macOS the last socket bound takes every connection).
"""

from __future__ import annotations

import socket
from typing import Any

from uvicorn import Config
from uvicorn.supervisors import Multiprocess


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) in the port's SO_REUSEPORT group, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = PortClaim(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class PortClaim(socket.socket):
    """A socket that crosses to a worker process as its address: a fresh socket in the same
    SO_REUSEPORT group, not a copy of this one (as multiprocessing would send a plain socket)."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return bind_reuse_port, (host, port)


def serve_processes(config: Config) -> None:
    """Run `config.workers` processes of `config.app` (an import string) under uvicorn's
    supervisor, each accepting on its own socket."""
    claim = bind_reuse_port(config.host, config.port)
    try:
        Multiprocess(config, sockets=[claim]).run()
    finally:
        claim.close()
