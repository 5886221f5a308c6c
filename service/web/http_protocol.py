"""The API's HTTP protocol: uvicorn's (httptools), sending what a response writes in one turn
of the event loop as one write on the socket.

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and its body at `http.response.body`: two `send` system calls a response, and two segments for
the client to read. On loopback each send also runs the receiving side's TCP stack, so under 16
creating clients the socket writes were ~11 % of an API process's CPU (py-spy, this machine,
2026-12-07). The app sends both messages without waiting in between, so keeping a connection's
writes until the end of the loop's turn sends them together; a streamed response still goes
out chunk by chunk, each at the end of the turn it was written in. uvicorn has no setting for
this: the protocol is its own, with the transport it is handed wrapped (`--http` takes a class).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _TurnBuffered(asyncio.Transport):
    """A transport whose writes wait for the end of the loop's turn, then go out as one.

    Everything else is the wrapped transport's; closing first sends what waits (as a transport
    sends its buffer before it closes), aborting drops it (as a transport's abort does)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a turn-buffered transport (see the module)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnBuffered(transport, self.loop))


#: `uvicorn --http` / Config(http=…): the protocol by its import string (it crosses to worker
#: processes as the rest of the config does)
HTTP = f"{__name__}:HttpProtocol"
