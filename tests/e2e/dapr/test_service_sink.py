"""Imports into, and exports from, another service through Dapr service invocation."""

from __future__ import annotations

import secrets
from typing import Any

from tests.e2e.dapr.conftest import Stack, get_json
from tests.e2e.dapr.test_delivery import ALICE, TASKS, wait_status
from tests.fixtures.database import ROOT, daprlocal

CSV = (
    b"sku,name,price,currency,stock\nA-1,Shoe,12.50,EUR,3\nA-2,Hat,-1,EUR,1\nB-7,Sock,1.00,USD,2\n"
)


def start_owner(stack: Stack, **env: str) -> Any:
    """The owning service, under an app id of its own: daprd finds apps by mDNS, machine-wide,
    so two tests running at once with one name would call each other's owner."""
    owner = daprlocal.DaprApp(
        f"e2e-owner-{secrets.token_hex(4)}",
        [
            str(ROOT / ".venv/bin/python"),
            "-m",
            "uvicorn",
            "tests.e2e.owner_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
        ],
        stack.workdir / "owner",
        stack.resources,
        stack.daprd,
        env,
    ).start()
    stack.subscribers.append(owner)  # stopped with the stack
    return owner


class TestServiceSink:
    async def test_import_batches_reach_the_owner_and_export_reads_them_back(
        self, stack: Stack
    ) -> None:
        owner = start_owner(stack)
        stack.add_worker()
        assert stack.client is not None
        params: dict[str, Any] = {
            "sink": "service",
            "targetService": owner.app_id,
            "method": "import",
        }
        body = {
            "taskType": "import",
            "entityType": "product",
            "fileName": "p.csv",
            "params": params,
        }
        created = (await stack.client.post(TASKS, json=body, headers=ALICE)).json()
        put = await stack.client.put(created["uploadUrl"], content=CSV)
        assert put.status_code == 200, put.text
        done = await wait_status(stack, created["id"], "completed", timeout=60)
        assert (done["succeededItems"], done["failedItems"]) == (2, 1)

        state = await get_json(owner.url + "/state")
        assert sorted(state["records"]["product"]) == ["A-1", "B-7"]
        assert list(state["batches"]) == [f"{created['id']}:1"]

        params = {
            "sink": "service",
            "targetService": owner.app_id,
            "method": "export",
            "format": "csv",
            "columns": ["sku", "price"],
        }
        body = {"taskType": "export", "entityType": "product", "params": params}
        export = (await stack.client.post(TASKS, json=body, headers=ALICE)).json()
        await wait_status(stack, export["id"], "completed", timeout=60)
        link = (await stack.client.get(f"{TASKS}/{export['id']}/download", headers=ALICE)).json()
        content = (await stack.client.get(link["downloadUrl"])).content.decode()
        assert content.splitlines() == ["sku,price", "A-1,12.50", "B-7,1.00"]

    async def test_a_batch_the_owner_could_not_take_is_sent_again_and_kept_once(
        self, stack: Stack
    ) -> None:
        owner = start_owner(stack, OWNER_UNAVAILABLE_CALLS="1")  # the first batch gets a 503
        stack.add_worker(OPS_RETRY_BASE_SECONDS="0.2", OPS_RETRY_CAP_SECONDS="0.5")
        assert stack.client is not None
        params = {"sink": "service", "targetService": owner.app_id, "method": "import"}
        body = {"taskType": "import", "entityType": "product", "fileName": "p.csv"}
        created = (
            await stack.client.post(TASKS, json={**body, "params": params}, headers=ALICE)
        ).json()
        put = await stack.client.put(created["uploadUrl"], content=CSV)
        assert put.status_code == 200, put.text

        done = await wait_status(stack, created["id"], "completed", timeout=60)
        assert (done["succeededItems"], done["failedItems"]) == (2, 1)
        assert done["attempts"] == 2  # the 503 made the attempt retry from its checkpoint
        state = await get_json(owner.url + "/state")
        assert state["unavailable"] == 1
        assert sorted(state["records"]["product"]) == ["A-1", "B-7"]
        assert state["batches"] == {f"{created['id']}:1": 1}  # taken once, on the retry
