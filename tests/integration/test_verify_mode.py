"""Verify mode against a fake RevRing API on a real socket: a known call is routed with
RevRing's fields, an invented one is kept and not routed, and while the API is down
calls wait held and flow when it is back; an admin can release one by hand."""

from __future__ import annotations

import json

import pytest

from router.revring.api import ApiRetries, RevRingApi
from router.revring.verify import VerifySettings
from tests.conftest import fresh_event
from tests.revring_fake import FAKE_API_KEY, FakeRevRing
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console]
  - name: completed
    when: {status: COMPLETED}
    to: [console]
"""

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAST = VerifySettings(poll=0.1, initial_backoff=0.1, max_backoff=0.3)


def api_of(revring: FakeRevRing) -> RevRingApi:
    return RevRingApi(
        FAKE_API_KEY,
        revring.url,
        retries=ApiRetries(max_tries=2, initial_delay=0.01, max_delay=0.02),
    )


def logged(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def verifying(rules, db, revring):
    return running_service(rules, db, revring_api=api_of(revring), verify_calls=True, verify=FAST)


@pytest.fixture
def service(tmp_path, write_rules, revring):
    out = tmp_path / "out.jsonl"
    rules = write_rules(RULES % {"log": out})
    return out, lambda: verifying(rules, tmp_path / "r.db", revring)


async def events(client, verification: str) -> list[dict]:
    response = await client.get(f"/admin/events?verification={verification}", headers=ADMIN)
    assert response.status == 200
    return await response.json()


async def test_a_known_call_is_routed_with_revrings_fields(service, revring):
    out, start = service
    real = fresh_event("failed-outbound", errorMessage="SIP 503 from carrier")
    revring.know(real)
    posted = {**real, "status": "COMPLETED", "errorMessage": "posted, not RevRing's"}
    async with start() as client:
        response = await post_event(client, posted)
        assert response.status == 200
        assert await response.json() == {
            "status": "accepted",
            "event_id": real["id"],
            "deliveries": 0,
            "verification": "pending",
        }
        await wait_for(lambda: len(logged(out)) == 1)
        store, *_ = parts(client)
        view = await store.get_event(real["id"])
        payload = view.payload
        assert view.verification == "verified"
        assert json.loads(payload)["errorMessage"] == "SIP 503 from carrier"
        assert [e["id"] for e in await events(client, "verified")] == [real["id"]]
        duplicate = await post_event(client, posted)
        assert (await duplicate.json())["status"] == "duplicate"
    [line] = logged(out)
    assert (line["rule"], line["status"], line["errorMessage"]) == (
        "failed",
        "FAILED",
        "SIP 503 from carrier",
    )


async def test_an_invented_call_is_kept_not_routed_and_counted(service, revring):
    out, start = service
    invented = fresh_event("failed-outbound")
    async with start() as client:
        assert (await post_event(client, invented)).status == 200
        await wait_for(
            lambda: _has(events(client, "not_verified"), invented["id"]),
        )
        metrics = await (await client.get("/metrics")).text()
        store, *_ = parts(client)
        assert await store.list_deliveries() == []
        assert await events(client, "pending") == []
        # an admin who knows better releases it: routed as posted
        response = await client.post(f"/admin/events/{invented['id']}/release", headers=ADMIN)
        assert response.status == 200
        assert (await response.json())["deliveries"] == 1
        again = await client.post(f"/admin/events/{invented['id']}/release", headers=ADMIN)
        assert again.status == 409
        missing = await client.post("/admin/events/nope/release", headers=ADMIN)
        assert missing.status == 404
        [released] = await (await client.get("/admin/audit", headers=ADMIN)).json()
        assert (released["actor"], released["action"]) == ("token", "release")
        assert released["target"] == f"call:{invented['id']}"
        assert released["details"] == {"deliveries": 1}
        await wait_for(lambda: len(logged(out)) == 1)
    assert 'revring_router_events_rejected_total{reason="not_verified"} 1.0' in metrics


async def _has(listing, event_id: str) -> bool:
    return event_id in [event["id"] for event in await listing]


async def test_calls_wait_while_the_api_is_down_and_flow_when_it_is_back(service, revring):
    out, start = service
    calls = [fresh_event("failed-outbound") for _ in range(3)]
    revring.know(*calls)
    await revring.stop()
    async with start() as client:
        for call in calls:
            assert (await post_event(client, call)).status == 200
        store, *_ = parts(client)

        async def tried_twice() -> bool:
            pending = await events(client, "pending")
            return len(pending) == 3 and all(e["verify_attempts"] >= 2 for e in pending)

        await wait_for(tried_twice)
        assert await store.list_deliveries() == []
        assert logged(out) == []
        await revring.start()
        await wait_for(lambda: len(logged(out)) == 3)
        assert await events(client, "pending") == []
        assert len(await events(client, "verified")) == 3


async def test_a_pending_call_can_be_released_by_hand_while_the_api_is_down(service, revring):
    out, start = service
    call = fresh_event("failed-outbound")
    await revring.stop()
    async with start() as client:
        await post_event(client, call)
        assert [e["id"] for e in await events(client, "pending")] == [call["id"]]
        response = await client.post(f"/admin/events/{call['id']}/release", headers=ADMIN)
        assert await response.json() == {
            "status": "released",
            "event_id": call["id"],
            "deliveries": 1,
        }
        await wait_for(lambda: len(logged(out)) == 1)
        assert [e["id"] for e in await events(client, "released")] == [call["id"]]
        bad = await client.get("/admin/events?verification=nope", headers=ADMIN)
        assert bad.status == 400


async def test_without_verify_mode_calls_are_routed_at_once(tmp_path, write_rules, revring):
    out = tmp_path / "out.jsonl"
    rules = write_rules(RULES % {"log": out})
    invented = fresh_event("failed-outbound")
    async with running_service(rules, tmp_path / "r.db", revring_api=api_of(revring)) as client:
        answer = await (await post_event(client, invented)).json()
        assert answer == {"status": "accepted", "event_id": invented["id"], "deliveries": 1}
    assert revring.batches == []
