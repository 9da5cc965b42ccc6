"""The `Store` contract, written against the interface only: every store kind in
`conftest.STORE_KINDS` must pass it. Times are fixed numbers, never the clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from router.store import (
    AttemptRecord,
    IngestRecord,
    IngestResult,
    NewDelivery,
    SinkBacklog,
    Store,
    StoreClosed,
)
from router.store.records import AttemptOutcome
from tests.integration.conftest import StoreFactory

NOW = 1_700_000_000.0
LEASE = 30.0


def record(
    event_id: str | None = None,
    sinks: Sequence[str] = ("slack",),
    received_at: float = NOW,
    rule: str = "all-calls",
) -> IngestRecord:
    event_id = event_id or str(uuid.uuid4())
    return IngestRecord(
        event_id=event_id,
        payload=b'{"id": "%s", "status": "FAILED"}' % event_id.encode(),
        received_at=received_at,
        deliveries=[NewDelivery(f"{event_id}:{sink}", sink, rule) for sink in sinks],
        status="FAILED",
        direction="INBOUND",
    )


def attempt(
    outcome: AttemptOutcome,
    started_at: float = NOW,
    number: int = 1,
    status_code: int | None = None,
    error: str | None = None,
    detail: str | None = None,
) -> AttemptRecord:
    return AttemptRecord(number, started_at, 0.25, outcome, status_code, error, detail)


async def claim_one(store: Store, sink: str = "slack", owner: str = "w1", now: float = NOW):
    claimed = await store.claim(sink, 10, owner, LEASE, now)
    assert len(claimed) == 1, claimed
    return claimed[0]


# --- ingest ------------------------------------------------------------------------------


async def test_ingest_accepts_then_reports_duplicate_without_new_deliveries(store: Store) -> None:
    first = record("call-1", sinks=("slack", "crm"))
    assert await store.ingest(first) == IngestResult("accepted", 2)

    again = IngestRecord("call-1", b"{}", NOW + 5, [NewDelivery("other", "email", "r")])
    assert await store.ingest(again) == IngestResult("duplicate", 0)

    deliveries = await store.list_deliveries()
    assert sorted(d.sink for d in deliveries) == ["crm", "slack"]
    assert await store.get_delivery("other") is None


async def test_ingest_without_deliveries_is_accepted(store: Store) -> None:
    assert await store.ingest(record(sinks=())) == IngestResult("accepted", 0)
    assert await store.list_deliveries() == []


async def test_concurrent_identical_ingests_accept_exactly_one(store: Store) -> None:
    copies = [
        IngestRecord("same-call", b"{}", NOW, [NewDelivery(f"d{i}", "slack", "r")])
        for i in range(50)
    ]
    results = await asyncio.gather(*(store.ingest(copy) for copy in copies))

    assert [r.status for r in results].count("accepted") == 1
    assert sum(r.deliveries for r in results) == 1
    assert len(await store.list_deliveries()) == 1


async def test_concurrent_distinct_ingests_are_all_persisted(store_factory: StoreFactory) -> None:
    store = await store_factory()
    records = [record(sinks=("slack", "crm")) for _ in range(200)]
    results = await asyncio.gather(*(store.ingest(r) for r in records))
    assert results == [IngestResult("accepted", 2)] * 200
    await store.close()

    reopened = await store_factory()
    persisted = await reopened.list_deliveries(limit=1000)
    assert len(persisted) == 400
    assert {d.event_id for d in persisted} == {r.event_id for r in records}


async def test_data_survives_close_and_reopen(store_factory: StoreFactory) -> None:
    store = await store_factory()
    await store.ingest(record("call-1"))
    claimed = await claim_one(store)
    await store.finish(
        claimed.id, "w1", attempt("retry", error="HTTP 503"), next_attempt_at=NOW + 9
    )
    await store.close()

    reopened = await store_factory()
    view = await reopened.get_delivery("call-1:slack")
    assert view is not None
    assert (view.status, view.attempts, view.last_error, view.next_attempt_at) == (
        "pending",
        1,
        "HTTP 503",
        NOW + 9,
    )
    assert [a.error for a in await reopened.list_attempts("call-1:slack")] == ["HTTP 503"]


# --- claim -------------------------------------------------------------------------------


async def test_claim_returns_what_the_sink_needs(store: Store) -> None:
    ingested = record("call-1", rule="failed-calls")
    await store.ingest(ingested)

    claimed = await claim_one(store)

    assert claimed.id == "call-1:slack"
    assert claimed.event_id == "call-1"
    assert (claimed.sink, claimed.rule) == ("slack", "failed-calls")
    assert claimed.payload == ingested.payload
    assert (claimed.attempts, claimed.retry_attempts) == (0, 0)
    assert claimed.retry_started_at == NOW
    assert claimed.created_at == NOW


async def test_claim_respects_due_time(store: Store) -> None:
    await store.ingest(record(received_at=NOW + 10))

    assert await store.claim("slack", 10, "w1", LEASE, NOW) == []
    assert len(await store.claim("slack", 10, "w1", LEASE, NOW + 10)) == 1


async def test_claim_only_takes_the_named_sink(store: Store) -> None:
    await store.ingest(record("call-1", sinks=("slack", "crm")))

    claimed = await store.claim("crm", 10, "w1", LEASE, NOW)

    assert [c.id for c in claimed] == ["call-1:crm"]
    assert await store.claim("email", 10, "w1", LEASE, NOW) == []


async def test_claim_honours_limit_and_orders_by_due_time_then_creation(store: Store) -> None:
    for offset in (4, 1, 3, 0, 2):
        await store.ingest(record(f"call-{offset}", received_at=NOW + offset))
    # call-0 failed once and is due again later than all the others
    first = await claim_one(store, now=NOW)
    assert first.event_id == "call-0"
    await store.finish(first.id, "w1", attempt("retry"), next_attempt_at=NOW + 50)

    claimed = await store.claim("slack", 3, "w1", LEASE, NOW + 100)
    assert [c.event_id for c in claimed] == ["call-1", "call-2", "call-3"]
    rest = await store.claim("slack", 10, "w1", LEASE, NOW + 100)
    assert [c.event_id for c in rest] == ["call-4", "call-0"]


async def test_live_lease_blocks_other_claims_and_expired_lease_is_reclaimed(store: Store) -> None:
    await store.ingest(record("call-1"))
    await claim_one(store, owner="w1", now=NOW)

    assert await store.claim("slack", 10, "w2", LEASE, NOW + LEASE - 1) == []
    taken_over = await claim_one(store, owner="w2", now=NOW + LEASE + 1)

    assert taken_over.id == "call-1:slack"
    assert await store.finish(taken_over.id, "w1", attempt("delivered")) is False
    assert await store.finish(taken_over.id, "w2", attempt("delivered")) is True


async def test_a_delivery_written_leased_is_sent_by_its_owner_alone(store: Store) -> None:
    leased = IngestRecord(
        "call-1", b"{}", NOW, [NewDelivery("call-1:slack", "slack", "r", None, "w1", NOW + LEASE)]
    )
    assert await store.ingest(leased) == IngestResult("accepted", 1)

    assert await store.claim("slack", 10, "w2", LEASE, NOW + 1) == []
    assert await store.finish("call-1:slack", "w1", attempt("delivered")) is True
    view = await store.get_delivery("call-1:slack")
    assert view is not None and (view.status, view.attempts) == ("delivered", 1)


async def test_a_delivery_written_leased_is_taken_over_when_its_owner_dies(store: Store) -> None:
    leased = IngestRecord(
        "call-1", b"{}", NOW, [NewDelivery("call-1:slack", "slack", "r", None, "w1", NOW + LEASE)]
    )
    await store.ingest(leased)

    taken_over = await claim_one(store, owner="w2", now=NOW + LEASE + 1)
    assert taken_over.id == "call-1:slack"
    assert await store.finish(taken_over.id, "w1", attempt("delivered")) is False


async def test_renewed_lease_keeps_the_delivery(store: Store) -> None:
    await store.ingest(record("call-1"))
    claimed = await claim_one(store, owner="w1")

    await store.renew_leases([claimed.id], "w1", NOW + 100)
    await store.renew_leases([claimed.id], "intruder", NOW + 1000)

    assert await store.claim("slack", 10, "w2", LEASE, NOW + 99) == []
    assert len(await store.claim("slack", 10, "w2", LEASE, NOW + 101)) == 1


# --- finish, defer, kill -----------------------------------------------------------------


async def test_finish_with_a_lost_lease_records_nothing(store: Store) -> None:
    await store.ingest(record("call-1"))
    await claim_one(store, owner="w1")

    assert await store.finish("call-1:slack", "w2", attempt("delivered")) is False
    assert await store.finish("unknown", "w1", attempt("delivered")) is False

    assert await store.list_attempts("call-1:slack") == []
    view = await store.get_delivery("call-1:slack")
    assert view is not None and (view.status, view.attempts) == ("pending", 0)


async def test_retry_then_dead_records_every_attempt(store: Store) -> None:
    await store.ingest(record("call-1"))
    first = await claim_one(store)
    assert await store.finish(
        first.id,
        "w1",
        attempt("retry", NOW, status_code=503, error="HTTP 503", detail="busy"),
        next_attempt_at=NOW + 60,
    )

    view = await store.get_delivery(first.id)
    assert view is not None
    assert (view.status, view.attempts, view.next_attempt_at, view.last_error) == (
        "pending",
        1,
        NOW + 60,
        "HTTP 503",
    )
    assert await store.claim("slack", 10, "w1", LEASE, NOW + 59) == []
    second = await claim_one(store, now=NOW + 60)
    assert (second.attempts, second.retry_attempts) == (1, 1)

    assert await store.finish(
        second.id, "w1", attempt("dead", NOW + 60, 2, status_code=404, error="HTTP 404")
    )
    view = await store.get_delivery(first.id)
    assert view is not None
    assert (view.status, view.attempts, view.next_attempt_at, view.last_error) == (
        "dead",
        2,
        None,
        "HTTP 404",
    )
    assert await store.list_attempts(first.id) == [
        AttemptRecord(1, NOW, 0.25, "retry", 503, "HTTP 503", "busy"),
        AttemptRecord(2, NOW + 60, 0.25, "dead", 404, "HTTP 404", None),
    ]
    assert await store.claim("slack", 10, "w1", LEASE, NOW + 10_000) == []


async def test_delivered_sets_delivered_at_and_leaves_the_queue(store: Store) -> None:
    await store.ingest(record("call-1"))
    claimed = await claim_one(store)

    assert await store.finish(claimed.id, "w1", attempt("delivered", NOW + 1, status_code=200))

    view = await store.get_delivery(claimed.id)
    assert view is not None
    assert (view.status, view.attempts, view.delivered_at) == ("delivered", 1, NOW + 1.25)
    assert await store.claim("slack", 10, "w1", LEASE, NOW + 10_000) == []
    assert [a.outcome for a in await store.list_attempts(claimed.id)] == ["delivered"]


async def test_defer_spends_no_attempt_and_releases_the_lease(store: Store) -> None:
    await store.ingest(record("call-1"))
    claimed = await claim_one(store)

    await store.defer(claimed.id, "w1", NOW + 100)

    view = await store.get_delivery(claimed.id)
    assert view is not None
    assert (view.status, view.attempts, view.next_attempt_at) == ("pending", 0, NOW + 100)
    assert await store.list_attempts(claimed.id) == []
    assert await store.claim("slack", 10, "w2", LEASE, NOW + 99) == []
    again = await claim_one(store, owner="w2", now=NOW + 100)
    assert (again.attempts, again.retry_attempts) == (0, 0)


async def test_defer_by_a_worker_without_the_lease_changes_nothing(store: Store) -> None:
    await store.ingest(record("call-1"))
    await claim_one(store, owner="w1")

    await store.defer("call-1:slack", "w2", NOW + 100)

    view = await store.get_delivery("call-1:slack")
    assert view is not None and view.next_attempt_at == NOW


async def test_waiting_deliveries_past_max_age_die_in_one_statement(store: Store) -> None:
    await store.ingest(record("old", received_at=NOW))
    await store.ingest(record("young", received_at=NOW + 100))
    await store.ingest(record("leased", received_at=NOW))
    await store.ingest(record("other-sink", sinks=("crm",), received_at=NOW))
    leased = await claim_one_of(store, "leased:slack")

    assert await store.oldest_waiting("slack", NOW + 200) == NOW
    assert await store.oldest_waiting("nothing", NOW + 200) is None
    killed = await store.kill_expired_waiting("slack", NOW + 50, "sink not configured", NOW + 200)
    assert killed == 1  # not the young one, not the one under a live lease, not crm's
    views = {v.id: v for v in await store.list_deliveries()}
    assert (views["old:slack"].status, views["old:slack"].attempts) == ("dead", 0)
    assert views["old:slack"].last_error == "sink not configured"
    assert views["young:slack"].status == "pending"
    assert views[leased].status == "pending"
    assert views["other-sink:crm"].status == "pending"
    assert await store.oldest_waiting("slack", NOW + 200) == NOW + 100


async def claim_one_of(store: Store, delivery_id: str) -> str:
    """Claim `slack` deliveries until `delivery_id` is leased; put the others back."""
    claimed = await store.claim("slack", 10, "w1", LEASE, NOW + 200)
    for delivery in claimed:
        if delivery.id != delivery_id:
            await store.defer(delivery.id, "w1", delivery.created_at)
    assert delivery_id in [d.id for d in claimed]
    return delivery_id


async def test_kill_makes_a_pending_delivery_dead_without_an_attempt(store: Store) -> None:
    await store.ingest(record("call-1", sinks=("slack", "crm")))
    await claim_one(store, sink="crm", owner="w1")

    await store.kill("call-1:slack", None, "sink not configured")
    await store.kill("call-1:crm", "w2", "sink removed")  # w1 holds the lease

    slack = await store.get_delivery("call-1:slack")
    crm = await store.get_delivery("call-1:crm")
    assert slack is not None and crm is not None
    assert (slack.status, slack.attempts, slack.last_error) == ("dead", 0, "sink not configured")
    assert crm.status == "pending"

    await store.kill("call-1:crm", "w1", "sink removed")
    crm = await store.get_delivery("call-1:crm")
    assert crm is not None and (crm.status, crm.last_error) == ("dead", "sink removed")


# --- replay ------------------------------------------------------------------------------


async def test_replay_gives_a_fresh_retry_budget(store: Store) -> None:
    await store.ingest(record("call-1"))
    claimed = await claim_one(store)
    await store.finish(claimed.id, "w1", attempt("retry"), next_attempt_at=NOW + 1)
    claimed = await claim_one(store, now=NOW + 1)
    await store.finish(claimed.id, "w1", attempt("dead", NOW + 1, 2, error="HTTP 400"))

    assert await store.replay(claimed.id, NOW + 500) is True

    view = await store.get_delivery(claimed.id)
    assert view is not None
    assert (view.status, view.next_attempt_at) == ("pending", NOW + 500)
    assert await store.claim("slack", 10, "w1", LEASE, NOW + 499) == []
    replayed = await claim_one(store, now=NOW + 500)
    assert (replayed.attempts, replayed.retry_attempts) == (2, 0)
    assert replayed.retry_started_at == NOW + 500
    assert await store.finish(replayed.id, "w1", attempt("delivered", NOW + 500, 3))
    assert [a.number for a in await store.list_attempts(claimed.id)] == [1, 2, 3]


async def test_replay_works_on_delivered_and_refuses_unknown(store: Store) -> None:
    await store.ingest(record("call-1"))
    claimed = await claim_one(store)
    await store.finish(claimed.id, "w1", attempt("delivered"))

    assert await store.replay(claimed.id, NOW + 5) is True
    view = await store.get_delivery(claimed.id)
    assert view is not None and view.status == "pending"
    assert await store.replay("unknown", NOW) is False


async def test_replay_dead_counts_per_sink_and_in_total(store: Store) -> None:
    await store.ingest(record("call-1", sinks=("slack", "crm")))
    await store.ingest(record("call-2", sinks=("slack", "crm")))
    await store.ingest(record("call-3", sinks=("slack",)))
    for delivery_id in ("call-1:slack", "call-2:slack", "call-1:crm"):
        await store.kill(delivery_id, None, "gone")

    assert await store.replay_dead("slack", NOW + 1) == 2
    assert await store.replay_dead(None, NOW + 1) == 1
    assert await store.replay_dead(None, NOW + 1) == 0
    assert {d.status for d in await store.list_deliveries()} == {"pending"}


async def test_new_and_replayed_deliveries_are_announced(store: Store) -> None:
    announcements: list[str] = []
    store.on_new_deliveries(lambda _sinks: announcements.append("new"))

    await store.ingest(record("call-1"))
    await store.ingest(record("call-1"))
    await store.ingest(record("call-2", sinks=()))
    assert len(announcements) == 1

    await store.kill("call-1:slack", None, "gone")
    assert await store.replay_dead(None, NOW) == 1
    assert await store.replay("call-1:slack", NOW) is True
    assert await store.replay_dead(None, NOW) == 0
    assert len(announcements) == 3


# --- listing and monitoring --------------------------------------------------------------


async def test_list_deliveries_filters_and_pages_newest_first(store: Store) -> None:
    for offset in range(4):
        await store.ingest(
            record(f"call-{offset}", sinks=("slack", "crm"), received_at=NOW + offset)
        )
    await store.kill("call-1:crm", None, "gone")

    newest_first = [d.event_id for d in await store.list_deliveries(sink="slack")]
    assert newest_first == ["call-3", "call-2", "call-1", "call-0"]
    assert [d.id for d in await store.list_deliveries(status="dead")] == ["call-1:crm"]
    assert await store.list_deliveries(status="dead", sink="slack") == []
    assert len(await store.list_deliveries(status="pending", sink="crm")) == 3
    page = await store.list_deliveries(sink="slack", limit=2, offset=1)
    assert [d.event_id for d in page] == ["call-2", "call-1"]

    view = await store.get_delivery("call-1:crm")
    assert view is not None
    assert (view.event_id, view.sink, view.rule, view.created_at) == (
        "call-1",
        "crm",
        "all-calls",
        NOW + 1,
    )
    assert await store.get_delivery("unknown") is None


async def test_backlog_pending_sinks_and_next_due(store: Store) -> None:
    await store.ingest(record("call-1", sinks=("slack", "crm"), received_at=NOW))
    await store.ingest(record("call-2", sinks=("slack", "crm"), received_at=NOW + 10))
    await store.ingest(record("call-3", sinks=("email",), received_at=NOW + 20))
    await store.kill("call-1:crm", None, "gone")
    await store.kill("call-2:crm", None, "gone")
    claimed = await claim_one(store, sink="email", now=NOW + 20)
    await store.finish(claimed.id, "w1", attempt("delivered", NOW + 20))
    slack = await store.claim("slack", 1, "w1", LEASE, NOW + 30)
    await store.finish(slack[0].id, "w1", attempt("retry", NOW + 30), next_attempt_at=NOW + 90)

    backlog = await store.backlog()
    assert backlog["slack"] == SinkBacklog(pending=2, dead=0, oldest_pending_created_at=NOW)
    assert backlog["crm"] == SinkBacklog(pending=0, dead=2, oldest_pending_created_at=None)
    assert backlog.get("email", SinkBacklog(0, 0, None)) == SinkBacklog(0, 0, None)
    assert await store.pending_sinks() == {"slack"}
    assert await store.next_due_at("slack") == NOW + 10
    assert await store.next_due_at("crm") is None
    assert await store.next_due_at("unknown") is None


async def test_purge_deletes_only_finished_old_events(store: Store) -> None:
    cutoff = NOW + 100
    await store.ingest(record("old-delivered", sinks=("slack", "crm")))
    await store.ingest(record("old-no-deliveries", sinks=()))
    await store.ingest(record("old-pending", sinks=("slack", "crm")))
    await store.ingest(record("old-dead", sinks=("slack",)))
    await store.ingest(record("new-delivered", sinks=("slack",), received_at=cutoff))
    for sink in ("slack", "crm"):
        for claimed in await store.claim(sink, 10, "w1", LEASE, cutoff):
            if claimed.event_id == "old-pending" and sink == "crm":
                await store.defer(claimed.id, "w1", cutoff + 60)
            elif claimed.event_id == "old-dead":
                await store.finish(claimed.id, "w1", attempt("dead", error="HTTP 410"))
            else:
                await store.finish(claimed.id, "w1", attempt("delivered"))

    assert await store.purge(cutoff) == 2

    remaining = {d.event_id for d in await store.list_deliveries()}
    assert remaining == {"old-pending", "old-dead", "new-delivered"}
    assert await store.get_delivery("old-delivered:slack") is None
    assert await store.list_attempts("old-delivered:slack") == []
    assert len(await store.list_attempts("old-dead:slack")) == 1
    assert await store.purge(cutoff) == 0
    assert await store.ingest(record("old-delivered", sinks=())) == IngestResult("accepted", 0)


async def test_ping_answers_while_open_and_fails_once_closed(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.ping()


async def test_every_store_raises_store_closed_once_closed(store: Store) -> None:
    await store.close()
    for operation in (
        store.ingest(record()),
        store.claim("slack", 1, "w1", LEASE, NOW),
        store.list_deliveries(),
        store.probe_write(),
    ):
        with pytest.raises(StoreClosed):
            await operation


async def test_probe_write_writes_while_open(store: Store) -> None:
    await store.probe_write()
    await store.probe_write()  # the one row is rewritten, not added
    assert await store.list_deliveries() == []
