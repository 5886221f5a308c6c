"""Local use only (OPS_UI_DEV_LOGIN, which `common-ops dev` turns on and production refuses):
a visitor picks a user at /ui/login; a cookie carries it, and this middleware hands it on as
the X-User-ID / X-User-Roles headers a gateway would send.

CSRF: a cookie rides along on a cross-site request, so it is honoured for a request that
changes something (not GET/HEAD/OPTIONS) only when the request also carries `X-Ops-UI: 1`, a
header a cross-site page cannot send (it would need a CORS preflight this service never
grants). The dashboard's script sends it on every call. A request that already has X-User-ID
(the gateway's) is left alone.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

USER_COOKIE = "ops_dev_user"
ROLES_COOKIE = "ops_dev_roles"
UI_HEADER = b"x-ops-ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class DevLogin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = _with_identity(scope)
        await self.app(scope, receive, send)


def _with_identity(scope: Scope) -> Scope:
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
    names = {name for name, _ in headers}
    if b"x-user-id" in names or b"cookie" not in names:
        return scope
    if scope.get("method") not in SAFE_METHODS and UI_HEADER not in names:
        return scope
    cookie = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: no identity from it
                return scope
    user = cookie.get(USER_COOKIE)
    if user is None or not user.value:
        return scope
    headers.append((b"x-user-id", unquote(user.value).encode()))
    roles = cookie.get(ROLES_COOKIE)
    if roles is not None and roles.value:
        headers.append((b"x-user-roles", unquote(roles.value).encode()))
    return {**scope, "headers": headers}
