"""The audit trail (DESIGN.md section 14) through the real app, on SQLite and on
PostgreSQL: each change made from the admin API and the console leaves exactly one record
with its actor and action; sign-ins and failed ones are recorded (never the token);
`GET /admin/audit` filters and names a bad parameter; `/ui/audit` lists and filters;
retention purges old records; the metric counts them."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.store import AuditFilters, AuditRecord, open_store
from tests.conftest import fresh_event
from tests.integration.conftest import fresh_postgres_schema
from tests.integration.test_backfill import client_of
from tests.integration.test_console import csrf_of, sign_in, signed_in_page
from tests.revring_fake import FakeRevRing
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def rules(receiver_url: str, log: Path) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 1, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{receiver_url}"
  console: {{type: log, path: "{log}"}}
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [crm]
  - name: everything
    when: {{status: COMPLETED}}
    to: [console]
"""


@contextlib.asynccontextmanager
async def store_url_of(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "postgresql":
        async with fresh_postgres_schema("audit") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture(params=KINDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with store_url_of(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def service(
    tmp_path: Path, write_rules: Any, receiver: Any, revring: FakeRevRing, store_url: str
) -> AsyncIterator[TestClient]:
    receiver.answer = lambda request, n: 400 if n == 1 else 200
    path = write_rules(rules(receiver.url(), tmp_path / "out.jsonl"))
    api = client_of(revring)
    async with running_service(
        path, tmp_path / "unused.db", store_url=store_url, revring_api=api
    ) as client:
        yield client


async def records(client: TestClient, **filters: Any) -> list[AuditRecord]:
    store, *_ = parts(client)
    return await store.list_audit(AuditFilters(**filters))


async def one_dead_delivery(client: TestClient) -> str:
    """Post a FAILED call whose first send the receiver refuses: its delivery's id, dead."""
    await post_event(client, fresh_event(status="FAILED"))
    store, *_ = parts(client)

    async def dead() -> list[Any]:
        return await store.list_deliveries("dead", "crm")

    await wait_for(dead)
    [view] = await dead()
    return view.id


def actions_of(found: list[AuditRecord]) -> list[str]:
    return [record.action for record in found]


async def test_each_admin_api_change_leaves_one_record_with_its_actor(
    service: TestClient, revring: FakeRevRing
) -> None:
    delivery_id = await one_dead_delivery(service)
    assert await records(service) == [], "a call arriving and failing is no one's change"

    answer = await service.post(f"/admin/deliveries/{delivery_id}/replay", headers=ADMIN)
    assert answer.status == 200
    silence = await service.post(
        "/admin/silences",
        json={"when": {"status": "FAILED"}, "for": "1h", "comment": "call me on +1 415 555 0142"},
        headers=ADMIN,
    )
    assert silence.status == 201
    silence_id = (await silence.json())["id"]
    assert (await service.delete(f"/admin/silences/{silence_id}", headers=ADMIN)).status == 200
    pause = await service.post("/admin/sinks/crm/pause", json={"for": "1h"}, headers=ADMIN)
    assert pause.status == 200
    assert (await service.post("/admin/sinks/crm/resume", headers=ADMIN)).status == 200
    assert (await service.post("/admin/reload", headers=ADMIN)).status == 200
    call = fresh_event(status="COMPLETED")
    revring.know(call)
    backfill = await service.post("/admin/backfill", json={"ids": [call["id"]]}, headers=ADMIN)
    assert backfill.status == 200

    found = await records(service)
    assert actions_of(found) == [
        "backfill",
        "reload",
        "sink.resume",
        "sink.pause",
        "silence.expire",
        "silence.create",
        "replay",
    ]
    assert {record.actor for record in found} == {"token"}
    by_action = {record.action: record for record in found}
    assert by_action["replay"].target == f"delivery:{delivery_id}"
    assert by_action["silence.create"].target == f"silence:{silence_id}"
    assert by_action["silence.expire"].target == f"silence:{silence_id}"
    assert by_action["sink.pause"].target == "sink:crm"
    created = json.loads(by_action["silence.create"].details)
    assert created["when"] == {"status": "FAILED"}
    assert "+1 415 555 0142" not in created["comment"] and "0142" in created["comment"]
    assert json.loads(by_action["backfill"].details)["new"] == 1
    assert call["id"] in by_action["backfill"].target
    assert json.loads(by_action["reload"].details)["sinks"] == ["console", "crm"]

    metrics = await (await service.get("/metrics")).text()
    for action in ("replay", "silence.create", "silence.expire", "sink.pause", "reload"):
        assert f'revring_router_audit_events_total{{action="{action}"}} 1.0' in metrics


async def test_a_change_that_did_not_happen_is_not_recorded(service: TestClient) -> None:
    assert (await service.post("/admin/deliveries/nope/replay", headers=ADMIN)).status == 404
    assert (await service.delete("/admin/silences/nope", headers=ADMIN)).status == 404
    assert (await service.post("/admin/sinks/crm/resume", headers=ADMIN)).status == 200
    bad = await service.post("/admin/silences", json={"when": {}, "for": "1h"}, headers=ADMIN)
    assert bad.status == 422
    assert await records(service) == []


async def test_get_admin_audit_filters_by_time_actor_and_action(service: TestClient) -> None:
    store, *_ = parts(service)
    now = time.time()
    for number, (ago, actor, action) in enumerate(
        [
            (3 * 3600, "cli:alice", "replay"),
            (1800, "token", "silence.create"),
            (60, "slack:U0BOB", "acknowledge"),
            (30, "token", "replay"),
        ]
    ):
        await store.record_audit(AuditRecord(f"r{number}", now - ago, actor, action, "t"))

    async def listed(query: str) -> list[str]:
        answer = await service.get(f"/admin/audit{query}", headers=ADMIN)
        assert answer.status == 200, await answer.text()
        return [entry["id"] for entry in await answer.json()]

    assert await listed("") == ["r3", "r2", "r1", "r0"]
    assert await listed("?since=2h") == ["r3", "r2", "r1"]
    assert await listed("?actor=token") == ["r3", "r1"]
    assert await listed("?action=replay") == ["r3", "r0"]
    assert await listed("?actor=token&action=replay&since=1h") == ["r3"]
    assert await listed("?limit=1") == ["r3"]
    assert await listed("?actor=nobody") == []
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 2 * 3600))
    assert await listed(f"?since={since}") == ["r3", "r2", "r1"]
    [entry] = await (await service.get("/admin/audit?limit=1", headers=ADMIN)).json()
    assert set(entry) == {"id", "at", "actor", "action", "target", "details"}
    assert entry["at"].endswith("Z") and entry["details"] == {}

    for query, parameter in (
        ("?since=yesterday", "since"),
        ("?limit=0", "limit"),
        ("?limit=many", "limit"),
        ("?actor=" + "a" * 201, "actor"),
    ):
        answer = await service.get(f"/admin/audit{query}", headers=ADMIN)
        assert answer.status == 400, query
        problem = await answer.json()
        assert problem["parameter"] == parameter
        assert problem["error"].startswith(f"{parameter}: ")
    assert (await service.get("/admin/audit")).status == 401


async def test_each_console_change_and_sign_in_leaves_one_record(
    service: TestClient, receiver: Any
) -> None:
    wrong = await sign_in(service, token="not-the-token")
    assert wrong.status == 401
    delivery_id = await one_dead_delivery(service)
    page = await signed_in_page(service, f"/ui/deliveries/{delivery_id}")
    replayed = await service.post(
        f"/ui/deliveries/{delivery_id}/replay",
        data={"csrf": csrf_of(page)},
        allow_redirects=False,
    )
    assert replayed.status == 303
    silences = await (await service.get("/ui/silences")).text()
    created = await service.post(
        "/ui/silences",
        data={"csrf": csrf_of(silences), "when": '{"status": "FAILED"}', "for": "1h"},
        allow_redirects=False,
    )
    assert created.status == 303
    silence_id = created.headers["Location"].rsplit("=", 1)[1]
    expired = await service.post(
        f"/ui/silences/{silence_id}/expire",
        data={"csrf": csrf_of(silences), "confirm": "yes"},  # the console asks first
        allow_redirects=False,
    )
    assert expired.status == 303

    found = await records(service)
    assert actions_of(found) == [
        "silence.expire",
        "silence.create",
        "replay",
        "signin",
        "signin.failed",
    ]
    assert [record.actor for record in found] == ["token"] * 4 + ["anonymous"]
    failed = found[-1]
    assert failed.target == "token"
    assert json.loads(failed.details)["reason"] == "wrong token"
    assert "not-the-token" not in failed.details and ADMIN_TOKEN not in found[-2].details
    assert found[2].target == f"delivery:{delivery_id}"

    audit_page = await (await service.get("/ui/audit")).text()
    assert 'aria-current="page">Audit</a>' in audit_page
    for action in ("silence.expire", "silence.create", "replay", "signin", "signin.failed"):
        assert f'<option value="{action}">{action}</option>' in audit_page
    assert '<option value="anonymous">anonymous</option>' in audit_page
    assert f"delivery:{delivery_id}" in audit_page
    only_replays = await (await service.get("/ui/audit?action=replay")).text()
    assert f"delivery:{delivery_id}" in only_replays and f"silence:{silence_id}" not in only_replays
    assert '<option value="replay" selected>' in only_replays
    bad = await service.get("/ui/audit?before_at=soon&before_id=x")
    assert bad.status == 400 and "before_at" in await bad.text()


async def test_replays_from_a_calls_page_and_in_bulk_are_recorded(
    service: TestClient, receiver: Any
) -> None:
    receiver.answer = lambda request, n: 400 if n in (1, 3) else 200
    delivery_id = await one_dead_delivery(service)
    store, *_ = parts(service)
    [view] = await store.list_deliveries("dead", "crm")
    page = await signed_in_page(service, f"/ui/calls/{view.event_id}")
    answer = await service.post(
        f"/ui/calls/{view.event_id}/replay/{delivery_id}",
        data={"csrf": csrf_of(page)},
        allow_redirects=False,
    )
    assert answer.status == 303

    async def delivered() -> bool:
        found = await store.get_delivery(delivery_id)
        return found is not None and found.status == "delivered"

    await wait_for(delivered)
    refused_again = await one_dead_delivery(service)
    confirm = await (await service.get("/ui/deliveries/replay-dead?sink=crm")).text()
    bulk = await service.post(
        "/ui/deliveries/replay-dead",
        data={"csrf": csrf_of(confirm), "sink": "crm"},
        allow_redirects=False,
    )
    assert bulk.status == 303
    replays = await records(service, action="replay")
    assert [record.target for record in replays] == ["sink:crm", f"delivery:{delivery_id}"]
    assert json.loads(replays[0].details) == {"status": "dead", "sink": "crm", "count": 1}
    assert refused_again != delivery_id


async def test_records_older_than_the_retention_are_purged(tmp_path: Path, store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    now = time.time()
    await store.record_audit(AuditRecord("old", now - 40 * 86400, "token", "replay", "t"))
    await store.record_audit(AuditRecord("new", now - 86400, "token", "replay", "t"))
    await store.close()

    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text("version: 1\nsinks: {}\nrules: []\n")
    async with running_service(rules_path, tmp_path / "unused.db", store_url=store_url) as client:

        async def purged() -> bool:
            return [record.id for record in await records(client)] == ["new"]

        await wait_for(purged)


async def test_a_record_the_store_cannot_take_leaves_a_change_made_outside_it_standing(
    service: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    from router.store import StoreUnavailable

    store, _, runtime, _ = parts(service)

    async def refuse(record: AuditRecord) -> None:
        raise StoreUnavailable("the audit table is locked")

    store.record_audit = refuse  # a reload and a sign-in are recorded on their own
    answer = await service.post("/admin/reload", headers=ADMIN)
    assert answer.status == 200 and (await answer.json())["status"] == "reloaded"
    assert (await sign_in(service)).status == 303
    logged = [r.getMessage() for r in caplog.records if r.name == "router.operators.audit"]
    assert logged == [
        f"cannot record reload by token on {runtime.config_path} in the audit: StoreUnavailable",
        "cannot record signin by token on token in the audit: StoreUnavailable",
    ]
    assert await records(service) == []


async def test_slack_buttons_record_their_clicks_as_the_slack_user(
    tmp_path: Path, write_rules: Any, store_url: str
) -> None:
    from tests.integration.test_slack_actions import click
    from tests.integration.test_slack_actions import rules as slack_rules
    from tests.slack_fake import FakeSlack, signed_request

    slack = await FakeSlack().start()
    try:
        path = write_rules(slack_rules(slack))
        async with running_service(path, tmp_path / "unused.db", store_url=store_url) as client:
            call = fresh_event(status="FAILED", sipTrunkId="trunk-a")
            await post_event(client, call)
            await wait_for(lambda: slack.posted)
            [message] = slack.posted
            ack = signed_request(slack.click_payload(message, "revring:ack"))
            assert await click(client, *ack) == 200
            silence = signed_request(slack.click_payload(message, "revring:silence:1h"))
            assert await click(client, *silence) == 200
            await wait_for(lambda: len(slack.responses) == 2)

            async def both() -> bool:
                return len(await records(client)) == 2

            await wait_for(both)
            found = await records(client)
            assert {record.actor for record in found} == {"slack:U0ALICE"}
            by_action = {record.action: record for record in found}
            # The acknowledgement counts for the call and the rule of the alert clicked.
            assert by_action["acknowledge"].target == f"call:{call['id']}/rule:failed-calls"
            acknowledged = json.loads(by_action["acknowledge"].details)
            assert acknowledged["outcome"] == "acknowledged"
            assert acknowledged["rule"] == "failed-calls"
            assert by_action["silence.create"].target.startswith("silence:")
            metrics = await (await client.get("/metrics")).text()
            assert 'revring_router_audit_events_total{action="acknowledge"} 1.0' in metrics
    finally:
        await slack.close()
