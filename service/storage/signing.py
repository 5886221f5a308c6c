"""HMAC-signed, expiring URLs for the local store, which the API serves itself."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from service.domain.errors import Forbidden

#: Where the API serves local files; service/api/routes/files.py mounts its content route here.
CONTENT_PATH = "/api/v1/operations/files/content"


class InvalidSignature(Forbidden):
    """The link is not valid: it was changed, or it was not issued by this service."""


class ExpiredSignature(Forbidden):
    """The link has expired; ask for a new one."""


@dataclass(frozen=True)
class UrlSigner:
    """Signs (method, key, expiry, download name) with HMAC-SHA256 under a secret key."""

    secret: bytes = field(repr=False)
    base_url: str = ""  # e.g. https://ops.example.com; empty gives URLs relative to the API host
    clock: Callable[[], float] = time.time

    def url(self, method: str, key: str, *, expires_in: int, name: str = "") -> str:
        expires = int(self.clock()) + expires_in
        query = {"expires": str(expires), "signature": self.signature(method, key, expires, name)}
        if name:
            query["name"] = name
        return f"{self.base_url}{CONTENT_PATH}/{quote(key)}?{urlencode(query)}"

    def signature(self, method: str, key: str, expires: int, name: str = "") -> str:
        message = "\n".join((method.upper(), key, str(expires), name)).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def verify(
        self, method: str, key: str, *, expires: int, signature: str, name: str = ""
    ) -> None:
        """Raise InvalidSignature for a changed link, ExpiredSignature for an old one."""
        expected = self.signature(method, key, expires, name)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise InvalidSignature()
        if self.clock() > expires:
            raise ExpiredSignature()
