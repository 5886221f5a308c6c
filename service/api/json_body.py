"""JSON request bodies: read within the size limit, checked before anything recursive parses them.

json.loads, pydantic and our own walkers all recurse, so a body of a million "[" would end in
a RecursionError (FastAPI answers it with a bare 400). The nesting of a body is counted on its
bytes first, without recursion, and the body is parsed here, so that every fault of a body is a
422 naming it. Routes get this through BoundedRoute, FastAPI's way of giving a route its own
Request class ("Custom Request and APIRoute class" in its docs).
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Callable, Coroutine
from itertools import accumulate
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from service.api import fields

#: Deepest nesting of arrays and objects in a body: far below the interpreter's recursion limit,
#: above OPS_PARAMS_MAX_DEPTH (whose own, settable check names the params field).
MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _STEP)


def depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest; brackets inside strings don't count."""
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, skeleton)), default=0)


def body_error(reason: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "json_invalid", "loc": ("body",), "msg": reason, "input": None}]
    )


def parse(raw: bytes) -> Any:
    """The JSON value of a body: UTF-8 (RFC 8259 §8.1), at most MAX_DEPTH levels deep."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise body_error(f"the body is not UTF-8 (byte {error.start})") from None
    if depth(raw) > MAX_DEPTH:
        raise body_error(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise body_error(f"not valid JSON: {error}") from None
    except ValueError:  # Python's own bound on the digits of an int it reads
        raise body_error("a number has more than 4,300 digits") from None


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is larger than {limit} bytes")


def is_json(request: Request) -> bool:
    """Whether FastAPI would parse the body as JSON (its own test of the Content-Type)."""
    return is_json_type(request.headers.get("content-type"))


def is_json_type(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON as FastAPI tells (application/json or */*+json)."""
    if not content_type:
        return False
    if content_type == "application/json":  # what nearly every client sends: no parsing
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class JSONRequest(Request):
    """A request whose body, when read whole, is at most OPS_MAX_BODY_BYTES (413 beyond), and
    whose JSON is checked by `parse`.

    Why not the framework's max_body_size alone: Starlette answers a body whose Content-Length
    is over it with a text/plain 413 that replaces whatever the app answers
    (RequestBodyLimitResponder.send_with_limit), and every error of this API is a problem. The
    max_body_size of the routers that read other bodies is their outer bound (service/app.py);
    uploads stream through request.stream() and keep their own limit, OPS_FILES_MAX_BYTES.
    """

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit = fields.LIMITS.get().max_body_bytes
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large(limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse(await self.body())
        return self._json


class BoundedRoute(APIRoute):
    """A route that reads bodies through JSONRequest, with the input limits of its app."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        takes_body = self.body_field is not None

        async def bounded(request: Request) -> Response:
            token = fields.LIMITS.set(request.app.state.input_limits)
            try:
                request = JSONRequest(request.scope, request.receive)
                if takes_body and is_json(request) and await request.body():
                    # parsed here, where a fault is a 422; FastAPI then reads the parsed value
                    await request.json()
                return await handle(request)
            finally:
                fields.LIMITS.reset(token)

        return bounded
