"""LocalFileStore: files under the data dir, with signed URLs that the API serves itself."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from service.domain.errors import InvalidInput
from service.storage.base import ObjectNotFound, check_key
from service.storage.signing import UrlSigner

#: A writer's temporary file, beside its target: mkstemp's ".<name>.<8 random>.part".
TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.part")


class LocalFileStore:
    """Keys are relative paths under `root`; writes land atomically (temp file, then rename)."""

    kind = "local"

    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.signer = signer

    def path(self, key: str) -> Path:
        """The file behind `key`; refuses any key that would resolve outside the root."""
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidInput("the storage key leaves the store's root", field="key")
        return path

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            stream = self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFound(f"no stored file {key!r}") from error
        with stream:
            yield stream

    @contextlib.contextmanager
    def open_write(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Each writer has its own temp file beside the target, so concurrent writers never mix.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as stream:
                yield stream
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def size(self, key: str) -> int:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no stored file {key!r}")
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"the files directory {self.root} is not writable")

    def presign_put(self, key: str, *, expires: int, content_type: str) -> str:
        return self.signer.url("PUT", check_key(key), expires_in=expires)

    def put_headers(self, content_type: str) -> dict[str, str]:
        return {"Content-Type": content_type}

    def presign_get(self, key: str, *, expires: int, download_name: str) -> str:
        return self.signer.url("GET", check_key(key), expires_in=expires, name=download_name)

    def sweep(self, *, before: datetime) -> int:
        """Temporary files of writers that died (SIGKILL, power loss): a live writer touches
        its file at every batch, so one untouched since `before` has no writer any more."""
        removed, cutoff = 0, before.timestamp()
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = Path(folder, name)
                if TEMPORARY.fullmatch(name) and _modified(path) < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # its writer just published or removed it
        return float("inf")
