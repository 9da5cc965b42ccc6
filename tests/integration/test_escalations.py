"""Escalation end to end (DESIGN.md section 16): the real app on a real socket and a real
SQLite file, HTTP sinks answered by a local receiver. An alert nobody acknowledged
escalates once; one acknowledged (admin API, CLI) never does; a call two rules matched,
acknowledged from one rule's Slack alert, still escalates the other rule (a fake Slack);
a restart before the timer is due, or after a worker claimed it and died, loses no
escalation and fires none twice; two replicas on one PostgreSQL fire each timer once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from router.cli.main import main
from router.config.runtime import Runtime
from router.core.metrics import Metrics
from router.engine import EscalationSettings, EscalationTimers
from router.store import AuditFilters, EscalationPlan, IngestRecord, NewDelivery, Store
from router.store.sqlite import SQLiteStore
from router.web.app import ESCALATIONS
from sinks.base import SinkResources
from tests.conftest import fresh_event
from tests.integration.conftest import fresh_postgres_schema
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for
from tests.slack_fake import SIGNING_SECRET, FakeSlack, signed_request

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOUR = 3600.0


def rules(receiver_url: str, after: str = "1s") -> str:
    return f"""
version: 1
sinks:
  ops: {{type: http, url: "{receiver_url}/ops"}}
  oncall: {{type: http, url: "{receiver_url}/oncall"}}
rules:
  - name: failed
    when: {{status: FAILED}}
    to: [ops]
    escalate: {{after: {after}, to: [oncall]}}
"""


def base_url(receiver) -> str:
    return receiver.url("").rstrip("/")


def arrivals(receiver, path: str) -> list[Any]:
    return [r.call_id for r in receiver.received if r.path == path and r.status < 300]


async def ops_delivery(store: Store, call: str) -> str:
    views = await store.deliveries_of_event(call)
    (ops,) = [view for view in views if view.sink == "ops"]
    return ops.id


async def oncall_deliveries(store: Store, call: str) -> list[str]:
    """The escalations of the call (made at the timers' clock, an hour ahead: sent then)."""
    views = await store.deliveries_of_event(call)
    return [view.id for view in views if view.sink == "oncall" and view.escalated_from]


async def settled(store: Store) -> bool:
    """No timer waits any more (each fired, or was done without firing)."""
    return await store.next_escalation_due() is None


async def test_an_unacknowledged_alert_escalates_once(tmp_path, write_rules, receiver) -> None:
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "router.db") as client:
        event = fresh_event()
        assert (await post_event(client, event)).status == 200
        store = parts(client)[0]
        await wait_for(lambda: arrivals(receiver, "/oncall") == [event["id"]])
        await wait_for(lambda: settled(store))
        original = await ops_delivery(store, event["id"])
        (escalated,) = await store.escalations_of(original)
        listed = await client.get(f"/admin/deliveries/{escalated}", headers=BEARER)
        shown = await listed.json()
        assert shown["escalated_from"] == original and shown["sink"] == "oncall"
        metrics = await (await client.get("/metrics")).text()
        assert 'revring_router_escalations_total{rule="failed"} 1.0' in metrics
        again = await client.app[ESCALATIONS].fire_due()
        assert again == []
        assert arrivals(receiver, "/oncall") == [event["id"]]
        assert arrivals(receiver, "/ops") == [event["id"]]


async def test_an_alert_acknowledged_through_the_admin_api_never_escalates(
    tmp_path, write_rules, receiver
) -> None:
    path = write_rules(rules(base_url(receiver), after="2s"))
    async with running_service(path, tmp_path / "router.db") as client:
        event = fresh_event()
        assert (await post_event(client, event)).status == 200
        store = parts(client)[0]
        await wait_for(lambda: arrivals(receiver, "/ops") == [event["id"]])
        delivery = await ops_delivery(store, event["id"])
        answer = await client.post(f"/admin/deliveries/{delivery}/acknowledge", headers=BEARER)
        assert answer.status == 200
        body = await answer.json()
        assert body["acknowledged_by"] == "token" and body["already_acknowledged"] is False
        await wait_for(lambda: settled(store))
        assert arrivals(receiver, "/oncall") == []
        assert await store.escalations_of(delivery) == []
        metrics = await (await client.get("/metrics")).text()
        assert 'revring_router_escalations_total{rule="failed"}' not in metrics


async def test_the_admin_endpoint_answers_404_401_403_and_once(
    tmp_path, write_rules, receiver
) -> None:
    from router.operators.users import User, Users, hash_secret, new_token, write_users_file

    vera_token, vera = new_token(User("vera", "viewer", hash_secret("vera-password-1")))
    otto_token, otto = new_token(User("otto", "operator", hash_secret("otto-password-1")))
    users = tmp_path / "users.yaml"
    write_users_file(users, Users.of([vera, otto]))
    path = write_rules(rules(base_url(receiver), after="1h"))
    async with running_service(path, tmp_path / "router.db", users_file=users) as client:
        event = fresh_event()
        assert (await post_event(client, event)).status == 200
        store = parts(client)[0]
        delivery = await ops_delivery(store, event["id"])
        url = f"/admin/deliveries/{delivery}/acknowledge"

        unknown = await client.post("/admin/deliveries/nope/acknowledge", headers=BEARER)
        assert unknown.status == 404
        assert await unknown.json() == {"error": "no delivery 'nope'"}
        assert (await client.post(url)).status == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await client.post(url, headers=wrong)).status == 401
        refused = await client.post(url, headers={"Authorization": f"Bearer {vera_token}"})
        assert refused.status == 403
        assert "needs operator" in await refused.text()

        first = await client.post(url, headers={"Authorization": f"Bearer {otto_token}"})
        assert first.status == 200
        one = await first.json()
        second = await client.post(url, headers=BEARER)
        assert second.status == 200
        two = await second.json()
        assert one["already_acknowledged"] is False and two["already_acknowledged"] is True
        assert two["acknowledged_by"] == one["acknowledged_by"] == "otto"
        assert two["acknowledged_at"] == one["acknowledged_at"]
        audited = await store.list_audit(AuditFilters(action="acknowledge"))
        assert [(record.actor, record.target) for record in audited] == [
            ("otto", f"call:{event['id']}/rule:failed")
        ]


async def test_an_alert_acknowledged_from_the_command_line_never_escalates(
    tmp_path, capsys
) -> None:
    database = tmp_path / "router.db"
    call = fresh_event()["id"]
    store = SQLiteStore(database)
    await store.open()
    try:
        await store.ingest(record_of(call, "d-ops", received_at=1000.0))
    finally:
        await store.close()

    assert await asyncio.to_thread(main, ["ack", "nope", "--store", f"sqlite:///{database}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["ack", "d-ops", "--store", f"sqlite:///{database}"]) == 0
    assert "acknowledged delivery d-ops (call " in (out := capsys.readouterr().out)
    assert out.rstrip().endswith(", rule failed)")
    assert await asyncio.to_thread(main, ["ack", "d-ops", "--store", f"sqlite:///{database}"]) == 0
    assert "acknowledged already" in capsys.readouterr().out

    store = SQLiteStore(database)
    await store.open()
    try:
        timers = timers_on(store, tmp_path, "w1", now=1000.0 + HOUR)
        assert [outcome for _, outcome, _ in await timers.fire_due()] == ["acknowledged"]
        audited = await store.list_audit(AuditFilters(action="acknowledge"))
        assert len(audited) == 1 and audited[0].actor.startswith("cli:")
        assert len(await store.deliveries_of_event(call)) == 1
    finally:
        await store.close()


def two_rules(slack: FakeSlack, receiver_url: str) -> str:
    """A FAILED call of a gold customer: `failed-calls` alerts #ops-alerts and escalates
    to on-call, `vip-callers` alerts #sales and escalates to the sales lead."""
    bot = f'token: xoxb-test, api_url: "{slack.base}/api/", signing_secret: "{SIGNING_SECRET}"'
    return f"""
version: 1
sinks:
  ops-slack: {{type: slack, channel: "#ops-alerts", {bot}}}
  sales-slack: {{type: slack, channel: "#sales", {bot}}}
  oncall: {{type: http, url: "{receiver_url}/oncall"}}
  sales-lead: {{type: http, url: "{receiver_url}/sales-lead"}}
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [ops-slack]
    escalate: {{after: 1h, to: [oncall]}}
  - name: vip-callers
    when: {{variables.customer_tier: {{in: [gold, platinum]}}}}
    to: [sales-slack]
    escalate: {{after: 1h, to: [sales-lead]}}
"""


@pytest.mark.parametrize(
    ("clicked_in", "acknowledged", "going", "escalated"),
    [
        # The sales rep's click in #sales: on-call is still paged.
        ("#sales", "vip-callers", "failed-calls", "oncall"),
        ("#ops-alerts", "failed-calls", "vip-callers", "sales-lead"),
    ],
)
async def test_acknowledging_one_rules_alert_stops_that_rules_escalation_only(
    tmp_path,
    write_rules,
    receiver,
    clicked_in: str,
    acknowledged: str,
    going: str,
    escalated: str,
) -> None:
    slack = await FakeSlack().start()
    try:
        path = write_rules(two_rules(slack, base_url(receiver)))
        async with running_service(path, tmp_path / "router.db") as client:
            store = parts(client)[0]
            event = fresh_event(variables={"customer_tier": "gold"})
            assert (await post_event(client, event)).status == 200
            await wait_for(lambda: len(slack.messages) == 2)
            [ts] = [ts for ts, sent in slack.messages.items() if sent["channel"] == clicked_in]
            payload = slack.click_payload(
                slack.messages[ts], "revring:ack", user="U0SAM", user_name="sam"
            )
            payload["container"]["message_ts"] = payload["message"]["ts"] = ts
            answer = await client.post("/slack/interactions", **signed_body(payload))
            assert answer.status == 200
            await wait_for(lambda: slack.updates)
            [update] = slack.updates  # the clicked alert, as before: "Acknowledged by"
            assert update["ts"] == ts
            assert "Acknowledged by <@U0SAM>" in json.dumps(update["blocks"])

            timers = client.app[ESCALATIONS]
            timers.clock = lambda: time.time() + HOUR + 5  # both timers due
            timers.wake()
            await wait_for(lambda: settled(store))
            views = await store.deliveries_of_event(event["id"])
            assert [view.sink for view in views if view.escalated_from] == [escalated]
            metrics = await (await client.get("/metrics")).text()
            assert f'revring_router_escalations_total{{rule="{going}"}} 1.0' in metrics
            assert f'revring_router_escalations_total{{rule="{acknowledged}"}}' not in metrics

            listed = await (await client.get("/admin/deliveries", headers=BEARER)).json()
            by_rule = {d["rule"]: d["acknowledged_by"] for d in listed if not d["escalated_from"]}
            assert by_rule == {acknowledged: "U0SAM", going: None}
            # Acknowledging the other rule's alert now is a new acknowledgement, of its rule.
            (other,) = [v for v in views if v.rule == going and not v.escalated_from]
            again = await client.post(f"/admin/deliveries/{other.id}/acknowledge", headers=BEARER)
            shown = await again.json()
            assert (shown["already_acknowledged"], shown["acknowledged_by"]) == (False, "token")
    finally:
        await slack.close()


def signed_body(payload: dict[str, Any]) -> dict[str, Any]:
    body, headers = signed_request(payload)
    return {"data": body, "headers": headers}


async def test_a_restart_before_the_timer_is_due_loses_nothing_and_fires_once(
    tmp_path, write_rules, receiver
) -> None:
    path = write_rules(rules(base_url(receiver), after="1h"))
    database = tmp_path / "router.db"
    event = fresh_event()
    async with running_service(path, database) as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: arrivals(receiver, "/ops") == [event["id"]])
        assert await parts(client)[0].next_escalation_due() is not None
    for _ in range(2):  # restarted an hour later, then once more
        async with running_service(path, database) as client:
            timers = client.app[ESCALATIONS]
            timers.clock = lambda: time.time() + HOUR + 5
            timers.wake()
            await wait_for(lambda: oncall_deliveries(parts(client)[0], event["id"]))
            await wait_for(lambda: settled(parts(client)[0]))
            assert await timers.fire_due() == []
            assert len(await oncall_deliveries(parts(client)[0], event["id"])) == 1


async def test_a_timer_claimed_by_a_worker_that_died_fires_once_after_a_restart(
    tmp_path, write_rules, receiver
) -> None:
    path = write_rules(rules(base_url(receiver), after="1h"))
    database = tmp_path / "router.db"
    event = fresh_event()
    async with running_service(path, database) as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: arrivals(receiver, "/ops") == [event["id"]])
    store = SQLiteStore(database)
    await store.open()
    try:  # claimed for 10 hours by a worker that then died before firing it
        claimed = await store.claim_escalations(10, "died", 10 * HOUR, time.time() + HOUR + 5)
        assert len(claimed) == 1
    finally:
        await store.close()
    async with running_service(path, database) as client:  # owns the file: frees leases
        timers = client.app[ESCALATIONS]
        timers.clock = lambda: time.time() + HOUR + 5
        timers.wake()
        store = parts(client)[0]
        await wait_for(lambda: oncall_deliveries(store, event["id"]))
        await wait_for(lambda: settled(store))
        late = await store.fire_escalation(
            claimed[0], "died", time.time(), "escalated", [("late", "oncall")]
        )
        assert late is None
        assert len(await oncall_deliveries(store, event["id"])) == 1


def record_of(call: str, delivery: str, received_at: float) -> IngestRecord:
    body = json.dumps(fresh_event(id=call)).encode()
    return IngestRecord(
        call,
        body,
        received_at,
        [NewDelivery(delivery, "ops", "failed")],
        "FAILED",
        escalations=[EscalationPlan("failed", 900.0, ("oncall",))],
    )


def timers_on(store: Store, tmp_path: Path, owner: str, now: float) -> EscalationTimers:
    path = tmp_path / "timers-rules.yaml"
    path.write_text(rules("http://127.0.0.1:9"))
    runtime = Runtime(path, Metrics(), SinkResources())
    runtime.load()
    return EscalationTimers(
        runtime,
        store,
        Metrics(),
        EscalationSettings(batch=4, lease_seconds=60.0),
        owner=owner,
        clock=lambda: now,
    )


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_fire_each_timer_once(tmp_path) -> None:
    calls = [fresh_event()["id"] for _ in range(24)]
    async with fresh_postgres_schema("escalate") as url:
        from router.store import open_store

        first, second = open_store(url), open_store(url)
        await first.open()
        await second.open()
        try:
            for number, call in enumerate(calls):
                await first.ingest(record_of(call, f"d-{number}", received_at=1000.0))
            due = 1000.0 + HOUR
            one = timers_on(first, tmp_path, "replica-1", due)
            two = timers_on(second, tmp_path, "replica-2", due)
            fired_one, fired_two = await asyncio.gather(one.fire_due(), two.fire_due())
            fired = [due.event_id for due, outcome, _ in [*fired_one, *fired_two]]
            assert sorted(fired) == sorted(calls)  # each once, by one replica or the other
            assert await asyncio.gather(one.fire_due(), two.fire_due()) == [[], []]
            oncall = await first.list_deliveries("pending", "oncall", 100, 0)
            assert sorted(view.event_id for view in oncall) == sorted(calls)
            assert {view.escalated_from for view in oncall} == {f"d-{n}" for n in range(24)}
        finally:
            await first.close()
            await second.close()
