"""The file store from a handler: its blocking open and close run in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import BinaryIO

from service.storage.base import FileStore


@asynccontextmanager
async def writing(store: FileStore, key: str, content_type: str) -> AsyncIterator[BinaryIO]:
    """A file being written to the store; it is published only if the block ends without an
    error. An error or a cancel passes into the store's own exit, which drops the partial
    bytes (the local store's temporary file, the S3 spool that is never uploaded)."""
    async with _opened(store.open_write(key, content_type)) as stream:
        yield stream


@asynccontextmanager
async def reading(store: FileStore, key: str) -> AsyncIterator[BinaryIO]:
    """A stored file being read."""
    async with _opened(store.open_read(key)) as stream:
        yield stream


@asynccontextmanager
async def _opened(opened: AbstractContextManager[BinaryIO]) -> AsyncIterator[BinaryIO]:
    stream = await asyncio.to_thread(opened.__enter__)
    try:
        yield stream
    except BaseException as error:
        await asyncio.to_thread(opened.__exit__, type(error), error, error.__traceback__)
        raise
    await asyncio.to_thread(opened.__exit__, None, None, None)
