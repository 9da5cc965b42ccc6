"""Digests in the store: joins inside `ingest`, early close at `max`, claims, purge,
and the migration from a version 1 database. Runs on every store kind."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from router.store import AttemptRecord, GroupJoin, IngestRecord, NewDelivery, Store
from router.store import queries as q
from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for
from router.store.queue import single
from router.store.sqlite import SQLiteStore
from tests.integration.conftest import StoreFactory

T0 = 1_700_000_000.0
TRUNK_A = json.dumps({"sipTrunkId": "trunk-a"}, separators=(",", ":"))
TRUNK_B = json.dumps({"sipTrunkId": "trunk-b"}, separators=(",", ":"))


def call(
    at: float,
    *,
    key: str = TRUNK_A,
    window: float = 60.0,
    max_calls: int | None = None,
    extra: tuple[NewDelivery, ...] = (),
) -> IngestRecord:
    event_id = str(uuid.uuid4())
    payload = json.dumps({"id": event_id, "status": "FAILED"}).encode()
    grouped = NewDelivery(
        uuid.uuid4().hex, "ops", "trunk-outage", GroupJoin(key, window, max_calls)
    )
    return IngestRecord(event_id, payload, at, [grouped, *extra], "FAILED", "OUTBOUND")


def ids_of(payloads: list[bytes]) -> list[str]:
    return [json.loads(payload)["id"] for payload in payloads]


async def ingest_all(store: Store, records: list[IngestRecord]) -> None:
    for record in records:
        result = await store.ingest(record)
        assert (result.status, result.deliveries) == ("accepted", len(record.deliveries))


async def test_calls_of_one_key_share_one_digest_due_when_the_window_closes(store: Store) -> None:
    records = [call(T0 + i) for i in range(3)]
    await ingest_all(store, records)

    [digest] = await store.list_deliveries()
    assert (digest.event_id, digest.status, digest.next_attempt_at) == (
        records[0].event_id,
        "pending",
        T0 + 60,
    )
    assert await store.claim("ops", 10, "w", 30, T0 + 59) == []
    assert await store.open_groups(T0 + 10) == {"ops": 1}

    [claimed] = await store.claim("ops", 10, "w", 30, T0 + 60)
    assert claimed.kind == "digest"
    assert json.loads(claimed.group_key or "") == {"sipTrunkId": "trunk-a"}
    assert (claimed.window_start, claimed.window_end) == (T0, T0 + 60)
    assert ids_of(await store.digest_calls(claimed.id)) == [r.event_id for r in records]


async def test_two_keys_make_two_digests(store: Store) -> None:
    records = [call(T0, key=TRUNK_A), call(T0 + 1, key=TRUNK_B), call(T0 + 2, key=TRUNK_A)]
    await ingest_all(store, records)
    claimed = await store.claim("ops", 10, "w", 30, T0 + 100)
    by_key = {c.group_key: ids_of(await store.digest_calls(c.id)) for c in claimed}
    assert by_key == {
        TRUNK_A: [records[0].event_id, records[2].event_id],
        TRUNK_B: [records[1].event_id],
    }


async def test_reaching_max_sends_early_and_the_next_call_opens_a_new_digest(
    store: Store,
) -> None:
    records = [call(T0 + i, max_calls=2) for i in range(5)]
    await ingest_all(store, records)

    early = await store.claim("ops", 10, "w", 1000, T0 + 4)
    assert [ids_of(await store.digest_calls(c.id)) for c in early] == [
        [records[0].event_id, records[1].event_id],
        [records[2].event_id, records[3].event_id],
    ]
    assert [c.window_end for c in early] == [T0 + 1, T0 + 3]
    assert await store.open_groups(T0 + 4) == {"ops": 1}
    [last] = await store.claim("ops", 10, "w", 30, T0 + 4 + 60)
    assert ids_of(await store.digest_calls(last.id)) == [records[4].event_id]


async def test_a_window_over_but_not_yet_claimed_takes_no_more_calls(store: Store) -> None:
    first, late = call(T0, window=10), call(T0 + 11, window=10)
    await ingest_all(store, [first, late])
    claimed = await store.claim("ops", 10, "w", 30, T0 + 100)
    calls = [ids_of(await store.digest_calls(c.id)) for c in claimed]
    assert sorted(calls) == sorted([[first.event_id], [late.event_id]])


async def test_a_claimed_digest_is_closed_even_if_given_back(store: Store) -> None:
    await ingest_all(store, [call(T0, window=10)])
    [claimed] = await store.claim("ops", 10, "w", 30, T0 + 10)
    await store.defer(claimed.id, "w", T0 + 10)
    later = call(T0 + 10.5, window=10)  # inside no window: the first one closed at its claim
    await ingest_all(store, [later])
    views = await store.list_deliveries()
    assert len(views) == 2
    assert await store.digest_calls(claimed.id) != await store.digest_calls(views[0].id)


async def test_a_grouped_and_a_single_delivery_of_one_event(store: Store) -> None:
    single = NewDelivery(uuid.uuid4().hex, "crm", "all-calls")
    record = call(T0, extra=(single,))
    await ingest_all(store, [record])
    [now_due] = await store.claim("crm", 10, "w", 30, T0)
    assert (now_due.kind, now_due.window_start) == ("single", None)
    assert await store.digest_calls(now_due.id) == []
    assert await store.claim("ops", 10, "w", 30, T0) == []


async def test_a_duplicate_joins_nothing(store: Store) -> None:
    record = call(T0)
    await ingest_all(store, [record])
    again = await store.ingest(record)
    assert (again.status, again.deliveries) == ("duplicate", 0)
    [claimed] = await store.claim("ops", 10, "w", 30, T0 + 60)
    assert len(await store.digest_calls(claimed.id)) == 1


async def test_members_of_an_undelivered_digest_are_not_purged(store: Store) -> None:
    records = [call(T0 + i) for i in range(3)]
    await ingest_all(store, records)
    assert await store.purge(T0 + 1000) == 0
    [claimed] = await store.claim("ops", 10, "w", 30, T0 + 60)
    await store.finish(claimed.id, "w", AttemptRecord(1, T0 + 60, 0.1, "delivered"))
    assert await store.purge(T0 + 1000) == 3
    assert await store.list_deliveries() == []


async def test_a_reopened_store_keeps_the_open_digest(store_factory: StoreFactory) -> None:
    first = await store_factory()
    before = [call(T0 + i) for i in range(2)]
    await ingest_all(first, before)
    await first.close()
    second = await store_factory()
    after = call(T0 + 5)
    await ingest_all(second, [after])
    [claimed] = await second.claim("ops", 10, "w", 30, T0 + 60)
    assert ids_of(await second.digest_calls(claimed.id)) == [
        *(r.event_id for r in before),
        after.event_id,
    ]


async def test_a_version_1_database_migrates_and_keeps_its_deliveries(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    connection = sqlite3.connect(database)
    connection.execute(SCHEMA_VERSION_DDL)
    for statement in statements_for(MIGRATIONS[0], "sqlite"):
        connection.execute(statement)
    connection.execute("INSERT INTO schema_version VALUES (1, 'v1', 0)")
    connection.execute(
        "INSERT INTO events (id, payload, received_at) VALUES ('e1', '{}', ?)", (T0,)
    )
    connection.execute(
        "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
        " next_attempt_at, created_at, updated_at) VALUES ('d1', 'e1', 'ops', 'r', 'pending',"
        " ?, ?, ?, ?)",
        (T0, T0, T0, T0),
    )
    connection.commit()
    connection.close()

    store = SQLiteStore(database)
    await store.open()
    try:
        [claimed] = await store.claim("ops", 10, "w", 30, T0)
        assert (claimed.id, claimed.kind, claimed.group_key) == ("d1", "single", None)
        await ingest_all(store, [call(T0)])
    finally:
        await store.close()


async def test_views_show_the_kind_and_how_many_calls(store: Store) -> None:
    single = NewDelivery(uuid.uuid4().hex, "crm", "all-calls")
    records = [call(T0, extra=(single,)), call(T0 + 1), call(T0 + 2)]
    await ingest_all(store, records)
    views = {view.sink: (view.kind, view.calls) for view in await store.list_deliveries()}
    assert views == {"ops": ("digest", 3), "crm": ("single", 1)}
    fetched = await store.get_delivery(single.id)
    assert fetched is not None and (fetched.kind, fetched.calls) == ("single", 1)


async def test_letting_go_of_a_stale_group_spares_a_digest_that_can_still_take_the_call(
    store: Store,
) -> None:
    """The one statement that frees a group key before a new digest opens re-checks the
    join condition: a digest another writer opened meanwhile, which can take the call,
    stays open (PostgreSQL's behaviour; SQLite used to free the key unconditionally)."""
    await ingest_all(store, [call(T0, max_calls=3)])
    [digest] = await store.list_deliveries()
    where = {"rule": "trunk-outage", "sink": "ops", "key": TRUNK_A}

    async def let_go(now: float, max_calls: int | None) -> int:
        return await store.connector.write(
            lambda: single(q.CLOSE_STALE_GROUP, **where, now=now, max=max_calls)
        )

    assert await let_go(T0 + 30, 3) == 0, "within its window, with room: it stays open"
    assert await store.open_groups(T0 + 30) == {"ops": 1}
    assert await let_go(T0 + 30, 1) == 1, "full for this call's max: it lets go of the key"
    assert await store.open_groups(T0 + 30) == {}
    assert (await store.get_delivery(digest.id)).next_attempt_at == T0 + 60, "still due"


async def test_a_stale_digest_keeps_its_calls_and_a_new_one_opens(store: Store) -> None:
    first = [call(T0), call(T0 + 1)]
    late = call(T0 + 61)
    await ingest_all(store, [*first, late])

    digests = sorted(await store.list_deliveries(), key=lambda view: view.created_at)
    assert [(view.calls, view.next_attempt_at) for view in digests] == [(2, T0 + 60), (1, T0 + 121)]
    assert ids_of(await store.digest_calls(digests[0].id)) == [r.event_id for r in first]
    assert await store.open_groups(T0 + 61) == {"ops": 1}
