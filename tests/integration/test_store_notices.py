"""Notices of dead deliveries in the store (`on_dead`, DESIGN.md section 16), on every
store kind (SQLite file, memory, PostgreSQL): written in the dead mark's transaction or
not at all, claimed and sent like any delivery though they have no call of their own,
and gone with the dead delivery they tell of. Those of one sink are claimed together
(the held ones early) and finished together, one outcome on each."""

from __future__ import annotations

import json
from dataclasses import replace

from router.operators import ForgetRequest
from router.operators.forget import erasure_of
from router.store import (
    AttemptRecord,
    DeadDelivery,
    IngestRecord,
    NewDelivery,
    NewNotice,
    Store,
)

NOW = 1_700_000_000.0
OWNER = "worker-1"
CALLER = "+14155550142"


def call(event_id: str, sinks: tuple[str, ...] = ("crm", "ops-slack")) -> IngestRecord:
    body = {"id": event_id, "status": "FAILED", "fromNumber": CALLER}
    return IngestRecord(
        event_id,
        json.dumps(body).encode(),
        NOW,
        [NewDelivery(f"{event_id}:{sink}", sink, "to-crm") for sink in sinks],
        status="FAILED",
        from_number=CALLER,
    )


def notice(dead_id: str, sink: str = "ops-slack", error: str = "HTTP 400") -> NewNotice:
    text = json.dumps({"notice": "delivery_dead", "delivery_id": dead_id, "error": error})
    return NewNotice(f"notice-{dead_id}-{sink}", sink, "to-crm", dead_id, text)


DEAD = AttemptRecord(1, NOW + 1, 0.1, "dead", 400, "HTTP 400", None)


async def test_a_notice_goes_in_with_the_dead_mark_beside_the_calls_own_delivery(
    store: Store,
) -> None:
    await store.ingest(call("c1"))
    [crm] = await store.claim("crm", 10, OWNER, 30, NOW)
    assert await store.finish(crm.id, OWNER, DEAD, notices=[notice(crm.id)])
    found = {d.id: d for d in await store.list_deliveries()}
    # The call's own delivery to ops-slack and the notice to ops-slack, side by side.
    assert found["c1:ops-slack"].notice_of is None
    written = found[f"notice-{crm.id}-ops-slack"]
    assert (written.sink, written.status, written.notice_of) == ("ops-slack", "pending", crm.id)
    claimed = {d.id: d for d in await store.claim("ops-slack", 10, OWNER, 30, NOW + 2)}
    mine = claimed[written.id]
    assert (mine.event_id, mine.payload) == ("", b"")
    assert mine.notice is not None and json.loads(mine.notice)["delivery_id"] == crm.id
    assert claimed["c1:ops-slack"].notice is None
    delivered = AttemptRecord(1, NOW + 3, 0.1, "delivered", 200, None, "ok")
    assert await store.finish(mine.id, OWNER, delivered)
    view = await store.get_delivery(mine.id)
    assert view is not None and view.status == "delivered" and view.event_id == ""


async def test_no_notice_without_the_dead_mark(store: Store) -> None:
    await store.ingest(call("c2"))
    [crm] = await store.claim("crm", 10, OWNER, 30, NOW)
    # Another worker holds it: nothing is recorded, no notice either.
    assert not await store.finish(crm.id, "someone-else", DEAD, notices=[notice(crm.id)])
    # A retry is no death: its notices are not written.
    retry = AttemptRecord(1, NOW + 1, 0.1, "retry", 503, "HTTP 503", None)
    assert await store.finish(
        crm.id, OWNER, retry, next_attempt_at=NOW + 5, notices=[notice(crm.id)]
    )
    assert {d.sink for d in await store.list_deliveries()} == {"crm", "ops-slack"}


async def test_deliveries_dying_unconfigured_get_their_notices_in_the_same_write(
    store: Store,
) -> None:
    await store.ingest(call("c3", sinks=("crm",)))
    await store.ingest(call("c4", sinks=("crm",)))
    seen: list[DeadDelivery] = []

    def notices_of(dead: DeadDelivery) -> list[NewNotice]:
        seen.append(dead)
        return [notice(dead.id, error=dead.error or "")]

    killed = await store.kill_expired_waiting("crm", NOW + 10, "sink not configured", NOW + 20,
                                              notices_of)  # fmt: skip
    assert killed == 2
    assert sorted(dead.id for dead in seen) == ["c3:crm", "c4:crm"]
    assert all(dead.error == "sink not configured" for dead in seen)
    assert all(json.loads(dead.payload or b"{}")["status"] == "FAILED" for dead in seen)
    notices = [d for d in await store.list_deliveries() if d.notice_of is not None]
    assert sorted(d.notice_of for d in notices) == ["c3:crm", "c4:crm"]


async def test_a_notice_goes_with_its_dead_delivery_when_the_caller_is_forgotten(
    store: Store,
) -> None:
    await store.ingest(call("c5", sinks=("crm",)))
    [crm] = await store.claim("crm", 10, OWNER, 30, NOW)
    await store.finish(crm.id, OWNER, DEAD, notices=[notice(crm.id, "alerts")])
    assert len(await store.list_deliveries()) == 2
    await store.forget(erasure_of(ForgetRequest(CALLER)))
    assert await store.list_deliveries() == []


async def test_another_calls_notice_naming_the_number_loses_it(store: Store) -> None:
    other = IngestRecord("c6", b'{"id": "c6"}', NOW, [NewDelivery("c6:crm", "crm", "r")])
    await store.ingest(other)
    [crm] = await store.claim("crm", 10, OWNER, 30, NOW)
    error = f"CRM refused: duplicate contact {CALLER}"
    await store.finish(crm.id, OWNER, DEAD, notices=[notice(crm.id, "alerts", error)])
    await store.ingest(call("c7", sinks=()))
    await store.forget(erasure_of(ForgetRequest(CALLER)))
    [claimed] = await store.claim("alerts", 10, OWNER, 30, NOW + 5)
    assert claimed.notice is not None
    assert json.loads(claimed.notice)["error"] == "CRM refused: duplicate contact [erased]"


# --- notices of one sink claimed and finished together (one grouped message) ---


async def dead_with_notices(store: Store, event_ids: list[str], hold: float = 0.0) -> None:
    """Each call's crm delivery goes dead with a notice to ops-slack (held `hold` s)."""
    for event_id in event_ids:
        await store.ingest(call(event_id, sinks=("crm",)))
    for crm in await store.claim("crm", 100, OWNER, 30, NOW):
        written = replace(notice(crm.id), hold=hold)
        assert await store.finish(crm.id, OWNER, DEAD, notices=[written])


async def test_a_claim_can_leave_notices_out_and_a_held_notice_waits(store: Store) -> None:
    await dead_with_notices(store, ["g1"], hold=5.0)
    await store.ingest(call("g2", sinks=("ops-slack",)))
    # Written at NOW + 1.1 and held 5 s: not due at NOW + 2.
    assert [d.id for d in await store.claim("ops-slack", 10, OWNER, 30, NOW + 2)] == [
        "g2:ops-slack"
    ]
    assert await store.next_due_at("ops-slack") == NOW + 1.1 + 5.0
    # Due, but left out: the lane is sending a group of notices already.
    assert await store.claim("ops-slack", 10, OWNER, 30, NOW + 7, notices=False) == []
    [due] = await store.claim("ops-slack", 10, OWNER, 30, NOW + 7)
    assert due.notice is not None


async def test_claim_notices_takes_the_due_and_the_held_ones_not_the_leased(
    store: Store,
) -> None:
    await dead_with_notices(store, ["h1", "h2", "h3", "h4"], hold=5.0)
    await store.ingest(call("h5", sinks=("ops-slack",)))  # a call's own delivery: not a notice
    first = await store.claim_notices("ops-slack", 1, OWNER, 30, NOW + 2)
    assert len(first) == 1 and first[0].notice is not None  # held, never tried: taken early
    rest = await store.claim_notices("ops-slack", 100, "worker-2", 30, NOW + 2)
    assert len(rest) == 3 and first[0].id not in {d.id for d in rest}
    assert all(d.notice is not None for d in rest)
    assert await store.claim_notices("ops-slack", 100, "worker-3", 30, NOW + 2) == []


async def test_finish_many_records_one_outcome_on_each_in_one_go(store: Store) -> None:
    await dead_with_notices(store, ["m1", "m2", "m3"])
    claimed = await store.claim_notices("ops-slack", 100, OWNER, 30, NOW + 2)
    assert len(claimed) == 3
    retry = AttemptRecord(1, NOW + 3, 0.1, "retry", 503, "HTTP 503", None)
    recorded = await store.finish_many([(d.id, retry, NOW + 10) for d in claimed], OWNER)
    assert sorted(recorded) == sorted(d.id for d in claimed)
    for delivery in claimed:
        view = await store.get_delivery(delivery.id)
        assert view is not None and (view.status, view.attempts) == ("pending", 1)
        [attempt] = await store.list_attempts(delivery.id)
        assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "retry", 503)
    # Not due yet, retried: not taken early; due: all three again, together.
    assert await store.claim_notices("ops-slack", 100, OWNER, 30, NOW + 5) == []
    again = await store.claim_notices("ops-slack", 100, OWNER, 30, NOW + 10)
    assert len(again) == 3
    # One lost its lease meanwhile (another worker took it over): it is left alone.
    lost = again[0].id
    await store.defer(lost, OWNER, NOW + 10)
    [taken] = await store.claim_notices("ops-slack", 100, "worker-2", 30, NOW + 11)
    assert taken.id == lost
    delivered = AttemptRecord(2, NOW + 12, 0.1, "delivered", 200, None, "ok")
    recorded = await store.finish_many([(d.id, delivered, None) for d in again], OWNER)
    assert sorted(recorded) == sorted(d.id for d in again if d.id != lost)
    states = {d.id: d.status for d in await store.list_deliveries() if d.notice_of}
    assert states == {**{d.id: "delivered" for d in again}, lost: "pending"}
    assert await store.finish_many([], OWNER) == []
