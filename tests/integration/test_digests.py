"""Grouped rules end to end: real sockets, a real SQLite file, local receivers.

Windows are short (1-3 s); the tests assert on what arrived and in which order,
never on how long anything took.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import fresh_event
from tests.integration.test_delivery import engine
from tests.receivers import Receiver
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

RULES = """
version: 1
defaults:
  retry: {max_attempts: 20, initial_delay: 100ms, max_delay: 300ms, max_age: 1h}
sinks:
  crm:
    type: http
    url: "%(digest_url)s"
  audit:
    type: log
    path: "%(log_path)s"
%(pager)s
rules:
  - name: trunk-outage
    when: {status: FAILED}
    to: [crm, audit]
    group: {by: [sipTrunkId], window: %(window)s%(max)s}
%(pager_rule)s
"""

PAGER = """
  pager:
    type: http
    url: "%s"
"""
PAGER_RULE = """
  - name: every-call
    to: [pager]
"""


def rules_text(
    digest_url: str,
    log_path: Path,
    *,
    window: str = "1s",
    max_calls: int | None = None,
    single_url: str | None = None,
) -> str:
    return RULES % {
        "digest_url": digest_url,
        "log_path": log_path,
        "pager": "" if single_url is None else PAGER % single_url,
        "pager_rule": "" if single_url is None else PAGER_RULE,
        "window": window,
        "max": "" if max_calls is None else f", max: {max_calls}",
    }


@pytest.fixture
async def pager():
    receiver = await Receiver().start()
    yield receiver
    await receiver.close()


def digests(receiver: Receiver) -> list[dict]:
    return [r.json for r in receiver.received if 200 <= r.status < 300]


def log_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def post_all(client, events: list[dict]) -> None:
    answers = await asyncio.gather(*(post_event(client, event) for event in events))
    bodies = [await answer.json() for answer in answers]
    assert all(a.status == 200 for a in answers)
    assert all(body["status"] == "accepted" for body in bodies)


async def test_a_storm_of_failed_calls_gives_one_digest_per_sink(
    tmp_path, write_rules, receiver
) -> None:
    log_path = tmp_path / "audit.jsonl"
    rules = write_rules(rules_text(receiver.url(), log_path, window="2s"))
    events = [fresh_event(sipTrunkId="trunk-main") for _ in range(200)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_all(client, events)
        await wait_for(lambda: digests(receiver) and log_lines(log_path))
        store, *_ = parts(client)
        await wait_for(lambda: _none_pending(store))
        scraped = await (await client.get("/metrics")).text()
    [digest] = digests(receiver)
    assert digest["count"] == 200
    assert digest["group_key"] == {"sipTrunkId": "trunk-main"}
    assert digest["rule"] == "trunk-outage"
    assert digest["window_start"] <= digest["window_end"]
    assert sorted(call["id"] for call in digest["calls"]) == sorted(e["id"] for e in events)
    [line] = log_lines(log_path)
    assert (line["count"], line["group_key"]) == (200, {"sipTrunkId": "trunk-main"})
    assert 'revring_router_digest_calls_sum{sink="crm"} 200.0' in scraped


async def _none_pending(store) -> bool:
    return not await store.list_deliveries("pending")


async def test_each_group_key_gets_its_own_digest_in_arrival_order(
    tmp_path, write_rules, receiver
) -> None:
    rules = write_rules(rules_text(receiver.url(), tmp_path / "audit.jsonl"))
    trunks = ["trunk-a", "trunk-b", "trunk-a", None, "trunk-b", "trunk-a"]
    events = [fresh_event(sipTrunkId=trunk) for trunk in trunks]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            answer = await post_event(client, event)
            assert (await answer.json())["deliveries"] == 2  # crm and audit digests
        await wait_for(lambda: len(digests(receiver)) == 3)
    by_key = {
        d["group_key"]["sipTrunkId"]: [c["id"] for c in d["calls"]] for d in digests(receiver)
    }
    assert by_key == {
        trunk: [e["id"] for e in events if e["sipTrunkId"] == trunk]
        for trunk in ("trunk-a", "trunk-b", None)
    }


async def test_max_sends_full_digests_early_and_the_rest_waits(
    tmp_path, write_rules, receiver
) -> None:
    rules = write_rules(
        rules_text(receiver.url(), tmp_path / "audit.jsonl", window="1h", max_calls=50)
    )
    events = [fresh_event(sipTrunkId="trunk-main") for _ in range(120)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            await post_event(client, event)
        await wait_for(lambda: len(digests(receiver)) == 2)
        store, *_ = parts(client)
        await wait_for(lambda: _delivered_count(store, "crm", 2))
        pending = await store.list_deliveries("pending", "crm")
        scraped = await (await client.get("/metrics")).text()
    sent = [[c["id"] for c in d["calls"]] for d in digests(receiver)]
    ids = [e["id"] for e in events]
    assert sent == [ids[:50], ids[50:100]]
    [waiting] = pending
    assert waiting.event_id == ids[100]
    assert 'revring_router_open_groups{sink="crm"} 1.0' in scraped
    assert len(await _calls_of(tmp_path / "r.db", waiting.id)) == 20


async def _delivered_count(store, sink: str, count: int) -> bool:
    return len(await store.list_deliveries("delivered", sink)) == count


async def _calls_of(database: Path, delivery_id: str) -> list[bytes]:
    from router.store.sqlite import SQLiteStore

    store = SQLiteStore(database)
    await store.open()
    try:
        return await store.digest_calls(delivery_id)
    finally:
        await store.close()


async def test_a_restart_inside_the_window_loses_no_call(tmp_path, write_rules, receiver) -> None:
    rules = write_rules(rules_text(receiver.url(), tmp_path / "audit.jsonl", window="3s"))
    before = [fresh_event(sipTrunkId="trunk-main") for _ in range(10)]
    after = [fresh_event(sipTrunkId="trunk-main") for _ in range(5)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in before:
            await post_event(client, event)
    assert digests(receiver) == []  # the first app stopped inside the window
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in after:
            await post_event(client, event)
        await wait_for(lambda: digests(receiver))
        store, *_ = parts(client)
        await wait_for(lambda: _none_pending(store))
    calls = [c["id"] for d in digests(receiver) for c in d["calls"]]
    assert calls == [e["id"] for e in before + after]


async def test_an_ungrouped_rule_is_not_delayed_by_an_open_window(
    tmp_path, write_rules, receiver, pager
) -> None:
    rules = write_rules(
        rules_text(receiver.url(), tmp_path / "audit.jsonl", window="2s", single_url=pager.url())
    )
    event = fresh_event(sipTrunkId="trunk-main")
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, event)
        await wait_for(lambda: pager.delivered_ids())
        store, *_ = parts(client)
        still_open = await store.open_groups(0)
        assert digests(receiver) == []
        await wait_for(lambda: digests(receiver))
    assert pager.delivered_ids() == [event["id"]]
    assert still_open == {"crm": 1, "audit": 1}
    assert pager.received[0].at < receiver.received[0].at


async def test_a_failing_digest_is_retried_then_dead_and_replayed_whole(
    tmp_path, write_rules, receiver
) -> None:
    receiver.answer = lambda request, n: {1: 503, 2: 404}.get(n, 200)
    rules = write_rules(rules_text(receiver.url(), tmp_path / "audit.jsonl"))
    events = [fresh_event(sipTrunkId="trunk-main") for _ in range(3)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            await post_event(client, event)
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("dead", "crm"))
        [dead] = await store.list_deliveries("dead", "crm")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        replayed = await client.post(f"/admin/deliveries/{dead.id}/replay", headers=auth)
        assert replayed.status == 200
        await wait_for(lambda: _delivered_count(store, "crm", 1))
        attempts = await store.list_attempts(dead.id)
    assert [a.outcome for a in attempts] == ["retry", "dead", "delivered"]
    assert [r.status for r in receiver.received] == [503, 404, 200]
    sent = [[c["id"] for c in r.json["calls"]] for r in receiver.received]
    assert sent == [[e["id"] for e in events]] * 3
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
