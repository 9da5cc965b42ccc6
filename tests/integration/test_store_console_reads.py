"""The store's reads for the web console (`list_events`, `get_event`,
`deliveries_of_event`, `sink_counts`, `list_deliveries(rule=…)`), on every store kind
in `conftest.STORE_KINDS`. Times are fixed numbers, never the clock."""

from __future__ import annotations

import json

from router.store import (
    AttemptRecord,
    CallFilters,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    SinkCounts,
    Store,
)

NOW = 1_700_000_000.0


def call(
    event_id: str,
    received_at: float,
    *,
    status: str = "COMPLETED",
    direction: str = "INBOUND",
    agent: str = "agent-a",
    organization: str = "org-1",
    hangup: str = "USER_ENDED",
    deliveries: tuple[NewDelivery, ...] = (),
) -> IngestRecord:
    payload = {"id": event_id, "status": status, "agentId": agent, "summary": "<b>hi</b>"}
    return IngestRecord(
        event_id=event_id,
        payload=json.dumps(payload).encode(),
        received_at=received_at,
        deliveries=deliveries,
        status=status,
        direction=direction,
        agent_id=agent,
        organization_id=organization,
        hangup_cause=hangup,
    )


EVERY_CALL = CallFilters()


async def ids(store: Store, filters: CallFilters = EVERY_CALL, **keyset) -> list[str]:
    return [event.id for event in await store.list_events(filters, **keyset)]


async def test_list_events_newest_first_with_every_filter(store: Store) -> None:
    await store.ingest(call("c1", NOW + 1, status="FAILED", hangup="", agent="agent-b"))
    await store.ingest(call("c2", NOW + 2, direction="OUTBOUND", organization="org-2"))
    await store.ingest(call("c3", NOW + 3, hangup="MAX_DURATION"))

    assert await ids(store) == ["c3", "c2", "c1"]
    assert await ids(store, CallFilters(status="FAILED")) == ["c1"]
    assert await ids(store, CallFilters(direction="OUTBOUND")) == ["c2"]
    assert await ids(store, CallFilters(agent_id="agent-a")) == ["c3", "c2"]
    assert await ids(store, CallFilters(organization_id="org-2")) == ["c2"]
    assert await ids(store, CallFilters(hangup_cause="MAX_DURATION")) == ["c3"]
    assert await ids(store, CallFilters(call_id="c2")) == ["c2"]
    assert await ids(store, CallFilters(received_from=NOW + 2)) == ["c3", "c2"]
    assert await ids(store, CallFilters(received_to=NOW + 2)) == ["c1"]
    both = CallFilters(agent_id="agent-a", direction="INBOUND", received_to=NOW + 10)
    assert await ids(store, both) == ["c3"]
    assert await ids(store, CallFilters(status="NOPE")) == []


async def test_list_events_pages_by_keyset_through_equal_times(store: Store) -> None:
    for name in ("a", "b", "c", "d"):
        await store.ingest(call(name, NOW))  # the same instant: id breaks the tie
    await store.ingest(call("e", NOW - 1))

    first = await store.list_events(CallFilters(), limit=2)
    assert [event.id for event in first] == ["d", "c"]
    cursor = (first[-1].received_at, first[-1].id)
    second = await store.list_events(CallFilters(), before=cursor, limit=2)
    assert [event.id for event in second] == ["b", "a"]
    cursor = (second[-1].received_at, second[-1].id)
    assert await ids(store, before=cursor, limit=2) == ["e"]
    assert await ids(store, CallFilters(agent_id="agent-a"), before=(NOW, "b")) == ["a", "e"]


async def test_get_event_gives_the_body_as_received_and_its_columns(store: Store) -> None:
    record = call("c1", NOW, status="FAILED", direction="OUTBOUND", hangup="VOICEMAIL")
    await store.ingest(record)

    event = await store.get_event("c1")
    assert event is not None
    assert bytes(event.payload) == record.payload
    assert (event.received_at, event.status, event.direction) == (NOW, "FAILED", "OUTBOUND")
    assert (event.agent_id, event.organization_id, event.hangup_cause) == (
        "agent-a",
        "org-1",
        "VOICEMAIL",
    )
    assert await store.get_event("nope") is None


async def test_deliveries_of_event_include_the_digests_it_joined(store: Store) -> None:
    group = GroupJoin('{"trunk":"a"}', 600.0)
    first = (NewDelivery("c1:slack", "slack", "all"), NewDelivery("c1:ops", "ops", "trunk", group))
    await store.ingest(call("c1", NOW, deliveries=first))
    await store.ingest(
        call("c2", NOW + 1, deliveries=(NewDelivery("c2:ops", "ops", "trunk", group),))
    )
    await store.ingest(call("c3", NOW + 2, deliveries=(NewDelivery("c3:slack", "slack", "all"),)))

    assert [d.id for d in await store.deliveries_of_event("c1")] == ["c1:ops", "c1:slack"]
    [joined] = await store.deliveries_of_event("c2")
    assert (joined.id, joined.kind, joined.calls, joined.event_id) == ("c1:ops", "digest", 2, "c1")
    assert [d.id for d in await store.deliveries_of_event("c3")] == ["c3:slack"]
    assert await store.deliveries_of_event("nope") == []


async def test_sink_counts_per_sink(store: Store) -> None:
    for number in range(4):
        deliveries = (NewDelivery(f"c{number}:slack", "slack", "all"),)
        await store.ingest(call(f"c{number}", NOW + number, deliveries=deliveries))
    await store.ingest(call("c9", NOW + 9, deliveries=(NewDelivery("c9:crm", "crm", "all"),)))
    claimed = {d.id for d in await store.claim("slack", 10, "w", 30.0, NOW + 10)}
    assert len(claimed) == 4
    done = AttemptRecord(1, NOW + 10, 0.5, "delivered", 200)
    assert await store.finish("c0:slack", "w", done)
    assert await store.finish("c1:slack", "w", AttemptRecord(1, NOW + 11, 0.5, "dead", 400))
    retry = AttemptRecord(1, NOW + 12, 0.5, "retry", 503, "HTTP 503")
    assert await store.finish("c2:slack", "w", retry, next_attempt_at=NOW + 100)
    await store.defer("c3:slack", "w", NOW + 100)

    counts = await store.sink_counts(NOW + 10)
    assert counts == {
        "slack": SinkCounts(
            pending=2,
            retrying=1,
            dead=1,
            muted=0,
            delivered_since=1,
            oldest_pending_created_at=NOW + 2,
        ),
        "crm": SinkCounts(pending=1, oldest_pending_created_at=NOW + 9),
    }
    later = await store.sink_counts(NOW + 10.6)
    assert later["slack"].delivered_since == 0
    unsettled = await store.sink_counts()  # without a time: nothing delivered is counted
    assert set(unsettled) == {"slack", "crm"}
    assert (unsettled["slack"].pending, unsettled["slack"].delivered_since) == (2, 0)


async def test_list_deliveries_filters_by_rule(store: Store) -> None:
    for number in range(3):
        deliveries = (
            NewDelivery(f"c{number}:slack", "slack", "failed" if number % 2 else "all"),
            NewDelivery(f"c{number}:crm", "crm", "all"),
        )
        await store.ingest(call(f"c{number}", NOW + number, deliveries=deliveries))
    await store.kill("c2:crm", None, "gone")

    by_rule = [d.id for d in await store.list_deliveries(rule="all")]
    assert by_rule == ["c2:slack", "c2:crm", "c1:crm", "c0:slack", "c0:crm"]
    assert [d.id for d in await store.list_deliveries(rule="failed")] == ["c1:slack"]
    assert [d.id for d in await store.list_deliveries(sink="slack", rule="all")] == [
        "c2:slack",
        "c0:slack",
    ]
    assert [d.id for d in await store.list_deliveries("dead", rule="all")] == ["c2:crm"]
    assert [d.id for d in await store.list_deliveries("dead", "crm", rule="all")] == ["c2:crm"]
    assert await store.list_deliveries("dead", "crm", rule="failed") == []
    page = await store.list_deliveries(sink="crm", rule="all", limit=1, offset=1)
    assert [d.id for d in page] == ["c1:crm"]


async def test_a_list_of_calls_leaves_out_bodies_over_the_limit(store: Store) -> None:
    from router.store.queries import LISTED_PAYLOAD_BYTES

    small, large = call("small", NOW), call("large", NOW + 1)
    padding = "x" * LISTED_PAYLOAD_BYTES
    large = IngestRecord("large", json.dumps({"id": "large", "pad": padding}).encode(), NOW + 1, ())
    await store.ingest(small)
    await store.ingest(large)

    listed = {event.id: event.payload for event in await store.list_events(CallFilters())}
    assert listed["large"] is None
    assert bytes(listed["small"]) == small.payload
    whole = await store.get_event("large")
    assert whole is not None and bytes(whole.payload) == large.payload
