"""The store's audit (DESIGN.md section 14), on every store kind: records read back
newest first under each filter and page; the choices offered; each operators' change
written with its record in one transaction, and no record of a change that did not
happen. Times are fixed numbers, never the clock."""

from __future__ import annotations

import json

from router.store import (
    Acknowledgement,
    AttemptRecord,
    AuditFilters,
    AuditRecord,
    SinkPause,
    Store,
)
from tests.integration.test_store_contract import LEASE, NOW, record
from tests.integration.test_store_controls import silence


def audit(record_id: str, at: float = NOW, action: str = "replay") -> AuditRecord:
    return AuditRecord(record_id, at, "cli:ops", action, f"target:{record_id}", '{"k": 1}')


async def ids(store: Store, filters: AuditFilters, limit: int = 100) -> list[str]:
    return [found.id for found in await store.list_audit(filters, limit)]


async def test_records_are_filtered_by_time_actor_and_action_and_paged(store: Store) -> None:
    rows = [
        AuditRecord("a", NOW, "token", "replay", "delivery:1"),
        AuditRecord("b", NOW + 10, "cli:ops", "replay", "delivery:2"),
        AuditRecord("c", NOW + 10, "token", "silence.create", "silence:s"),
        AuditRecord("d", NOW + 20, "slack:U1", "acknowledge", "call:c", '{"outcome": "x"}'),
    ]
    for row in rows:
        await store.record_audit(row)
    assert await store.list_audit(AuditFilters()) == rows[::-1]
    assert await ids(store, AuditFilters(since=NOW + 10)) == ["d", "c", "b"]
    assert await ids(store, AuditFilters(actor="token")) == ["c", "a"]
    assert await ids(store, AuditFilters(action="replay")) == ["b", "a"]
    assert await ids(store, AuditFilters(since=NOW + 5, actor="token", action="replay")) == []
    assert await ids(store, AuditFilters(actor="token", action="replay")) == ["a"]
    assert await ids(store, AuditFilters(), limit=2) == ["d", "c"]
    assert await ids(store, AuditFilters(before=(NOW + 10, "c"))) == ["b", "a"]
    assert await ids(store, AuditFilters(actor="token", before=(NOW + 10, "c"))) == ["a"]
    assert await store.audit_choices() == (
        ["cli:ops", "slack:U1", "token"],
        ["acknowledge", "replay", "silence.create"],
    )


async def test_a_replay_is_written_with_its_record_and_an_impossible_one_without(
    store: Store,
) -> None:
    await store.ingest(record("e1"))
    assert await store.replay("e1:slack", NOW, audit("r1"))
    assert not await store.replay("unknown", NOW, audit("r2"))
    [claimed] = await store.claim("slack", 1, "worker", LEASE, NOW + 1)
    assert not await store.replay(claimed.id, NOW + 2, audit("r3")), "in flight: not replayed"
    assert await ids(store, AuditFilters()) == ["r1"]
    assert await store.finish(
        claimed.id, "worker", AttemptRecord(1, NOW + 3, 0.1, "dead", 400, "no")
    )
    assert await store.replay_dead("slack", NOW + 4, None, audit("bulk", NOW + 4)) == 1
    assert await store.replay_dead("slack", NOW + 5, None, audit("none", NOW + 5)) == 0
    bulk = (await store.list_audit(AuditFilters()))[0]
    assert bulk.id == "bulk" and json.loads(bulk.details) == {"k": 1, "count": 1}
    assert await ids(store, AuditFilters()) == ["bulk", "r1"]


async def test_silences_pauses_and_acknowledgements_carry_their_records(store: Store) -> None:
    await store.add_silence(silence("s1"), audit("created", NOW, "silence.create"))
    await store.expire_silence("s1", NOW + 1, audit("expired", NOW + 1, "silence.expire"))
    await store.expire_silence("s1", NOW + 2, audit("again", NOW + 2, "silence.expire"))
    await store.expire_silence("unknown", NOW + 2, audit("unknown", NOW + 2, "silence.expire"))
    await store.add_silence(silence("s2"))
    assert await store.extend_silence("s2", NOW + 7200, NOW, audit("extended", NOW + 3))
    assert not await store.extend_silence("s2", NOW + 60, NOW, audit("shorter", NOW + 3))
    await store.pause_sink(SinkPause("crm", NOW + 60, "", NOW), audit("paused", NOW + 4))
    assert await store.resume_sink("crm", audit("resumed", NOW + 5))
    assert not await store.resume_sink("crm", audit("not paused", NOW + 6))
    first = Acknowledgement("call", "c1", "failed", "U1", "alice", "C1", NOW + 7)
    await store.acknowledge(first, audit("acked", NOW + 7, "acknowledge"))
    again = Acknowledgement("call", "c1", "failed", "U2", "bob", "C1", NOW + 8)
    assert await store.acknowledge(again, audit("acked again", NOW + 8)) == first
    assert await ids(store, AuditFilters()) == [
        "acked",
        "resumed",
        "paused",
        "extended",
        "expired",
        "created",
    ]
