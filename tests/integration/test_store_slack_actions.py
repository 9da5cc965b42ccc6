"""The store's part of acting from Slack's buttons (DESIGN.md section 12), on every store
kind: acknowledgements (the first one counts), extending a silence, reading one call's
body; the audit (DESIGN.md section 14) read back and purged. Times are fixed numbers,
never the clock."""

from __future__ import annotations

from router.store import ALL_RULES, Acknowledgement, AuditFilters, AuditRecord, Store
from tests.integration.test_store_contract import NOW, record
from tests.integration.test_store_controls import silence


async def test_the_first_acknowledgement_of_each_call_and_rule_counts(store: Store) -> None:
    first = Acknowledgement("call", "call-1", "failed", "U1", "alice", "C1", NOW)
    assert await store.acknowledge(first) == first
    second = Acknowledgement("call", "call-1", "failed", "U2", "bob", "C1", NOW + 5)
    assert await store.acknowledge(second) == first
    # The same call's deliveries for another rule: another acknowledgement, which counts.
    vip = Acknowledgement("call", "call-1", "vip", "U3", "carol", "C2", NOW + 6)
    assert await store.acknowledge(vip) == vip
    digest = Acknowledgement("digest", "call-1", "trunks", "U2", "bob", "C1", NOW + 7)
    assert await store.acknowledge(digest) == digest  # a digest of the same id is another target

    assert await store.acknowledgement("call", "call-1", "failed") == first
    assert await store.acknowledgement("call", "call-1", "vip") == vip
    assert await store.acknowledgement("call", "call-1", "trunks") is None
    assert await store.acknowledgement("digest", "call-1", "trunks") == digest
    assert await store.acknowledgement("call", "unknown", "failed") is None
    assert await store.acknowledgements_since(NOW + 1) == [vip, digest]
    assert await store.acknowledgements_since(NOW) == [first, vip, digest]


async def test_an_acknowledgement_of_every_rule_counts_for_each_of_them(store: Store) -> None:
    """One recorded before acknowledgements were per rule (rule ALL_RULES, as migration 19
    keeps the old rows) counts for every rule of its call: a later one of a rule is not
    recorded and answers with it."""
    old = Acknowledgement("call", "call-1", ALL_RULES, "U1", "alice", "C1", NOW)
    assert await store.acknowledge(old) == old
    assert await store.acknowledgement("call", "call-1", "failed") == old
    assert await store.acknowledgement("call", "call-1", "vip") == old
    later = Acknowledgement("call", "call-1", "vip", "U2", "bob", "C1", NOW + 5)
    assert await store.acknowledge(later) == old
    assert await store.acknowledgements_since(0) == [old]
    assert await store.acknowledgement("call", "call-2", "vip") is None


async def test_audit_records_are_read_newest_first(store: Store) -> None:
    older = AuditRecord("a1", NOW, "slack:U1", "silence.create", "silence:s1", '{"x": 1}')
    newer = AuditRecord("a2", NOW + 1, "slack:U9", "acknowledge", "call:c1")
    await store.record_audit(older)
    await store.record_audit(newer)
    assert await store.list_audit(AuditFilters()) == [newer, older]
    assert await store.list_audit(AuditFilters(), limit=1) == [newer]


async def test_extending_a_silence_moves_its_end_later_only(store: Store) -> None:
    await store.add_silence(silence("s1", ends_at=NOW + 3600))
    assert await store.extend_silence("s1", NOW + 7200, NOW)
    assert not await store.extend_silence("s1", NOW + 60, NOW)  # never shortens
    assert not await store.extend_silence("unknown", NOW + 9000, NOW)
    [stored] = await store.list_silences()
    assert stored.ends_at == NOW + 7200

    await store.expire_silence("s1", NOW + 10)
    assert not await store.extend_silence("s1", NOW + 9000, NOW + 20)  # over: not revived
    [stored] = await store.list_silences()
    assert stored.ends_at == NOW + 7200 and stored.expired_at == NOW + 10


async def test_one_calls_body_is_read_back_as_received(store: Store) -> None:
    call = record("call-7")
    await store.ingest(call)
    assert await store.event_payload("call-7") == call.payload
    assert await store.event_payload("unknown") is None


async def test_audit_and_acknowledgements_older_than_the_cutoff_are_purged(store: Store) -> None:
    await store.acknowledge(Acknowledgement("call", "old", "r", "U1", "", "", NOW - 100))
    await store.acknowledge(Acknowledgement("call", "new", "r", "U1", "", "", NOW))
    await store.record_audit(AuditRecord("a1", NOW - 100, "slack:U1", "x", "t"))
    await store.record_audit(AuditRecord("a2", NOW, "slack:U1", "x", "t"))
    assert await store.purge_audit(NOW - 50) == 1
    assert [a.target_id for a in await store.acknowledgements_since(0)] == ["new"]
    assert [a.id for a in await store.list_audit(AuditFilters())] == ["a2"]
