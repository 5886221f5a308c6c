"""Signed URLs of the local store: what they cover, expiry, tampering."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from service.storage.signing import CONTENT_PATH, ExpiredSignature, InvalidSignature, UrlSigner

SECRET = b"s" * 32
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def parts(url: str) -> tuple[str, dict[str, str]]:
    split = urlsplit(url)
    key = unquote(split.path.removeprefix(CONTENT_PATH + "/"))
    return key, {k: v[0] for k, v in parse_qs(split.query).items()}


class TestUrl:
    def test_names_the_key_the_expiry_and_the_download_name(self) -> None:
        signer = UrlSigner(SECRET, clock=Clock())
        url = signer.url("GET", "exports/été 2024.csv", expires_in=60, name="été.csv")
        assert url.startswith(CONTENT_PATH + "/exports/")
        key, query = parts(url)
        assert key == "exports/été 2024.csv"
        assert query["expires"] == str(int(T0) + 60)
        assert query["name"] == "été.csv"
        signer.verify(
            "GET",
            key,
            expires=int(query["expires"]),
            signature=query["signature"],
            name=query["name"],
        )

    def test_a_base_url_makes_absolute_urls(self) -> None:
        signer = UrlSigner(SECRET, base_url="https://ops.example.com", clock=Clock())
        assert signer.url("PUT", "a.csv", expires_in=5).startswith(
            "https://ops.example.com/api/v1/operations/files/content/a.csv?"
        )


class TestVerify:
    CHANGES: ClassVar[list[dict[str, object]]] = [
        {"method": "PUT"},
        {"key": "a/other.csv"},
        {"expires": int(T0) + 3600},
        {"name": "evil.html"},
        {"signature": "0" * 64},
        {"signature": ""},
        {"secret": b"t" * 32},
    ]

    @pytest.mark.parametrize("change", CHANGES)
    def test_any_change_makes_the_link_invalid(self, change: dict[str, object]) -> None:
        clock = Clock()
        key, query = parts(
            UrlSigner(SECRET, clock=clock).url("GET", "a/b.csv", expires_in=60, name="b.csv")
        )
        args: dict[str, object] = {
            "method": "GET",
            "key": key,
            "expires": int(query["expires"]),
            "signature": query["signature"],
            "name": query["name"],
            "secret": SECRET,
            **change,
        }
        signer = UrlSigner(args.pop("secret"), clock=clock)  # type: ignore[arg-type]
        with pytest.raises(InvalidSignature):
            signer.verify(args.pop("method"), args.pop("key"), **args)  # type: ignore[arg-type]

    def test_a_link_expires(self) -> None:
        clock = Clock()
        signer = UrlSigner(SECRET, clock=clock)
        key, query = parts(signer.url("GET", "a.csv", expires_in=60))
        expires, signature = int(query["expires"]), query["signature"]
        clock.now = T0 + 60
        signer.verify("GET", key, expires=expires, signature=signature)
        clock.now = T0 + 61
        with pytest.raises(ExpiredSignature):
            signer.verify("GET", key, expires=expires, signature=signature)

    def test_the_secret_is_not_in_the_repr(self) -> None:
        assert "sss" not in repr(UrlSigner(SECRET))
