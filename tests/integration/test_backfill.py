"""Backfill against a fake RevRing API on a real socket: `POST /admin/backfill` in a
running service, and the client's handling of 429 and 5xx storms."""

from __future__ import annotations

import pytest

from router.revring.api import ApiRetries, RevRingApi, RevRingUnreachable
from tests.conftest import fresh_event
from tests.revring_fake import FAKE_API_KEY, FakeRevRing
from tests.service import ADMIN_TOKEN, parts, post_event, running_service

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console]
"""

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Sleeps:
    """A stand-in for asyncio.sleep that records the waits asked for."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def client_of(revring: FakeRevRing, sleeps: Sleeps | None = None, tries: int = 5) -> RevRingApi:
    return RevRingApi(
        FAKE_API_KEY,
        revring.url,
        retries=ApiRetries(max_tries=tries, initial_delay=0.01, max_delay=0.05),
        sleep=sleeps or Sleeps(),
    )


async def test_backfill_of_250_ids_some_unknown_some_stored(tmp_path, write_rules, revring):
    known = [fresh_event("failed-outbound") for _ in range(200)]
    revring.know(*known)
    unknown = [fresh_event()["id"] for _ in range(50)]
    ids = [call["id"] for call in known[:120]] + unknown + [call["id"] for call in known[120:]]
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    api = client_of(revring)
    async with running_service(rules, tmp_path / "r.db", revring_api=api) as client:
        for call in known[:30]:  # posted before the outage: stored already
            assert (await post_event(client, call)).status == 200
        response = await client.post("/admin/backfill", json={"ids": ids}, headers=ADMIN)
        assert response.status == 200
        summary = await response.json()
        store, *_ = parts(client)
        views = await store.list_deliveries(limit=1000)
    assert revring.batches == [ids[:100], ids[100:200], ids[200:]]
    assert set(revring.keys_seen) == {FAKE_API_KEY}
    assert {k: summary[k] for k in ("requested", "fetched", "new", "duplicate")} == {
        "requested": 250,
        "fetched": 200,
        "new": 170,
        "duplicate": 30,
    }
    assert (summary["not_found"], summary["failed"]) == (50, 0)
    assert sorted(summary["not_found_ids"]) == sorted(unknown)
    assert sorted(view.event_id for view in views) == sorted(call["id"] for call in known)
    assert FAKE_API_KEY not in str(summary)
    await api.close()


async def test_backfill_twice_routes_nothing_the_second_time(tmp_path, write_rules, revring):
    calls = [fresh_event("failed-outbound") for _ in range(3)]
    revring.know(*calls)
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    body = {"ids": [call["id"] for call in calls]}
    async with running_service(rules, tmp_path / "r.db", revring_api=client_of(revring)) as client:
        first = await (await client.post("/admin/backfill", json=body, headers=ADMIN)).json()
        second = await (await client.post("/admin/backfill", json=body, headers=ADMIN)).json()
        store, *_ = parts(client)
        assert len(await store.list_deliveries()) == 3
    assert (first["new"], first["duplicate"]) == (3, 0)
    assert (second["new"], second["duplicate"]) == (0, 3)


async def test_admin_backfill_refuses_bad_bodies_and_needs_a_key(tmp_path, write_rules, revring):
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    async with running_service(rules, tmp_path / "a.db", revring_api=client_of(revring)) as client:
        for body in ({}, {"ids": "x"}, {"ids": []}, {"ids": [1, 2]}):
            response = await client.post("/admin/backfill", json=body, headers=ADMIN)
            assert response.status == 422, body
            assert "ids" in (await response.json())["error"]
        response = await client.post("/admin/backfill", json={"ids": ["x"]})
        assert response.status == 401
    async with running_service(rules, tmp_path / "b.db") as client:
        response = await client.post("/admin/backfill", json={"ids": ["x"]}, headers=ADMIN)
        assert response.status == 409
        assert "ROUTER_REVRING_API_KEY" in (await response.json())["error"]


async def test_dry_run_shows_the_route_and_writes_nothing(tmp_path, write_rules, revring):
    failed, canceled = fresh_event("failed-outbound"), fresh_event("minimal-canceled")
    revring.know(failed, canceled)
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    body = {"ids": [failed["id"], canceled["id"]], "dry_run": True}
    async with running_service(rules, tmp_path / "r.db", revring_api=client_of(revring)) as client:
        summary = await (await client.post("/admin/backfill", json=body, headers=ADMIN)).json()
        store, *_ = parts(client)
        assert await store.list_deliveries() == []
    assert summary["dry_run"] is True
    assert (summary["fetched"], summary["new"]) == (2, 0)
    assert summary["would_route"] == [
        f"{failed['id']} OUTBOUND FAILED: console (send, rule failed)",
        f"{canceled['id']} INBOUND CANCELED: no sink",
    ]


async def test_429_waits_as_retry_after_asks_then_succeeds(revring):
    call = fresh_event()
    revring.know(call)
    revring.script = [(429, {"Retry-After": "7"})]
    sleeps = Sleeps()
    api = client_of(revring, sleeps)
    fetched = await api.batch_get([call["id"]])
    await api.close()
    assert sleeps.asked == [7.0]
    assert list(fetched.calls) == [call["id"]]
    assert fetched.unknown == []


async def test_a_500_storm_is_retried_with_backoff_then_succeeds(revring):
    call = fresh_event()
    revring.know(call)
    revring.script = [500, 502, 503, 500]
    sleeps = Sleeps()
    api = client_of(revring, sleeps, tries=5)
    fetched = await api.batch_get([call["id"]])
    await api.close()
    assert list(fetched.calls) == [call["id"]]
    assert len(sleeps.asked) == 4
    assert all(0 < wait <= 0.05 for wait in sleeps.asked)


async def test_a_storm_longer_than_the_tries_fails_without_the_key(revring):
    revring.script = [500] * 3
    api = client_of(revring, tries=3)
    with pytest.raises(RevRingUnreachable) as raised:
        await api.batch_get(["a"])
    await api.close()
    assert "answered 500" in str(raised.value)
    assert FAKE_API_KEY not in str(raised.value) + repr(api)


async def test_a_closed_port_is_unreachable(revring):
    await revring.stop()
    api = client_of(revring, tries=2)
    with pytest.raises(RevRingUnreachable) as raised:
        await api.batch_get(["a"])
    await api.close()
    assert FAKE_API_KEY not in str(raised.value)


async def test_a_wrong_key_is_final_and_named(revring):
    api = RevRingApi("wrong-key", revring.url, sleep=Sleeps())
    with pytest.raises(Exception) as raised:
        await api.batch_get(["a"])
    await api.close()
    assert len(revring.keys_seen) == 1  # not retried
    assert "401" in str(raised.value) and "ROUTER_REVRING_API_KEY" in str(raised.value)
    assert "wrong-key" not in str(raised.value)
