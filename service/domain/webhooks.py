"""Webhook rules without I/O: the signature, the secrets, which hosts and addresses may be
called, and when a failed delivery is tried again.

The signature follows the Standard Webhooks scheme (the one Svix uses, close to Stripe's):

    webhook-id:        the delivery's id (the same on every retry: receivers deduplicate by it)
    webhook-timestamp: Unix seconds of this attempt
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

`key` is the secret's bytes: for a secret "whsec_<base64>" the decoded base64, for any other
secret (the OPS_WEBHOOK_SIGNING_SECRET fallback) its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def new_secret() -> str:
    """A fresh signing secret: "whsec_" and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret (see the module's docstring)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header's value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, message_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does: any of the space-separated signatures matches (key rotation)."""
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether the allow-list names the host: exact names, "*.example.com", or "*" for any."""
    host = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(host, p.lower().rstrip(".")) for p in patterns)


def address_refused(address: str) -> str | None:
    """Why an address may not be called (loopback, private, link-local …), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for refused, what in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_private, "private"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_unspecified, "unspecified"),
        (not ip.is_global, "not public"),
    ):
        if refused:
            return f"{ip} is a {what} address"
    return None


def url_refused(url: str, allowed_hosts: Iterable[str], *, allow_private: bool) -> str | None:
    """What can be told of a URL without resolving it: the scheme, the allow-list, and a host
    that is itself a refused address ("127.0.0.1", "[::1]", "localhost")."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as error:
        return f"not a valid URL: {error}"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http or https URL with a host"
    if not host_allowed(host, allowed_hosts):
        return f"host {host} is not on the webhook allow-list (OPS_WEBHOOK_ALLOWED_HOSTS)"
    if allow_private:
        return None
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.endswith(
        ".localhost"
    ):
        return f"host {host} is loopback (OPS_WEBHOOK_ALLOW_PRIVATE allows it)"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: checked once resolved, at delivery
    reason = address_refused(host)
    return None if reason is None else f"{reason} (OPS_WEBHOOK_ALLOW_PRIVATE allows it)"


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base·2^(n-1), capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))
