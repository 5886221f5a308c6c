"""The gateway's JWT, checked in the service (OPS_JWT_ENABLED): identity from a signed token
instead of bare X-User-ID/X-User-Roles headers that any pod could send.

Keys come from a JWKS file or URL. PyJWT checks the token (signature, exp/nbf with leeway,
iss, aud, the algorithm allow-list); the key set is fetched here with httpx rather than
PyJWKClient, whose fetch blocks the event loop and refetches for every unknown kid: a flood of
made-up kids would become a flood of fetches. Here an unknown kid refetches at most once per
OPS_JWT_JWKS_MIN_REFRESH_SECONDS, and the set is refreshed every OPS_JWT_JWKS_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from service.config import Settings
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Unauthenticated, Unavailable

logger = logging.getLogger(__name__)

#: The claims every accepted token must carry.
REQUIRED = ["exp", "iss", "aud"]


class KeySet:
    """The gateway's public keys, from a file or a URL, cached and refreshed within bounds."""

    def __init__(
        self,
        *,
        url: str = "",
        file: Path | None = None,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.file = file
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self.fetches = 0
        self._keys: list[PyJWK] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def find(self, kid: str | None) -> PyJWK:
        """The key named `kid` (or the only key, for a token without kid)."""
        if self._stale(self.cache_seconds):
            await self._refresh(self.cache_seconds)
        key = self._match(kid)
        if key is None and self._stale(self.min_refresh_seconds):
            await self._refresh(self.min_refresh_seconds)  # the gateway may have rotated keys
            key = self._match(kid)
        if key is None:
            raise Unauthenticated("the token's key (kid) is not one of the gateway's keys")
        return key

    def _stale(self, seconds: float) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= seconds

    def _match(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((k for k in self._keys if k.key_id == kid), None)

    async def _refresh(self, seconds: float) -> None:
        async with self._lock:
            if not self._stale(seconds):
                return  # another request refreshed while this one waited
            try:
                document = await self._load()
                keys = list(PyJWKSet.from_dict(document).keys)
            except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as error:
                logger.warning(
                    "gateway keys not loaded",
                    extra={"action": "jwt.jwks_failed", "error": str(error)[:200]},
                )
                if not self._keys:
                    raise Unavailable("the gateway's signing keys cannot be loaded") from None
                return  # keep serving with the keys we have
            finally:
                self.fetches += 1
                self._fetched_at = time.monotonic()
            self._keys = keys

    async def _load(self) -> Any:
        if self.file is not None:
            return json.loads(await asyncio.to_thread(self.file.read_text))
        response = await self.client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    async def close(self) -> None:
        await self.client.aclose()


class TokenVerifier:
    """Turns the gateway's Bearer token into a caller, or refuses it (401)."""

    def __init__(self, settings: Settings, keys: KeySet) -> None:
        self.keys = keys
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.algorithms = list(settings.jwt_algorithms)
        self.leeway = settings.jwt_leeway_seconds
        self.user_claim = settings.jwt_user_claim
        self.roles_claim = settings.jwt_roles_claim

    async def caller(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the Bearer token is not a JWT: {error}") from None
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated(f"the token's algorithm {header.get('alg')!r} is not allowed")
        kid = header.get("kid")
        key = await self.keys.find(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the Bearer token is not valid: {error}") from None
        return Caller(self._user(claims), self._roles(claims))

    def _user(self, claims: dict[str, Any]) -> str:
        user = _claim(claims, self.user_claim)
        if not isinstance(user, str) or not user.strip() or len(user) > 128:
            raise Unauthenticated(f"the token's {self.user_claim} claim is not a user id")
        return user.strip()

    def _roles(self, claims: dict[str, Any]) -> frozenset[str]:
        found = _claim(claims, self.roles_claim)
        if isinstance(found, str):
            found = found.replace(",", " ").split()
        if not isinstance(found, list):
            return frozenset()
        roles = {str(r).strip().lower() for r in found if isinstance(r, str) and r.strip()}
        return frozenset(roles - {SERVICE_ROLE})  # only the service token grants that role


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by its dotted path, e.g. `realm_access.roles`."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def build_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier when OPS_JWT_ENABLED, else None (the gateway's headers are trusted)."""
    if not settings.jwt_enabled:
        return None
    keys = KeySet(
        url=settings.jwt_jwks_url,
        file=settings.jwt_jwks_file,
        cache_seconds=settings.jwt_jwks_cache_seconds,
        min_refresh_seconds=settings.jwt_jwks_min_refresh_seconds,
    )
    return TokenVerifier(settings, keys)
