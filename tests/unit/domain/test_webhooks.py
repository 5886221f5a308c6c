"""Webhook rules: the Standard Webhooks signature, the allow-list, refused addresses, backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from service.domain import webhooks


class TestSignature:
    def test_the_documented_scheme(self) -> None:
        secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
        body = b'{"reason":"completed"}'
        header = webhooks.sign(secret, "msg_1", 1700000000, body)
        mac = hmac.new(b"k" * 32, b'msg_1.1700000000.{"reason":"completed"}', hashlib.sha256)
        assert header == "v1," + base64.b64encode(mac.digest()).decode()
        assert webhooks.verify(secret, "msg_1", 1700000000, body, header)
        assert webhooks.verify(secret, "msg_1", 1700000000, body, f"v1,AAAA {header}")
        assert not webhooks.verify(secret, "msg_1", 1700000001, body, header)
        assert not webhooks.verify(secret, "msg_2", 1700000000, body, header)
        assert not webhooks.verify(secret, "msg_1", 1700000000, body + b" ", header)

    def test_a_plain_secret_is_its_bytes(self) -> None:
        assert webhooks.secret_key("plain") == b"plain"
        assert webhooks.secret_key("whsec_not base64!") == b"whsec_not base64!"

    def test_new_secrets_differ_and_decode_to_32_bytes(self) -> None:
        first, second = webhooks.new_secret(), webhooks.new_secret()
        assert first != second
        assert len(webhooks.secret_key(first)) == 32


class TestWhereTo:
    @pytest.mark.parametrize(
        ("host", "patterns", "allowed"),
        [
            ("hooks.example.com", ["*"], True),
            ("hooks.example.com", ["hooks.example.com"], True),
            ("HOOKS.example.com.", ["hooks.example.com"], True),
            ("a.b.example.com", ["*.example.com"], True),
            ("example.com", ["*.example.com"], False),
            ("example.com.evil.test", ["example.com"], False),
            ("anything", [], False),
        ],
    )
    def test_allow_list(self, host: str, patterns: list[str], allowed: bool) -> None:
        assert webhooks.host_allowed(host, patterns) is allowed

    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "100.64.0.1",
        ],
    )
    def test_refused_addresses(self, address: str) -> None:
        assert webhooks.address_refused(address) is not None

    @pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
    def test_public_addresses(self, address: str) -> None:
        assert webhooks.address_refused(address) is None

    @pytest.mark.parametrize(
        ("url", "refused"),
        [
            ("https://hooks.example.com/x", False),
            ("http://127.0.0.1:8080/x", True),
            ("http://[::1]/x", True),
            ("http://localhost/x", True),
            ("http://api.localhost/x", True),
            ("ftp://hooks.example.com/x", True),
            ("http://hooks.example.com:99999/x", True),
        ],
    )
    def test_urls_at_create(self, url: str, refused: bool) -> None:
        reason = webhooks.url_refused(url, ["*"], allow_private=False)
        assert (reason is not None) is refused

    def test_private_allowed_by_the_setting(self) -> None:
        assert webhooks.url_refused("http://127.0.0.1/x", ["*"], allow_private=True) is None
        assert webhooks.url_refused("http://127.0.0.1/x", ["h"], allow_private=True) is not None


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [webhooks.retry_delay(n, base=5, cap=60) for n in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]
