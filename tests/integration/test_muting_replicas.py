"""Silences and pauses reach every replica of a shared PostgreSQL store within 2 seconds
(DESIGN.md section 9): two services on one database, in one process."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import fresh_event
from tests.integration.conftest import fresh_postgres_schema
from tests.integration.test_muting import ADMIN, base_url, deliveries, rules, sent_to
from tests.service import post_event, running_service, wait_for

pytestmark = pytest.mark.postgres

SPREAD_SECONDS = 2.0  # the contract: every replica applies a new control within this


@pytest.fixture
async def url():
    async with fresh_postgres_schema("muting") as schema_url:
        yield schema_url


async def test_a_silence_made_on_one_replica_mutes_calls_taken_by_the_other(
    tmp_path, write_rules, receiver, url
):
    path = write_rules(rules(base_url(receiver)))
    async with (
        running_service(path, tmp_path / "a.db", store_url=url) as first,
        running_service(path, tmp_path / "b.db", store_url=url) as second,
    ):
        created = await first.post(
            "/admin/silences",
            json={"when": {"status": "COMPLETED"}, "for": "1h", "sinks": ["crm"]},
            headers=ADMIN,
        )
        assert created.status == 201
        silence_id = (await created.json())["id"]
        await asyncio.sleep(SPREAD_SECONDS)

        event = fresh_event(status="COMPLETED")
        assert (await post_event(second, event)).status == 200
        [view] = await deliveries(second, sink="crm")
        assert (view["status"], view["muted_reason"]) == ("muted", f"silence:{silence_id}")

        expired = await second.delete(f"/admin/silences/{silence_id}", headers=ADMIN)
        assert expired.status == 200
        await asyncio.sleep(SPREAD_SECONDS)
        later = fresh_event(status="COMPLETED")
        await post_event(first, later)
        await wait_for(lambda: sent_to(receiver, "/crm") == [later["id"]])


async def test_a_pause_made_on_one_replica_holds_the_sink_on_the_other(
    tmp_path, write_rules, receiver, url
):
    path = write_rules(rules(base_url(receiver)))
    async with (
        running_service(path, tmp_path / "a.db", store_url=url) as first,
        running_service(path, tmp_path / "b.db", store_url=url) as second,
    ):
        paused = await first.post(
            "/admin/sinks/crm/pause", json={"for": "1h", "comment": "upgrade"}, headers=ADMIN
        )
        assert paused.status == 200
        await asyncio.sleep(SPREAD_SECONDS)
        text = await (await second.get("/metrics")).text()
        assert 'revring_router_sink_paused{sink="crm"} 1.0' in text
        event = fresh_event(status="COMPLETED")
        await post_event(second, event)
        await asyncio.sleep(0.5)  # more than the lanes' idle poll
        assert sent_to(receiver, "/crm") == []

        await second.post("/admin/sinks/crm/resume", headers=ADMIN)
        await wait_for(lambda: sent_to(receiver, "/crm") == [event["id"]])
