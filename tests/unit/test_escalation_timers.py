"""Escalation timers (DESIGN.md section 16) on the in-memory store with a fake clock: a
call routed by an escalating rule gets one timer, written with its deliveries; it fires
once when due unless the call was acknowledged for that rule, the rule is muted or a
silence covers it; a second worker never fires it again; a digest escalates as a whole.
A call two rules matched has a timer for each, and an acknowledgement of one rule's
alert stops that rule's only."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.config.runtime import Runtime
from router.core.metrics import Metrics
from router.engine import EscalationSettings, EscalationTimers, Intake
from router.operators import AuditTrail, OperatorControls, acknowledge_delivery
from router.store import AuditFilters, DeliveryView, SilenceRecord, Store, open_store
from sinks.base import SinkResources
from tests.conftest import fresh_event

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC
AFTER = 900.0  # escalate after 15m
RULES = """
version: 1
time_intervals:
  quiet-year:
    - years: ['2023']
sinks:
  ops: {type: log, path: /dev/null}
  crm: {type: log, path: /dev/null}
  oncall: {type: log, path: /dev/null}
  managers: {type: log, path: /dev/null}
  sales: {type: log, path: /dev/null}
  sales-lead: {type: log, path: /dev/null}
rules:
  - name: failed
    when: {status: FAILED}
    to: [ops, crm]
    escalate: {after: 15m, to: [oncall, managers]}
  - name: trunks
    when: {status: COMPLETED}
    to: [ops]
    group: {by: [sipTrunkId], window: 5m}
    escalate: {after: 15m, to: oncall}
  - name: vip
    when: {variables.customer_tier: {in: [gold]}}
    to: [sales]
    escalate: {after: 15m, to: sales-lead}
"""
GOLD = {"variables": {"customer_tier": "gold"}}  # matched by `failed` and `vip` both


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, tmp_path: Path, rules: str = RULES) -> None:
        path = tmp_path / "rules.yaml"
        path.write_text(rules)
        self.metrics = Metrics()
        self.runtime = Runtime(path, self.metrics, SinkResources())
        self.runtime.load()
        self.store: Store = open_store(f"memory://{uuid.uuid4().hex}")
        self.clock = FakeClock(T0)
        self.controls = OperatorControls(self.store, clock=self.clock)
        self.intake = Intake(self.runtime, self.store, self.metrics, clock=self.clock)
        self.timers = self.worker("w1")

    def worker(self, owner: str) -> EscalationTimers:
        return EscalationTimers(
            self.runtime,
            self.store,
            self.metrics,
            EscalationSettings(batch=2, lease_seconds=30.0),
            owner=owner,
            clock=self.clock,
            controls=self.controls,
        )

    async def post(self, **changes: Any) -> tuple[str, list[DeliveryView]]:
        event = fresh_event("failed-outbound", **changes)
        outcome = await self.intake.ingest_body(json.dumps(event).encode())
        assert outcome.status == "accepted"
        return event["id"], await self.store.deliveries_of_event(event["id"])

    def escalated(self, rule: str) -> float:
        return self.metrics.escalations.labels(rule)._value.get()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    made = Harness(tmp_path)
    await made.store.open()
    yield made
    made.intake.close()
    await made.store.close()


def by_sink(views: list[DeliveryView]) -> dict[str, DeliveryView]:
    return {view.sink: view for view in views}


async def test_an_unacknowledged_call_escalates_once_when_due(harness: Harness) -> None:
    call, first = await harness.post()
    original = by_sink(first)["ops"]
    harness.clock.now = T0 + AFTER - 1
    assert await harness.timers.fire_due() == []
    assert await harness.store.next_escalation_due() == T0 + AFTER
    harness.clock.now = T0 + AFTER
    fired = await harness.timers.fire_due()
    assert [(due.rule, outcome, sorted(sinks)) for due, outcome, sinks in fired] == [
        ("failed", "escalated", ["managers", "oncall"])
    ]
    now = by_sink(await harness.store.deliveries_of_event(call))
    assert now["oncall"].escalated_from == now["managers"].escalated_from == original.id
    assert now["oncall"].status == "pending" and now["oncall"].rule == "failed"
    escalated_to = await harness.store.escalations_of(original.id)
    assert sorted(escalated_to) == sorted([now["oncall"].id, now["managers"].id])
    assert harness.escalated("failed") == 1
    harness.clock.now = T0 + 10 * AFTER
    assert await harness.timers.fire_due() == []
    assert await harness.store.next_escalation_due() is None
    assert len(await harness.store.deliveries_of_event(call)) == 4


async def test_an_acknowledgement_of_any_delivery_of_the_call_for_the_rule_stops_it(
    harness: Harness,
) -> None:
    call, first = await harness.post()
    trail = AuditTrail(harness.store)
    crm = by_sink(first)["crm"]  # not the delivery the timer is on: the call and rule count
    done = await acknowledge_delivery(trail, harness.store, crm.id, "alice", T0 + 60)
    assert done is not None and done.first
    harness.clock.now = T0 + AFTER
    fired = await harness.timers.fire_due()
    assert [(outcome, sinks) for _, outcome, sinks in fired] == [("acknowledged", [])]
    assert len(await harness.store.deliveries_of_event(call)) == 2
    assert harness.escalated("failed") == 0


def outcomes(fired: list[tuple[Any, str, list[str]]]) -> dict[str, tuple[str, list[str]]]:
    return {due.rule: (outcome, sorted(sinks)) for due, outcome, sinks in fired}


async def test_an_acknowledgement_of_one_rules_alert_leaves_the_other_rule_escalating(
    harness: Harness,
) -> None:
    call, first = await harness.post(**GOLD)
    assert sorted(by_sink(first)) == ["crm", "ops", "sales"]
    trail = AuditTrail(harness.store)
    sales = by_sink(first)["sales"]  # the sales rep acknowledges in #sales
    done = await acknowledge_delivery(trail, harness.store, sales.id, "sam", T0 + 60)
    assert done is not None and done.first and done.acknowledgement.rule == "vip"
    harness.clock.now = T0 + AFTER
    assert outcomes(await harness.timers.fire_due()) == {
        "failed": ("escalated", ["managers", "oncall"]),  # on-call is still paged
        "vip": ("acknowledged", []),
    }
    escalated = [v.sink for v in await harness.store.deliveries_of_event(call) if v.escalated_from]
    assert sorted(escalated) == ["managers", "oncall"]
    assert (harness.escalated("failed"), harness.escalated("vip")) == (1, 0)


async def test_an_acknowledgement_of_the_ops_alert_leaves_the_sales_rule_escalating(
    harness: Harness,
) -> None:
    _, first = await harness.post(**GOLD)
    trail = AuditTrail(harness.store)
    await acknowledge_delivery(trail, harness.store, by_sink(first)["ops"].id, "olga", T0 + 60)
    harness.clock.now = T0 + AFTER
    assert outcomes(await harness.timers.fire_due()) == {
        "failed": ("acknowledged", []),
        "vip": ("escalated", ["sales-lead"]),
    }


async def test_a_second_acknowledgement_of_a_rule_answers_the_first_another_rule_is_new(
    harness: Harness,
) -> None:
    call, first = await harness.post(**GOLD)
    views = by_sink(first)
    trail = AuditTrail(harness.store)
    ops = await acknowledge_delivery(trail, harness.store, views["ops"].id, "olga", T0 + 60)
    crm = await acknowledge_delivery(trail, harness.store, views["crm"].id, "carl", T0 + 70)
    sales = await acknowledge_delivery(trail, harness.store, views["sales"].id, "sam", T0 + 80)
    assert ops is not None and crm is not None and sales is not None
    assert (ops.first, crm.first, sales.first) == (True, False, True)
    assert crm.acknowledgement == ops.acknowledgement  # same call and rule: already
    assert (ops.acknowledgement.user_id, ops.acknowledgement.rule) == ("olga", "failed")
    assert (sales.acknowledgement.user_id, sales.acknowledgement.rule) == ("sam", "vip")
    audited = await harness.store.list_audit(AuditFilters(action="acknowledge"))
    assert sorted((r.actor, r.target) for r in audited) == [
        ("olga", f"call:{call}/rule:failed"),
        ("sam", f"call:{call}/rule:vip"),
    ]
    assert all(json.loads(r.details)["rule"] in r.target for r in audited)


async def test_a_silence_covering_the_call_or_a_muted_rule_does_not_escalate(
    harness: Harness, tmp_path: Path
) -> None:
    await harness.post()
    silence = SilenceRecord(
        "s1", json.dumps({"status": "FAILED"}), ("oncall", "managers"), T0, T0 + 2 * AFTER, "", T0
    )
    await harness.store.add_silence(silence)
    await harness.controls.refresh()
    harness.clock.now = T0 + AFTER
    fired = await harness.timers.fire_due()
    assert [outcome for _, outcome, _ in fired] == ["silenced"]

    muted = Harness(
        tmp_path,
        RULES.replace(
            "escalate: {after: 15m, to: [oncall, managers]}",
            "escalate: {after: 15m, to: [oncall, managers]}\n    muted_during: [quiet-year]",
        ),
    )
    await muted.store.open()
    try:
        muted.clock.now = T0 - 400 * 86400  # 2022: the rule routes
        await muted.post()
        muted.clock.now = T0 + AFTER  # 2023: muted when due
        fired = await muted.timers.fire_due()
        assert [outcome for _, outcome, _ in fired] == ["muted"]
        assert muted.escalated("failed") == 0
    finally:
        muted.intake.close()
        await muted.store.close()


async def test_only_the_worker_holding_a_timer_fires_it(harness: Harness) -> None:
    call, _ = await harness.post()
    harness.clock.now = T0 + AFTER
    crashed = await harness.store.claim_escalations(10, "crashed", 30.0, harness.clock.now)
    assert len(crashed) == 1  # claimed, then its worker died before settling it
    other = harness.worker("w2")
    assert await other.fire_due() == []  # its lease still runs
    harness.clock.now = T0 + AFTER + 31
    fired = await other.fire_due()
    assert [outcome for _, outcome, _ in fired] == ["escalated"]
    late = await harness.store.fire_escalation(
        crashed[0], "crashed", harness.clock.now, "escalated", [("late-id", "oncall")]
    )
    assert late is None  # the dead worker's settlement writes nothing
    assert await harness.timers.fire_due() == []
    assert len(await harness.store.deliveries_of_event(call)) == 4
    assert harness.escalated("failed") == 1


async def test_a_worker_whose_lease_was_taken_over_cannot_settle(harness: Harness) -> None:
    await harness.post()
    harness.clock.now = T0 + AFTER
    (slow,) = await harness.store.claim_escalations(10, "slow", 30.0, harness.clock.now)
    harness.clock.now += 31  # its lease ran out: another worker claims the timer
    (taken,) = await harness.store.claim_escalations(10, "w2", 30.0, harness.clock.now)
    late = await harness.store.fire_escalation(
        slow, "slow", harness.clock.now, "escalated", [("late-id", "oncall")]
    )
    assert late is None
    settled = await harness.store.fire_escalation(
        taken, "w2", harness.clock.now, "escalated", [("on-time", "oncall")]
    )
    assert settled == ("escalated", ["oncall"])


async def test_timers_are_claimed_in_batches_until_none_is_due(harness: Harness) -> None:
    for _ in range(5):  # batch=2: three claims
        await harness.post()
    harness.clock.now = T0 + AFTER
    fired = await harness.timers.fire_due()
    assert [outcome for _, outcome, _ in fired] == ["escalated"] * 5
    assert harness.escalated("failed") == 5


async def test_a_digest_escalates_as_a_whole_once_its_window_closed(harness: Harness) -> None:
    digest_ids = set()
    for _ in range(3):
        _, views = await harness.post(status="COMPLETED", sipTrunkId="trunk-9")
        digest_ids |= {view.id for view in views if view.kind == "digest"}
    (digest,) = digest_ids
    harness.clock.now = T0 + 300 + AFTER - 1
    assert await harness.timers.fire_due() == []  # due `after` from the window's end
    harness.clock.now = T0 + 300 + AFTER
    fired = await harness.timers.fire_due()
    assert [(due.kind, outcome, sinks) for due, outcome, sinks in fired] == [
        ("digest", "escalated", ["oncall"])
    ]
    (copy,) = await harness.store.escalations_of(digest)
    view = await harness.store.get_delivery(copy)
    assert view is not None and view.kind == "digest" and view.calls == 3
    assert len(await harness.store.digest_calls(copy)) == 3


async def test_an_acknowledged_digest_does_not_escalate(harness: Harness) -> None:
    _, views = await harness.post(status="COMPLETED", sipTrunkId="trunk-9")
    (digest,) = [view for view in views if view.kind == "digest"]
    await acknowledge_delivery(AuditTrail(harness.store), harness.store, digest.id, "bob", T0)
    harness.clock.now = T0 + 300 + AFTER
    assert [outcome for _, outcome, _ in await harness.timers.fire_due()] == ["acknowledged"]


async def test_a_call_whose_rule_was_muted_at_ingest_gets_no_timer(tmp_path: Path) -> None:
    muted = Harness(
        tmp_path,
        RULES.replace(
            "    to: [ops, crm]\n", "    to: [ops, crm]\n    muted_during: [quiet-year]\n"
        ),
    )
    await muted.store.open()
    try:
        await muted.post()  # T0 is in 2023: muted
        assert await muted.store.next_escalation_due() is None
    finally:
        muted.intake.close()
        await muted.store.close()
