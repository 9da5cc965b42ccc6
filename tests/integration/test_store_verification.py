"""The store's verify-mode operations on every store kind (sqlite, memory, postgresql):
a held call has no delivery until it is routed, once, with the body given then."""

from __future__ import annotations

import uuid

from router.store import CallFilters, IngestRecord, IngestResult, NewDelivery, Store
from tests.integration.test_store_contract import LEASE, NOW


def held(event_id: str, payload: bytes = b'{"posted": true}') -> IngestRecord:
    return IngestRecord(event_id, payload, NOW, [], "FAILED", "OUTBOUND")


def routed(event_id: str, payload: bytes, sinks: tuple[str, ...] = ("slack",)) -> IngestRecord:
    deliveries = [NewDelivery(f"{event_id}:{sink}", sink, "r") for sink in sinks]
    return IngestRecord(event_id, payload, NOW + 1, deliveries, "COMPLETED", "INBOUND")


async def test_a_held_call_waits_without_deliveries(store: Store):
    call = str(uuid.uuid4())
    assert await store.ingest_held(held(call)) == IngestResult("accepted", 0)
    assert await store.ingest_held(held(call)) == IngestResult("duplicate", 0)
    assert await store.list_deliveries() == []
    assert await store.claim("slack", 10, "w", LEASE, NOW + 100) == []
    [due] = await store.due_held(NOW, 100)
    assert (due.event_id, due.payload, due.verify_attempts) == (call, b'{"posted": true}', 0)
    [view] = await store.list_events(CallFilters(verification="pending"))
    assert (view.id, view.verification, view.status) == (call, "pending", "FAILED")
    assert await store.purge(NOW + 10**9) == 0  # a held call is never purged


async def test_routing_a_held_call_uses_the_given_body_once(store: Store):
    call = str(uuid.uuid4())
    await store.ingest_held(held(call))
    result = await store.route_held(routed(call, b'{"from": "revring"}'), "verified")
    assert result == IngestResult("accepted", 1)
    assert await store.route_held(routed(call, b'{"again": 1}'), "verified") is None
    [claimed] = await store.claim("slack", 10, "w", LEASE, NOW + 100)
    assert claimed.payload == b'{"from": "revring"}'
    view = await store.get_event(call)
    payload = view.payload
    assert (view.verification, view.status, payload) == ("verified", "COMPLETED", claimed.payload)
    assert await store.due_held(NOW + 100, 100) == []


async def test_unknown_calls_are_kept_not_verified_and_can_be_released(store: Store):
    call = str(uuid.uuid4())
    await store.ingest_held(held(call))
    assert await store.mark_not_verified([call, "absent"]) == 1
    assert await store.due_held(NOW + 100, 100) == []
    [view] = await store.list_events(CallFilters(verification="not_verified"))
    assert view.id == call
    assert await store.route_held(routed(call, b"{}"), "verified") is None
    released = await store.route_held(routed(call, b'{"posted": true}'), "released")
    assert released == IngestResult("accepted", 1)
    assert [v.id for v in await store.list_events(CallFilters(verification="released"))] == [call]
    assert await store.get_event("absent") is None


async def test_postponed_calls_are_due_later(store: Store):
    calls = [str(uuid.uuid4()) for _ in range(3)]
    for call in calls:
        await store.ingest_held(held(call))
    assert await store.postpone_verification(calls[:2], NOW + 60) == 2
    assert [d.event_id for d in await store.due_held(NOW + 1, 100)] == [calls[2]]
    due = await store.due_held(NOW + 60, 100)
    assert sorted(d.event_id for d in due) == sorted(calls)
    assert {d.event_id: d.verify_attempts for d in due}[calls[0]] == 1
    assert len(await store.due_held(NOW + 60, 2)) == 2


async def test_a_schema_3_sqlite_store_upgrades_in_place(tmp_path):
    """A database made by the code on main (schema 3) gains the verification columns;
    its calls read as routed on arrival (verification None)."""
    import sqlite3
    import time

    from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for
    from router.store.sqlite import SQLiteStore

    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        old.execute(SCHEMA_VERSION_DDL)
        for migration in MIGRATIONS[:3]:
            for statement in statements_for(migration, "sqlite"):
                old.execute(statement)
            old.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
        old.execute("INSERT INTO events (id, payload, received_at) VALUES ('old', x'7b7d', 1.0)")
    old.close()
    database.chmod(0o600)
    store = SQLiteStore(database)
    await store.open()
    try:
        view = await store.get_event("old")
        payload = view.payload
        assert (view.verification, view.verify_attempts, payload) == (None, 0, b"{}")
        assert await store.ingest_held(held("new")) == IngestResult("accepted", 0)
        assert [v.id for v in await store.list_events(CallFilters(verification="pending"))] == [
            "new"
        ]
    finally:
        await store.close()


async def test_a_held_call_is_found_by_its_agent_before_and_after_verification(store: Store):
    """The console's filters read the call's columns: a held call has them as posted, and
    routing it with RevRing's body takes RevRing's."""
    call = str(uuid.uuid4())
    posted = IngestRecord(call, b"{}", NOW, [], "FAILED", "OUTBOUND", agent_id="posted-agent")
    await store.ingest_held(posted)
    [found] = await store.list_events(CallFilters(agent_id="posted-agent"))
    assert found.id == call
    verified = IngestRecord(
        call, b"{}", NOW + 1, [], "FAILED", "OUTBOUND", agent_id="agent-per-revring"
    )
    assert await store.route_held(verified, "verified") is not None
    assert await store.list_events(CallFilters(agent_id="posted-agent")) == []
    [found] = await store.list_events(CallFilters(agent_id="agent-per-revring"))
    assert (found.id, found.verification) == (call, "verified")
