"""The API's HTTP protocol sends what a response writes in one turn of the loop as one write."""

from __future__ import annotations

import asyncio
import socket

from service.web.http_protocol import _TurnBuffered
from tests.fixtures.serving import serving


class Socket(asyncio.Transport):
    """The operating system's side of a connection: what reached it, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def turn() -> None:
    """Let the loop finish its current turn (callbacks scheduled with call_soon run)."""
    await asyncio.sleep(0)


class TestTurnBuffered:
    async def test_writes_of_one_turn_go_out_together_at_its_end(self) -> None:
        wire = Socket()
        buffered = _TurnBuffered(wire, asyncio.get_running_loop())
        buffered.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
        buffered.write(b"{}")
        assert wire.writes == []
        assert buffered.get_write_buffer_size() == 45
        await turn()
        assert wire.writes == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]

    async def test_writes_of_later_turns_go_out_each_at_the_end_of_its_turn(self) -> None:
        wire = Socket()
        buffered = _TurnBuffered(wire, asyncio.get_running_loop())
        for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
            buffered.write(chunk)
            await turn()
        assert wire.writes == [b"data: 1\n\n", b"data: 2\n\n"]

    async def test_closing_sends_what_waits_first(self) -> None:
        wire = Socket()
        buffered = _TurnBuffered(wire, asyncio.get_running_loop())
        buffered.writelines([b"HTTP/1.1 400 Bad Request\r\n\r\n", b"bad"])
        buffered.close()
        assert wire.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\nbad"]
        assert wire.closed
        await turn()  # the end of the turn finds nothing left to send
        assert len(wire.writes) == 1

    async def test_aborting_drops_what_waits(self) -> None:
        wire = Socket()
        buffered = _TurnBuffered(wire, asyncio.get_running_loop())
        buffered.write(b"partial")
        buffered.abort()
        await turn()
        assert wire.writes == []
        assert wire.aborted

    async def test_nothing_is_written_to_a_connection_closed_meanwhile(self) -> None:
        wire = Socket()
        buffered = _TurnBuffered(wire, asyncio.get_running_loop())
        buffered.write(b"late")
        wire.close()  # the peer went away
        await turn()
        assert wire.writes == []


async def _read_response(sock: socket.socket) -> bytes:
    """One whole response (a Content-Length body) from a blocking socket, in a thread."""

    def read() -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body

    return await asyncio.to_thread(read)


async def test_the_protocol_serves_keep_alive_requests_whole() -> None:
    """Under uvicorn with the protocol, as `common-ops api` serves (tests/fixtures/serving.py
    serves every app of the tests so): requests one after another on one
    connection, each answered whole, and the server's own 400 for a request it cannot read."""

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        body = scope["path"].encode()
        await send(  # type: ignore[operator]
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    async with serving(app) as url:  # type: ignore[arg-type]
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            for path in ("/first", "/second", "/third"):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                response = await _read_response(sock)
                assert response.startswith(b"HTTP/1.1 200 OK\r\n")
                assert response.endswith(b"\r\n\r\n" + path.encode())
            sock.sendall(b"NOT HTTP\r\n\r\n")
            rest = await asyncio.to_thread(sock.recv, 65536)
            assert rest.startswith(b"HTTP/1.1 400 Bad Request")
