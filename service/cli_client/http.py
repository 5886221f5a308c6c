"""The REST API as the client sees it: JSON calls, problems as errors, and the task stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from service.cli_client.config import Connection

PREFIX = "/api/v1/operations"
#: Reconnects of a stream that broke (each resumes with Last-Event-ID) before giving up.
RECONNECTS = 5


class ApiProblem(Exception):
    """The API answered with an error (an RFC 9457 problem when it could)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.status = status
        self.problem = problem


class Unreachable(Exception):
    """The API could not be reached."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: str | None
    event: str
    data: dict[str, Any]


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {
            "status": response.status_code,
            "title": response.reason_phrase,
            "detail": response.text[:500] or response.reason_phrase,
        }
    return ApiProblem(response.status_code, body)


class Api:
    """A connection to the API; every call raises ApiProblem for an error answer."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        self.connection = connection
        self.client = httpx.Client(
            base_url=connection.api, headers=connection.headers(), timeout=timeout
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith(("http://", "https://")) else PREFIX + path
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(f"{self.connection.api}: {error}") from error
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def absolute(self, url: str) -> str:
        """Upload and download URLs of the local store are paths on the API's host."""
        return url if url.startswith(("http://", "https://")) else self.connection.api + url

    def put_file(self, url: str, content: bytes, headers: dict[str, str]) -> None:
        try:
            # not through the API's client: a presigned S3 URL must not get our identity headers
            response = httpx.put(self.absolute(url), content=content, headers=headers, timeout=300)
        except httpx.TransportError as error:
            raise Unreachable(f"upload: {error}") from error
        if response.status_code >= 400:
            raise _problem(response)

    def download(self, url: str) -> Iterator[bytes]:
        try:
            with httpx.stream("GET", self.absolute(url), timeout=300) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem(response)
                yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise Unreachable(f"download: {error}") from error

    def follow(self, task_id: str) -> Iterator[StreamEvent]:
        """The task's Server-Sent Events; a broken connection resumes where it stopped."""
        last_id: str | None = None
        broken = 0
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with self.client.stream(
                    "GET",
                    f"{PREFIX}/tasks/{task_id}/stream",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _problem(response)
                    for event in _events(response.iter_lines()):
                        broken = 0
                        last_id = event.id or last_id
                        yield event
            except httpx.TransportError as error:
                broken += 1
                if broken > RECONNECTS:
                    raise Unreachable(f"stream: {error}") from error
                time.sleep(min(5.0, 0.2 * 2**broken))
                continue
            # the server ended the stream (it stops, or this client fell behind): resume
            broken += 1
            if broken > RECONNECTS:
                raise Unreachable("the stream keeps ending")


def _events(lines: Iterator[str]) -> Iterator[StreamEvent]:
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield StreamEvent(
                    fields.get("id"), fields.get("event", "message"), json.loads("\n".join(data))
                )
            fields, data = {}, []
        elif line.startswith(":"):
            continue  # a keep-alive comment
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
