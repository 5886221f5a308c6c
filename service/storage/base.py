"""The FileStore port: where task input, output and error-report files live."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
from collections.abc import AsyncIterable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol
from urllib.parse import quote

from service.domain.errors import InvalidInput, NotFound

#: Longest key either store accepts (S3 allows 1024 bytes).
MAX_KEY_BYTES = 1024
#: Bytes handed to a store per blocking write while an async stream comes in.
WRITE_BATCH = 1024 * 1024
#: Types a download is served as; any other is served as application/octet-stream, so that no
#: uploaded page, script or image with script (HTML, SVG, …) is ever rendered from our origin.
PASSIVE_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/json",
        "application/x-ndjson",
        "application/gzip",
        "application/zip",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "image/png",
        "image/jpeg",
    }
)


class ObjectNotFound(NotFound):
    """The stored file does not exist."""


class FileTooLarge(InvalidInput):
    """The file is larger than this service accepts."""

    @classmethod
    def over(cls, limit: int, *, size: int | None = None, field: str | None = None) -> FileTooLarge:
        """The refusal of a file past `limit` bytes (of `size` bytes, when known)."""
        has = "" if size is None else f"the file has {size} bytes; "
        return cls(f"{has}files are limited to {limit} bytes", field=field)


@dataclass(frozen=True, slots=True)
class Stored:
    """What a store holds under a key: its size, and the SHA-256 of its bytes (lowercase hex)."""

    size: int
    sha256: str


class FileStore(Protocol):
    """Blocking, thread-safe file storage; async callers use it through asyncio.to_thread.

    Keys are relative POSIX paths ("tasks/<id>/output.csv"). Readers and writers stream: memory
    stays constant whatever the file size. A writer's file appears only when its block succeeds.
    """

    kind: str

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Stream the file's bytes; ObjectNotFound when there is none."""
        ...

    def open_write(self, key: str, content_type: str) -> AbstractContextManager[BinaryIO]:
        """Write the file; it replaces any file under `key` when the block exits cleanly."""
        ...

    def size(self, key: str) -> int:
        """Bytes stored under `key`; ObjectNotFound when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise unless the store can be used now (the readiness probe's storage check)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; a missing one is not an error."""
        ...

    def presign_put(self, key: str, *, expires: int, content_type: str) -> str:
        """A URL that accepts one HTTP PUT of the file's bytes for `expires` seconds."""
        ...

    def put_headers(self, content_type: str) -> dict[str, str]:
        """The headers a PUT to a `presign_put` URL must carry."""
        ...

    def presign_get(self, key: str, *, expires: int, download_name: str) -> str:
        """A URL serving the file as an attachment named `download_name` for `expires` seconds,
        typed by `download_type`."""
        ...

    def sweep(self, *, before: datetime) -> int:
        """Remove what writers killed mid-write left behind (temporary files, unfinished
        multipart uploads) untouched since `before`; returns how many."""
        ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative path; raise InvalidInput otherwise.

    Refuses what could escape a store's root or mean different files in different stores:
    absolute paths, backslashes, NUL and control characters, empty, "." and ".." segments.
    """
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidInput(f"a storage key has 1 to {MAX_KEY_BYTES} bytes", field="key")
    if any(ord(c) < 32 or c == "\x7f" for c in key) or "\\" in key:
        raise InvalidInput("a storage key has no control characters or backslashes", field="key")
    if key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInput(
            "a storage key is a relative path without empty, '.' or '..' segments", field="key"
        )
    return key


def attachment(download_name: str) -> str:
    """A Content-Disposition value that survives any file name (RFC 6266 and RFC 5987)."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in download_name
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(download_name, safe='')}"


def download_type(download_name: str) -> str:
    """The Content-Type a download named `download_name` is served with: its usual type when
    that is passive (PASSIVE_TYPES), else application/octet-stream."""
    guessed = mimetypes.guess_type(download_name)[0]
    return guessed if guessed in PASSIVE_TYPES else "application/octet-stream"


def digest(store: FileStore, key: str) -> Stored:
    """Read the file once, in chunks, and hash it (blocking: run it in a thread)."""
    sha, size = hashlib.sha256(), 0
    with store.open_read(key) as stream:
        while chunk := stream.read(WRITE_BATCH):
            sha.update(chunk)
            size += len(chunk)
    return Stored(size, sha.hexdigest())


#: Wraps the publication of streamed bytes (see write_stream).
Acceptance = Callable[[Stored], AbstractAsyncContextManager[object]]


async def write_stream(
    store: FileStore,
    key: str,
    content_type: str,
    chunks: AsyncIterable[bytes],
    *,
    limit: int,
    accept: Acceptance | None = None,
) -> Stored:
    """Stream `chunks` into the store under `key` in constant memory, hashing them as they pass.

    FileTooLarge past `limit` bytes, and then nothing is stored. With `accept`, the file is
    published inside `accept(stored)` once every byte is in: if entering it raises (the bytes
    are refused, or the writer lost its right to publish) nothing is stored, and its exit sees
    whether publishing succeeded (e.g. to commit the record of the bytes only then).
    """
    writer = store.open_write(key, content_type)
    stream = await asyncio.to_thread(writer.__enter__)
    sha, size, batch = hashlib.sha256(), 0, bytearray()
    closing = False

    def flush(data: bytes) -> None:  # in a thread: hashing a batch is CPU work too
        sha.update(data)
        stream.write(data)

    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise FileTooLarge.over(limit)
            batch += chunk
            if len(batch) >= WRITE_BATCH:
                await asyncio.to_thread(flush, bytes(batch))
                batch.clear()
        await asyncio.to_thread(flush, bytes(batch))
        stored = Stored(size, sha.hexdigest())
        async with accept(stored) if accept is not None else contextlib.nullcontext():
            closing = True  # the writer's own exit discards its temporary file if it fails
            await asyncio.to_thread(writer.__exit__, None, None, None)
    except BaseException as error:
        if not closing:
            await asyncio.to_thread(writer.__exit__, type(error), error, error.__traceback__)
        raise
    return stored
