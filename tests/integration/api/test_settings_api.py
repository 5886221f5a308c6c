"""Stored settings over HTTP: versions with ETag/If-Match, audit, the event, the public view, and
the cache of each replica dropped by `settings.changed` (issue 12, "Settings")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.app import create_app
from service.bootstrap import Resources
from service.clock import utcnow
from service.config import Settings
from service.db.repositories.settings import SettingsRepository
from service.db.tables import outbox_table
from service.domain.settings import SettingVersion
from service.events.base import OutgoingEvent
from service.events.inprocess import InProcessPublisher
from tests.fixtures.app import ADMIN, SERVICE, user, wait_until
from tests.integration.api.support import assert_problem

PAYMENT = "/api/v1/settings/payment"
PUBLIC = "/api/v1/public/settings/payment"
STRIPE = {"displayName": "Card", "enabled": True, "publishableKey": "pk_live_1", "apiKey": "sk_1"}


def page(**changes: Any) -> dict[str, Any]:
    """A payment settings page: card and cash on delivery in EUR, Stripe with its keys."""
    body: dict[str, Any] = {
        "enabledMethods": ["card", "cash_on_delivery"],
        "defaultCurrency": "EUR",
        "acceptedCurrencies": ["EUR", "USD"],
        "cashOnDelivery": {"minOrderAmount": 500, "maxOrderAmount": 30000, "fee": 200},
        "providers": {"stripe": {**STRIPE, "webhookSecret": "whsec_1"}},
    }
    return body | changes


async def read(api: httpx.AsyncClient) -> httpx.Response:
    response = await api.get(PAYMENT, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response


async def put(
    api: httpx.AsyncClient, body: dict[str, Any], etag: str | None = None
) -> httpx.Response:
    etag = etag or (await read(api)).headers["etag"]
    return await api.put(PAYMENT, json=body, headers={**ADMIN, "If-Match": etag})


class TestRead:
    async def test_before_any_save_the_defaults_are_version_0_with_an_etag(
        self, api: httpx.AsyncClient
    ) -> None:
        response = await read(api)
        body = response.json()
        assert body["version"] == 0
        assert response.headers["etag"] == body["etag"]
        assert body["etag"].startswith('"0-')
        assert body["settings"]["defaultCurrency"] == "EUR"
        assert body["settings"]["enabledMethods"] == ["card"]
        assert body["changedBy"] is None

    async def test_only_admins_and_services(self, api: httpx.AsyncClient) -> None:
        assert_problem(await api.get(PAYMENT, headers=user("alice")), 403)
        assert_problem(await api.get(PAYMENT), 401)
        assert (await api.get(PAYMENT, headers=SERVICE)).status_code == 200

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/v1/settings/shipping"),
            ("PUT", "/api/v1/settings/shipping"),
            ("GET", "/api/v1/settings/shipping/versions"),
            ("GET", "/api/v1/public/settings/shipping"),
        ],
    )
    async def test_an_unknown_key_is_a_404_problem(
        self, api: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await api.request(method, path, headers=ADMIN, json={})
        assert "payment" in assert_problem(response, 404)["detail"]


class TestSave:
    async def test_a_put_is_the_next_version_with_its_own_etag(
        self, api: httpx.AsyncClient
    ) -> None:
        first = await read(api)
        saved = await put(api, page(), first.headers["etag"])
        assert saved.status_code == 200, saved.text
        body = saved.json()
        assert body["version"] == 1
        assert body["changedBy"] == "root"
        assert saved.headers["etag"] != first.headers["etag"]
        again = await read(api)
        assert again.headers["etag"] == saved.headers["etag"]
        assert again.json()["settings"]["cashOnDelivery"]["maxOrderAmount"] == 30000

    async def test_a_stale_etag_is_412_and_none_is_428(self, api: httpx.AsyncClient) -> None:
        stale = (await read(api)).headers["etag"]
        assert (await put(api, page(), stale)).status_code == 200
        problem = assert_problem(await put(api, page(capture="manual"), stale), 412)
        assert problem["currentVersion"] == 1
        no_etag = await api.put(PAYMENT, json=page(), headers=ADMIN)
        assert_problem(no_etag, 428)
        assert (await read(api)).json()["version"] == 1  # neither changed anything

    async def test_a_user_may_not_save(self, api: httpx.AsyncClient) -> None:
        etag = (await read(api)).headers["etag"]
        response = await api.put(PAYMENT, json=page(), headers={**user("bob"), "If-Match": etag})
        assert_problem(response, 403)

    async def test_a_put_that_changes_nothing_saves_nothing(self, api: httpx.AsyncClient) -> None:
        saved = await put(api, page())
        same = await put(api, page(), saved.headers["etag"])
        assert same.json()["version"] == 1
        assert same.headers["etag"] == saved.headers["etag"]


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (page(unknown=1), "unknown"),
            (page(defaultCurrency="EURO"), "defaultCurrency"),
            (page(defaultCurrency="XYZ"), "defaultCurrency"),
            (page(paymentTimeoutMinutes=0), "paymentTimeoutMinutes"),
            (page(enabledMethods=["cheque"]), "enabledMethods.0"),
            (page(cashOnDelivery={"minOrderAmount": -1}), "cashOnDelivery.minOrderAmount"),
            (page(cashOnDelivery={"fee": "2"}), "cashOnDelivery.fee"),
            (page(providers={"stripe": {"displayName": ""}}), "providers.stripe.displayName"),
            (page(providers={"stripe": {"displayName": "x", "apiKey": "a" * 513}}), None),
            (page(providers={"acme": {"displayName": "Acme"}}), "providers.acme"),
        ],
    )
    async def test_bad_input_is_a_422_naming_the_field(
        self, api: httpx.AsyncClient, body: dict[str, Any], field: str | None
    ) -> None:
        response = await put(api, body)
        problem = assert_problem(response, 422)
        fields = [e["field"] for e in problem["errors"]]
        if field is not None:
            assert any(f.startswith(field) for f in fields), fields
        else:
            assert any("apiKey" in f for f in fields), fields
        assert (await read(api)).json()["version"] == 0

    async def test_a_number_with_a_zero_fraction_is_that_integer(
        self, api: httpx.AsyncClient
    ) -> None:
        saved = await put(api, page(paymentTimeoutMinutes=15.0, cashOnDelivery={"fee": 2e2}))
        assert saved.status_code == 200, saved.text
        assert saved.json()["settings"]["paymentTimeoutMinutes"] == 15
        assert saved.json()["settings"]["cashOnDelivery"]["fee"] == 200
        refused = await put(api, page(paymentTimeoutMinutes="15"))
        assert [e["field"] for e in assert_problem(refused, 422)["errors"]] == [
            "paymentTimeoutMinutes"
        ]

    @pytest.mark.parametrize(
        "body",
        [
            page(defaultCurrency="GBP"),  # not accepted
            page(cashOnDelivery={"minOrderAmount": 10, "maxOrderAmount": 5}),
            page(enabledMethods=["card", "card"]),
            page(cashOnDelivery={"perCurrency": {"GBP": {}}}),  # not accepted
        ],
    )
    async def test_inconsistent_pages_are_refused(
        self, api: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        assert_problem(await put(api, body), 422)


class TestSecrets:
    async def test_secrets_are_never_shown_only_flagged(self, api: httpx.AsyncClient) -> None:
        saved = await put(api, page())
        stripe = saved.json()["settings"]["providers"]["stripe"]
        assert stripe["apiKeyConfigured"] is True
        assert stripe["webhookSecretConfigured"] is True
        assert "apiKey" not in stripe
        assert "sk_1" not in saved.text
        assert "sk_1" not in (await read(api)).text
        assert "whsec_1" not in (await api.get(f"{PAYMENT}/versions", headers=ADMIN)).text

    async def test_a_secret_left_out_is_kept_and_null_removes_it(
        self, api: httpx.AsyncClient
    ) -> None:
        await put(api, page())
        kept = await put(api, page(providers={"stripe": {"displayName": "Cards"}}))
        stripe = kept.json()["settings"]["providers"]["stripe"]
        assert stripe["apiKeyConfigured"] is True
        assert stripe["displayName"] == "Cards"
        cleared = await put(
            api, page(providers={"stripe": {"displayName": "Cards", "apiKey": None}})
        )
        stripe = cleared.json()["settings"]["providers"]["stripe"]
        assert stripe["apiKeyConfigured"] is False
        assert stripe["webhookSecretConfigured"] is True

    async def test_the_public_view_has_no_secret_and_needs_no_identity(
        self, api: httpx.AsyncClient
    ) -> None:
        await put(api, page())
        response = await api.get(PUBLIC)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] == 1
        assert body["settings"]["providers"]["stripe"] == {
            "displayName": "Card",
            "enabled": True,
            "publishableKey": "pk_live_1",
        }
        assert body["settings"]["enabledMethods"] == ["card", "cash_on_delivery"]
        assert body["settings"]["cashOnDelivery"]["maxOrderAmount"] == 30000
        for secret in ("sk_1", "whsec_1", "apiKey", "webhookSecret", "capture", "mode"):
            assert secret not in response.text

    async def test_the_public_view_before_any_save(self, api: httpx.AsyncClient) -> None:
        body = (await api.get(PUBLIC, headers={"X-User-ID": "x"})).json()
        assert body["version"] == 0
        assert body["settings"]["providers"] == {}


class TestHistory:
    async def test_versions_list_each_save_with_its_audit_newest_first(
        self, api: httpx.AsyncClient
    ) -> None:
        await put(api, page())
        await put(api, page(providers={"stripe": {**STRIPE, "apiKey": "sk_2"}}, capture="manual"))
        response = await api.get(f"{PAYMENT}/versions", headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == 2
        assert [v["version"] for v in body["items"]] == [2, 1]
        latest = body["items"][0]
        assert latest["changedBy"] == "root"
        assert latest["changedAt"]
        assert latest["changes"] == [
            {"path": "capture", "old": "automatic", "new": "manual"},
            {"path": "providers.stripe.apiKey", "old": "***", "new": "***"},
        ]
        first = {c["path"]: c for c in body["items"][1]["changes"]}
        assert first["providers.stripe"]["old"] is None  # a new provider: one change, masked
        assert first["providers.stripe"]["new"]["apiKey"] == "***"
        assert first["providers.stripe"]["new"]["webhookSecret"] == "***"
        assert first["providers.stripe"]["new"]["displayName"] == "Card"
        assert "defaultCurrency" not in first  # unchanged
        assert first["cashOnDelivery.maxOrderAmount"] == {
            "path": "cashOnDelivery.maxOrderAmount",
            "old": 50000,
            "new": 30000,
        }

    async def test_versions_are_paged(self, api: httpx.AsyncClient) -> None:
        for minutes in (10, 20, 30, 40):
            await put(api, page(paymentTimeoutMinutes=minutes))
        response = await api.get(f"{PAYMENT}/versions?limit=2&offset=1", headers=ADMIN)
        body = response.json()
        assert body["total"] == 4
        assert [v["version"] for v in body["items"]] == [3, 2]
        assert body["items"][0]["changes"] == [
            {"path": "paymentTimeoutMinutes", "old": 20, "new": 30}
        ]
        assert_problem(await api.get(f"{PAYMENT}/versions?limit=0", headers=ADMIN), 422)
        assert_problem(await api.get(f"{PAYMENT}/versions", headers=user("bob")), 403)


class TestEvent:
    async def test_a_save_writes_one_settings_changed_row_with_the_key_as_subject(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await put(api, page())
        async with resources.sessionmaker() as session:
            rows = (await session.execute(select(outbox_table))).all()
        [row] = rows
        assert row.topic == "settings.changed"
        assert row.task_id is None
        assert row.subject == "payment"
        assert row.payload["key"] == "payment"
        assert row.payload["version"] == 1
        assert row.payload["changedBy"] == "root"
        stripe = next(c for c in row.payload["changes"] if c["path"] == "providers.stripe")
        assert stripe["new"]["apiKey"] == "***"  # a new provider is one change, secrets masked
        assert "sk_1" not in str(row.payload)

    async def test_the_event_reaches_the_bus_with_the_key_as_subject(
        self, api: httpx.AsyncClient
    ) -> None:
        resources: Resources = api.app.state.resources  # type: ignore[attr-defined]
        seen: list[OutgoingEvent] = []
        assert resources.bus is not None
        resources.bus.subscribe("settings.changed", seen.append)
        await put(api, page())
        await wait_until(lambda: _done(seen))
        assert seen[0].subject == "payment"
        assert seen[0].data["version"] == 1


async def _done(seen: list[OutgoingEvent]) -> bool:
    return bool(seen)


@pytest.fixture
async def two_apps(settings: Settings, tmp_path: Path) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two API replicas on one database and one in-process bus, each with its own cache."""
    bus = InProcessPublisher()
    apps = [create_app(settings, publisher=bus) for _ in range(2)]
    clients: list[httpx.AsyncClient] = []
    try:
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            for app in apps:
                client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://test"
                )
                client.app = app  # type: ignore[attr-defined]
                clients.append(client)
            yield clients
    finally:
        for client in clients:
            await client.aclose()


class TestCache:
    async def test_a_change_on_one_replica_is_read_on_the_other_before_the_ttl(
        self, two_apps: list[httpx.AsyncClient]
    ) -> None:
        one, other = two_apps
        assert (await other.get(PUBLIC)).json()["version"] == 0  # now cached there
        cache = other.app.state.resources.settings_cache  # type: ignore[attr-defined]
        assert "payment" in cache
        saved = await put(one, page())
        assert saved.status_code == 200
        await wait_until(lambda: _dropped(cache))
        assert (await other.get(PUBLIC)).json()["version"] == 1
        assert (await read(other)).headers["etag"] == saved.headers["etag"]

    async def test_reads_are_served_from_the_cache_until_a_change(
        self, two_apps: list[httpx.AsyncClient], resources: Resources
    ) -> None:
        one, _ = two_apps
        await put(one, page())
        await wait_until(lambda: _published(resources))  # its event dropped the caches already
        first = (await one.get(PUBLIC)).json()
        # a version written behind the API's back is not seen while the entry lives
        document = {**first["settings"], "paymentTimeoutMinutes": 5}
        async with resources.unit() as uow:
            await SettingsRepository(uow.session).add(
                SettingVersion("payment", 2, document, utcnow(), "x")
            )
        assert (await one.get(PUBLIC)).json() == first


async def _published(resources: Resources) -> bool:
    async with resources.sessionmaker() as session:
        stmt = select(outbox_table.c.id).where(outbox_table.c.published_at.is_(None))
        return (await session.execute(stmt)).first() is None


async def _dropped(cache: Any) -> bool:
    return "payment" not in cache


class TestDocument:
    async def test_the_openapi_documents_the_routes_their_statuses_and_no_secret(
        self, api: httpx.AsyncClient
    ) -> None:
        spec = (await api.get("/openapi.json")).json()
        put_ = spec["paths"][PAYMENT]["put"]
        assert {"200", "401", "403", "412", "422", "428", "503"} <= set(put_["responses"])
        assert any(p["name"] == "If-Match" for p in put_["parameters"])
        assert set(spec["paths"][PAYMENT]["get"]["responses"]) >= {"200", "401", "403"}
        assert "security" not in spec["paths"][PUBLIC]["get"]
        public = spec["components"]["schemas"]["PaymentPublic"]["properties"]
        assert "capture" not in public
        provider = spec["components"]["schemas"]["ProviderPublic"]["properties"]
        assert set(provider) == {"displayName", "enabled", "publishableKey"}
        admin = spec["components"]["schemas"]["ProviderAdmin"]["properties"]
        assert "apiKey" not in admin
        assert "apiKeyConfigured" in admin
        assert "/dapr/subscribe" not in spec["paths"]

    async def test_the_api_subscribes_to_settings_changed_on_its_broadcast_component(
        self, api: httpx.AsyncClient
    ) -> None:
        [subscription] = (await api.get("/dapr/subscribe")).json()
        assert subscription["pubsubname"] == "broadcast"
        assert subscription["topic"] == "settings.changed"
        route = subscription["routes"]["default"]
        poison = await api.post(route, content=b"not json")
        assert poison.json() == {"status": "DROP"}
        event = {"id": "1", "type": "settings.changed", "data": {"key": "payment"}}
        assert (await api.post(route, json=event)).json() == {"status": "SUCCESS"}
