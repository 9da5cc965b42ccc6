"""The store's part of the operators' controls (DESIGN.md section 9), on every store kind:
muted deliveries, silences and sink pauses. Times are fixed numbers, never the clock."""

from __future__ import annotations

from router.store import (
    AttemptRecord,
    GroupJoin,
    IngestRecord,
    IngestResult,
    NewDelivery,
    SilenceRecord,
    SinkPause,
    Store,
)
from tests.integration.test_store_contract import LEASE, NOW, record

DAY = 86400.0


def muted_call(event_id: str, reason: str = "time_interval:night") -> IngestRecord:
    return IngestRecord(
        event_id,
        b'{"id": "%s"}' % event_id.encode(),
        NOW,
        [
            NewDelivery(f"{event_id}:slack", "slack", "r", muted_reason=reason),
            NewDelivery(f"{event_id}:crm", "crm", "r"),
            # A grouped rule's muted delivery is written as a single one, joining nothing.
            NewDelivery(f"{event_id}:ops", "ops", "g", GroupJoin("{}", 60.0), muted_reason=reason),
        ],
    )


def silence(silence_id: str, starts_at: float = NOW, ends_at: float = NOW + 3600) -> SilenceRecord:
    return SilenceRecord(
        silence_id, '{"status": "FAILED"}', ("slack",), starts_at, ends_at, "trunk", NOW - 1
    )


async def test_a_muted_delivery_is_written_muted_with_its_reason_and_never_claimed(
    store: Store,
) -> None:
    assert await store.ingest(muted_call("call-1")) == IngestResult("accepted", 3)

    slack = await store.get_delivery("call-1:slack")
    assert slack is not None
    assert (slack.status, slack.muted_reason, slack.next_attempt_at) == (
        "muted",
        "time_interval:night",
        None,
    )
    ops = await store.get_delivery("call-1:ops")
    assert ops is not None and (ops.status, ops.kind) == ("muted", "single")
    assert await store.claim("slack", 10, "w1", LEASE, NOW + 1) == []
    assert await store.claim("ops", 10, "w1", LEASE, NOW + DAY) == []
    assert {d.id for d in await store.list_deliveries("muted")} == {"call-1:slack", "call-1:ops"}
    assert await store.pending_sinks() == {"crm"}


async def test_replaying_muted_deliveries_sends_them_and_clears_the_reason(store: Store) -> None:
    await store.ingest(muted_call("call-1"))
    await store.ingest(muted_call("call-2"))

    assert await store.replay_muted("slack", NOW + 1) == 2
    assert await store.replay_muted(None, NOW + 1) == 2  # the ops ones
    assert await store.replay_muted(None, NOW + 1) == 0
    claimed = await store.claim("slack", 10, "w1", LEASE, NOW + 1)
    assert sorted(d.id for d in claimed) == ["call-1:slack", "call-2:slack"]
    view = await store.get_delivery("call-1:slack")
    assert view is not None and (view.status, view.muted_reason) == ("pending", None)


async def test_one_muted_delivery_is_replayed_by_id(store: Store) -> None:
    await store.ingest(muted_call("call-1"))
    assert await store.replay("call-1:slack", NOW + 1) is True
    view = await store.get_delivery("call-1:slack")
    assert view is not None and view.status == "pending"


async def test_mute_takes_a_leased_delivery_out_without_an_attempt(store: Store) -> None:
    await store.ingest(record("call-1"))
    [claimed] = await store.claim("slack", 10, "w1", LEASE, NOW)

    assert await store.mute(claimed.id, "w2", "silence:s1", NOW + 1) is False
    assert await store.mute(claimed.id, "w1", "silence:s1", NOW + 1) is True
    view = await store.get_delivery(claimed.id)
    assert view is not None
    assert (view.status, view.muted_reason, view.attempts) == ("muted", "silence:s1", 0)
    assert await store.list_attempts(claimed.id) == []
    assert not await store.finish(claimed.id, "w1", AttemptRecord(1, NOW, 0.1, "delivered"))


async def test_silences_are_stored_listed_and_expired(store: Store) -> None:
    await store.add_silence(silence("s-later", NOW + 100, NOW + 200))
    await store.add_silence(silence("s-now"))
    everywhere = SilenceRecord("s-all", '{"a": 1}', None, NOW, NOW + 10, "", NOW)
    await store.add_silence(everywhere)

    listed = await store.list_silences()
    assert [s.id for s in listed] == ["s-now", "s-all", "s-later"]
    assert listed[0] == silence("s-now")
    assert listed[1].sinks is None
    assert [s.id for s in await store.list_silences(ended_after=NOW + 50)] == [
        "s-now",
        "s-later",
    ]

    expired = await store.expire_silence("s-now", NOW + 30)
    assert expired is not None and expired.expired_at == NOW + 30
    assert expired.state(NOW + 30) == "expired" and expired.state(NOW + 29) == "active"
    again = await store.expire_silence("s-now", NOW + 40)
    assert again is not None and again.expired_at == NOW + 30, "expiring twice keeps the first"
    assert await store.expire_silence("unknown", NOW) is None
    assert [s.id for s in await store.list_silences(ended_after=NOW + 50)] == ["s-later"]


async def test_the_purge_removes_silences_ended_before_the_cutoff(store: Store) -> None:
    await store.add_silence(silence("old", NOW - 40 * DAY, NOW - 31 * DAY))
    await store.add_silence(silence("recent", NOW - 20 * DAY, NOW - 10 * DAY))
    await store.add_silence(silence("expired-early", NOW - 40 * DAY, NOW + DAY))
    await store.expire_silence("expired-early", NOW - 35 * DAY)
    await store.add_silence(silence("running"))

    assert await store.purge_silences(NOW - 30 * DAY) == 2
    assert [s.id for s in await store.list_silences()] == ["recent", "running"]


async def test_sink_pauses_replace_each_other_end_and_resume(store: Store) -> None:
    await store.pause_sink(SinkPause("crm", NOW + 60, "migration", NOW))
    await store.pause_sink(SinkPause("slack", NOW + 10, "", NOW))
    await store.pause_sink(SinkPause("crm", NOW + 3600, "longer", NOW + 1))

    assert await store.sink_pauses(NOW + 20) == [SinkPause("crm", NOW + 3600, "longer", NOW + 1)]
    assert [p.sink for p in await store.sink_pauses(NOW)] == ["crm", "slack"]
    assert await store.resume_sink("crm") is True
    assert await store.resume_sink("crm") is False
    assert await store.sink_pauses(NOW + 20) == []
