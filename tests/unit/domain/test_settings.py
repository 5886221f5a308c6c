"""Settings values: ETags, If-Match, the audit diff with secrets masked, the cache."""

from __future__ import annotations

from service.domain.settings import SettingVersion, changes, etag, matches
from service.usecases.settings_cache import SettingsCache

SECRETS = frozenset({"apiKey"})


class TestEtag:
    def test_it_names_the_version_and_the_document(self) -> None:
        one = etag("payment", 1, {"a": 1})
        assert one.startswith('"1-')
        assert one.endswith('"')
        assert one != etag("payment", 1, {"a": 2})
        assert one != etag("payment", 2, {"a": 1})
        assert one == etag("payment", 1, {"a": 1})

    def test_if_match_lists_are_compared_strongly(self) -> None:
        current = etag("payment", 1, {})
        assert matches(f'"x", {current}', current)
        assert not matches(f"W/{current}", current)
        assert not matches("*", current)


class TestChanges:
    def test_changed_leaves_with_their_paths(self) -> None:
        old = {"a": 1, "b": {"c": [1], "d": "x"}}
        new = {"a": 1, "b": {"c": [1, 2], "e": True}}
        assert changes(old, new, SECRETS) == [
            {"path": "b.c", "old": [1], "new": [1, 2]},
            {"path": "b.d", "old": "x", "new": None},
            {"path": "b.e", "old": None, "new": True},
        ]

    def test_secrets_are_masked_wherever_they_are(self) -> None:
        old = {"p": {"s": {"apiKey": "sk_1"}}}
        new = {"p": {"s": {"apiKey": "sk_2"}, "t": {"apiKey": "sk_3", "name": "T"}}}
        assert changes(old, new, SECRETS) == [
            {"path": "p.s.apiKey", "old": "***", "new": "***"},
            {"path": "p.t", "old": None, "new": {"apiKey": "***", "name": "T"}},
        ]
        assert changes({"apiKey": None}, {"apiKey": "x"}, SECRETS)[0]["old"] is None


class TestCache:
    def test_entries_live_for_the_ttl(self) -> None:
        now = [0.0]
        cache = SettingsCache(300, clock=lambda: now[0])
        cache.put(SettingVersion("payment", 1, {}), generation=cache.generation("payment"))
        assert "payment" in cache
        now[0] = 299.9
        assert cache.get("payment") is not None
        now[0] = 300.0
        assert cache.get("payment") is None

    def test_a_drop_during_a_read_keeps_the_read_out(self) -> None:
        cache = SettingsCache(300)
        generation = cache.generation("payment")
        cache.drop("payment")  # a change arrived while the read was at the database
        cache.put(SettingVersion("payment", 1, {}), generation=generation)
        assert "payment" not in cache

    def test_no_ttl_no_cache(self) -> None:
        cache = SettingsCache(0)
        cache.put(SettingVersion("payment", 1, {}), generation=0)
        assert "payment" not in cache
