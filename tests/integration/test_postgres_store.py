"""What only a shared PostgreSQL store must do: several replicas (here, several store
objects, each with its own pool) on one database. Each test runs in its own schema."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from router.store import (
    AttemptRecord,
    GroupJoin,
    IngestRecord,
    IngestResult,
    NewDelivery,
    StoreUnavailable,
    open_store,
)
from router.store.base import WORKER_LIVE_SECONDS
from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for
from tests.integration.conftest import _postgres_url, fresh_postgres_schema

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
LEASE = 30.0
WAIT = 10.0  # an upper bound for things that should happen at once, never a measurement

Replica = Callable[[], Awaitable[Any]]


def record(event_id: str | None = None, sinks: tuple[str, ...] = ("crm",)) -> IngestRecord:
    event_id = event_id or str(uuid.uuid4())
    return IngestRecord(
        event_id=event_id,
        payload=b'{"id": "%s"}' % event_id.encode(),
        received_at=NOW,
        deliveries=[NewDelivery(f"{event_id}:{sink}", sink, "all") for sink in sinks],
    )


def delivered() -> AttemptRecord:
    return AttemptRecord(1, NOW, 0.1, "delivered", 200)


@pytest.fixture
async def schema_url() -> AsyncIterator[str]:
    """A URL whose connections live in a new, empty schema (dropped afterwards)."""
    async with fresh_postgres_schema("test") as url:
        yield url


@pytest.fixture
async def replica(schema_url: str) -> AsyncIterator[Replica]:
    """Opens one more store on the test's schema: another replica."""
    opened = []

    async def open_replica():
        store = open_store(schema_url)
        await store.open()
        opened.append(store)
        return store

    yield open_replica
    for store in opened:
        await store.close()


async def test_concurrent_claims_from_two_replicas_never_share_a_delivery(replica) -> None:
    a, b = await replica(), await replica()
    for _ in range(4):
        await asyncio.gather(*(a.ingest(record()) for _ in range(50)))

    async def drain(store, owner: str) -> list[str]:
        taken: list[str] = []
        while claimed := await store.claim("crm", 7, owner, LEASE, NOW):
            taken += [delivery.id for delivery in claimed]
        return taken

    results = await asyncio.gather(drain(a, "a1"), drain(a, "a2"), drain(b, "b1"), drain(b, "b2"))
    everything = [delivery_id for taken in results for delivery_id in taken]
    assert len(everything) == len(set(everything)) == 200
    assert all(results), "every worker should have won some claims"


async def test_the_same_call_ingested_on_two_replicas_is_accepted_once(replica) -> None:
    a, b = await replica(), await replica()
    copies = [record("call-1", sinks=("crm", "slack")) for _ in range(10)]
    results = await asyncio.gather(
        *(store.ingest(copy) for store, copy in zip([a, b] * 5, copies, strict=True))
    )
    assert sorted(r.status for r in results) == ["accepted"] + ["duplicate"] * 9
    assert IngestResult("accepted", 2) in results
    assert len(await b.list_deliveries()) == 2


async def test_an_ingest_on_one_replica_wakes_the_other(replica) -> None:
    a, b = await replica(), await replica()
    woken = asyncio.Event()
    b.on_new_deliveries(lambda _sinks: woken.set())
    await a.ingest(record())
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_a_replay_on_one_replica_wakes_the_other(replica) -> None:
    a, b = await replica(), await replica()
    await a.ingest(record("call-1"))
    (claimed,) = await a.claim("crm", 1, "a", LEASE, NOW)
    assert await a.finish(claimed.id, "a", delivered())
    woken = asyncio.Event()
    b.on_new_deliveries(lambda _sinks: woken.set())
    assert await a.replay(claimed.id, NOW + 1)
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_an_expired_lease_is_taken_over_by_another_replica(replica) -> None:
    a, b = await replica(), await replica()
    await a.ingest(record("call-1"))
    assert [d.id for d in await a.claim("crm", 5, "a", LEASE, NOW)] == ["call-1:crm"]

    assert await b.claim("crm", 5, "b", LEASE, NOW + LEASE - 1) == []
    assert await b.next_due_at("crm") == NOW + LEASE
    (taken,) = await b.claim("crm", 5, "b", LEASE, NOW + LEASE + 1)
    assert taken.id == "call-1:crm"

    assert not await a.finish("call-1:crm", "a", delivered()), "a lost its lease"
    assert await b.finish("call-1:crm", "b", delivered())
    assert [x.number for x in await a.list_attempts("call-1:crm")] == [1]


async def test_opening_a_replica_keeps_the_others_leases(replica) -> None:
    a = await replica()
    await a.ingest(record("call-1"))
    assert len(await a.claim("crm", 5, "a", LEASE, NOW)) == 1
    b = await replica()
    assert await b.claim("crm", 5, "b", LEASE, NOW + 1) == []


async def test_replicas_starting_together_migrate_once(replica, schema_url: str) -> None:
    import asyncpg

    await asyncio.gather(*(replica() for _ in range(4)))
    connection = await asyncpg.connect(schema_url)
    try:
        versions = [r[0] for r in await connection.fetch("SELECT version FROM schema_version")]
        payload_type = await connection.fetchval(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'events'"
            " AND column_name = 'payload'"
        )
    finally:
        await connection.close()
    assert versions == [migration.version for migration in MIGRATIONS]
    assert payload_type == "bytea"


async def test_concurrent_ingests_share_transactions(replica) -> None:
    store = await replica()
    results = await asyncio.gather(*(store.ingest(record()) for _ in range(60)))
    assert all(r == IngestResult("accepted", 1) for r in results)
    counts = store.connector.counts
    assert counts.committed_operations == 60
    assert counts.commits < 60
    assert counts.largest_batch > 1


async def test_one_failing_ingest_does_not_fail_its_batch(replica) -> None:
    store = await replica()
    await store.ingest(record("call-0"))
    clash = IngestRecord(  # its delivery id is taken: a primary-key violation
        "call-bad", b"{}", NOW, [NewDelivery("call-0:crm", "slack", "all")]
    )
    others = [record(f"call-{n}") for n in range(1, 6)]
    results = await asyncio.gather(
        store.ingest(clash), *(store.ingest(r) for r in others), return_exceptions=True
    )
    assert isinstance(results[0], Exception)
    assert results[1:] == [IngestResult("accepted", 1)] * 5
    assert await store.get_delivery("call-1:crm") is not None
    # The failed call left nothing behind, so a retry of it is not a duplicate.
    fixed = IngestRecord("call-bad", b"{}", NOW, [NewDelivery("call-bad:slack", "slack", "all")])
    assert await store.ingest(fixed) == IngestResult("accepted", 1)


async def test_the_listener_reconnects_after_its_connection_is_killed(replica) -> None:
    import asyncpg

    from router.store.postgres import LISTENER_APPLICATION_NAME

    a, b = await replica(), await replica()
    woken = asyncio.Event()
    b.on_new_deliveries(lambda _sinks: woken.set())
    assert b.listening
    admin = await asyncpg.connect(_postgres_url())
    try:
        killed = await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            LISTENER_APPLICATION_NAME,
        )
    finally:
        await admin.close()
    assert killed >= 2

    async def listening_again() -> None:
        while not b.listening:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(listening_again(), WAIT)
    woken.clear()  # reconnecting announces (it may have missed something): not the test
    await a.ingest(record())
    await asyncio.wait_for(woken.wait(), WAIT)
    assert await b.list_deliveries(), "the pool kept working throughout"


async def test_live_workers_counts_recent_heartbeats(replica) -> None:
    a, b = await replica(), await replica()
    assert await a.live_workers("engine-a", NOW) == 1
    assert await b.live_workers("engine-b", NOW + 1) == 2
    assert await a.live_workers("engine-a", NOW + 2) == 2
    # engine-b stops beating; after the live window only engine-a counts.
    assert await a.live_workers("engine-a", NOW + 1 + WORKER_LIVE_SECONDS + 1) == 1
    assert await b.live_workers("engine-b", NOW + WORKER_LIVE_SECONDS + 3) == 2
    await b.retire_worker("engine-b")
    assert await a.live_workers("engine-a", NOW + WORKER_LIVE_SECONDS + 4) == 1


async def test_postgres_scheme_and_repr_without_secrets() -> None:
    from router.store.postgres import PostgresStore

    store = open_store("postgres://router:s3cret-pw@db.internal:5433/router")
    assert isinstance(store, PostgresStore)
    assert "s3cret-pw" not in repr(store)
    assert "db.internal:5433/router" in repr(store)


async def test_a_closed_store_refuses_work(replica) -> None:
    from router.store import StoreClosed

    store = await replica()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.ingest(record())
    with pytest.raises(StoreClosed):
        await store.claim("crm", 1, "a", LEASE, NOW)


# --- digests across replicas ---------------------------------------------------------

TRUNK_A = '{"sipTrunkId":"trunk-a"}'
TRUNK_B = '{"sipTrunkId":"trunk-b"}'
SMALL_BATCH = 8  # many transactions per replica, so the replicas' batches interleave


def grouped(key: str = TRUNK_A, max_calls: int | None = None) -> IngestRecord:
    event_id = str(uuid.uuid4())
    join = GroupJoin(key, 60.0, max_calls)
    return IngestRecord(
        event_id=event_id,
        payload=b'{"id": "%s"}' % event_id.encode(),
        received_at=NOW,
        deliveries=[NewDelivery(f"{event_id}:ops", "ops", "trunk-outage", join)],
    )


@pytest.fixture
async def small_batch_replica(schema_url: str) -> AsyncIterator[Replica]:
    """Like `replica`, with small group-commit batches."""
    from router.store.postgres import PostgresStore

    opened = []

    async def open_replica():
        store = PostgresStore(schema_url, max_batch=SMALL_BATCH)
        await store.open()
        opened.append(store)
        return store

    yield open_replica
    for store in opened:
        await store.close()


async def ingest_on_both(a, b, records: list[IngestRecord]) -> None:
    results = await asyncio.gather(
        *(store.ingest(r) for store, r in zip([a, b] * len(records), records, strict=False))
    )
    assert results == [IngestResult("accepted", 1)] * len(records)


def ids_of(payloads: list[bytes]) -> list[str]:
    return [json.loads(payload)["id"] for payload in payloads]


async def digests_by_size(store) -> list[list[str]]:
    """Each digest's member call ids in join order, digests in creation order."""
    views = sorted(await store.list_deliveries(limit=1000), key=lambda v: (v.created_at, v.id))
    assert all(view.kind == "digest" for view in views)
    members = []
    for view in views:
        calls = ids_of(await store.digest_calls(view.id))
        assert view.calls == len(calls)
        members.append(calls)
    return members


async def test_two_replicas_gathering_one_group_make_one_digest(small_batch_replica) -> None:
    a, b = await small_batch_replica(), await small_batch_replica()
    records = [grouped() for _ in range(200)]
    await ingest_on_both(a, b, records)

    [members] = await digests_by_size(b)
    assert sorted(members) == sorted(r.event_id for r in records)
    assert await a.open_groups(NOW) == {"ops": 1}
    [claimed] = await a.claim("ops", 10, "w", LEASE, NOW + 60)
    assert (claimed.kind, claimed.group_key, claimed.window_end) == ("digest", TRUNK_A, NOW + 60)


async def test_two_replicas_filling_digests_to_max_make_full_digests(small_batch_replica) -> None:
    a, b = await small_batch_replica(), await small_batch_replica()
    records = [grouped(max_calls=50) for _ in range(200)]
    await ingest_on_both(a, b, records)

    digests = await digests_by_size(a)
    assert [len(members) for members in digests] == [50, 50, 50, 50]
    assert sorted(m for members in digests for m in members) == sorted(r.event_id for r in records)
    assert await a.open_groups(NOW) == {}
    assert len(await b.claim("ops", 10, "w", LEASE, NOW)) == 4, "a full digest is due at once"


async def test_two_groups_joined_in_crossing_order_on_two_replicas(small_batch_replica) -> None:
    """Each replica's batches reach the two groups in both orders (call ids are random):
    without one lock order for groups, two batches could each hold one digest and wait
    for the other's."""
    a, b = await small_batch_replica(), await small_batch_replica()
    records = [grouped(TRUNK_A if n % 4 < 2 else TRUNK_B) for n in range(200)]
    await ingest_on_both(a, b, records)

    claimed = await a.claim("ops", 10, "w", LEASE, NOW + 60)
    by_key = {c.group_key: sorted(ids_of(await a.digest_calls(c.id))) for c in claimed}
    assert by_key == {
        TRUNK_A: sorted(r.event_id for n, r in enumerate(records) if n % 4 < 2),
        TRUNK_B: sorted(r.event_id for n, r in enumerate(records) if n % 4 >= 2),
    }


async def test_an_ingest_that_loses_the_race_to_open_joins_the_winner(
    schema_url: str, replica
) -> None:
    """Another writer opens the group after our join found nothing: our insert waits for
    it, conflicts on the open group, and the call joins the digest that won."""
    import asyncpg

    store = await replica()
    rival = await asyncpg.connect(schema_url)
    try:
        rival_transaction = rival.transaction()
        await rival_transaction.start()
        await rival.execute(
            "INSERT INTO events (id, payload, received_at) VALUES ('first', $1, $2)",
            b'{"id": "first"}',
            NOW,
        )
        await rival.execute(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " next_attempt_at, created_at, updated_at, kind, group_key, open_group,"
            " window_start, closes_at, member_count) VALUES ('first:ops', 'first', 'ops',"
            " 'trunk-outage', 'pending', $1, $2, $1, $1, 'digest', $3, $3, $1, $2, 1)",
            NOW,
            NOW + 60,
            TRUNK_A,
        )
        await rival.execute(
            "INSERT INTO digest_members VALUES ('first:ops', 'first', 0)",
        )
        second = grouped()
        joining = asyncio.create_task(store.ingest(second))
        while not await waiting_for_a_lock(rival):
            assert not joining.done(), await joining
            await asyncio.sleep(0.01)
        await rival_transaction.commit()
        assert await asyncio.wait_for(joining, WAIT) == IngestResult("accepted", 1)
    finally:
        await rival.close()
    assert ids_of(await store.digest_calls("first:ops")) == ["first", second.event_id]
    assert [view.calls for view in await store.list_deliveries()] == [2]


async def waiting_for_a_lock(connection) -> bool:
    """Whether another session waits for a lock this connection holds."""
    return await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
        " WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid)))"
    )


async def test_a_version_1_schema_migrates_and_keeps_its_deliveries(
    schema_url: str, replica
) -> None:
    import asyncpg

    connection = await asyncpg.connect(schema_url)
    try:
        await connection.execute(SCHEMA_VERSION_DDL)
        for statement in statements_for(MIGRATIONS[0], "postgresql"):
            await connection.execute(statement)
        await connection.execute("INSERT INTO schema_version VALUES (1, 'v1', 0)")
        await connection.execute(
            "INSERT INTO events (id, payload, received_at) VALUES ('e1', '{}', $1)", NOW
        )
        await connection.execute(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " next_attempt_at, created_at, updated_at)"
            " VALUES ('d1', 'e1', 'ops', 'r', 'pending', $1, $1, $1, $1)",
            NOW,
        )
    finally:
        await connection.close()

    store = await replica()
    [claimed] = await store.claim("ops", 10, "w", LEASE, NOW)
    assert (claimed.id, claimed.kind, claimed.group_key, claimed.window_start) == (
        "d1",
        "single",
        None,
        None,
    )
    call = grouped()
    assert await store.ingest(call) == IngestResult("accepted", 1)
    views = {view.id: (view.kind, view.calls) for view in await store.list_deliveries()}
    assert views == {"d1": ("single", 1), f"{call.event_id}:ops": ("digest", 1)}
    connection = await asyncpg.connect(schema_url)
    try:
        versions = [r[0] for r in await connection.fetch("SELECT version FROM schema_version")]
    finally:
        await connection.close()
    assert sorted(versions) == [migration.version for migration in MIGRATIONS]


async def test_a_frozen_server_fails_the_caller_within_command_timeout(schema_url: str) -> None:
    """A statement the server never answers (here: a table locked by another session)
    fails with StoreUnavailable after `command_timeout`, instead of hanging the caller."""
    import asyncpg

    store = open_store(f"{schema_url}&command_timeout=0.5")
    await store.open()
    blocker = await asyncpg.connect(schema_url)
    try:
        freeze = blocker.transaction()
        await freeze.start()
        await blocker.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.5 s"):
            await asyncio.wait_for(store.list_deliveries(), WAIT)
        await freeze.rollback()
        assert await store.list_deliveries() == []
    finally:
        await blocker.close()
        await store.close()


def test_the_default_command_timeout_is_five_seconds() -> None:
    from router.store.postgres import PostgresStore

    assert PostgresStore("postgresql://db/router").connector.command_timeout == 5.0
    with pytest.raises(ValueError, match="command_timeout"):
        PostgresStore("postgresql://db/router?command_timeout=soon")


async def test_the_purge_may_outlast_the_statement_deadline(schema_url: str) -> None:
    """The retention purge on a big database takes longer than a hot-path statement may:
    it waits (here: behind a lock held for a second) instead of failing every hour."""
    import asyncpg

    store = open_store(f"{schema_url}&command_timeout=0.2")
    await store.open()
    blocker = await asyncpg.connect(schema_url)
    try:
        hold = blocker.transaction()
        await hold.start()
        await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        purge = asyncio.create_task(store.purge(NOW))
        await asyncio.sleep(1.0)
        await hold.rollback()
        assert await asyncio.wait_for(purge, WAIT) == 0
    finally:
        await blocker.close()
        await store.close()


async def test_a_replica_waits_for_another_replicas_migration(schema_url: str) -> None:
    """Replicas starting together queue on the migration lock, however long the first
    one's migration takes, instead of failing to start after the statement deadline."""
    import asyncpg

    from router.store.postgres import MIGRATION_LOCK_KEY

    blocker = await asyncpg.connect(schema_url)
    store = open_store(f"{schema_url}&command_timeout=0.2")
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        opening = asyncio.create_task(store.open())
        await asyncio.sleep(1.0)
        await blocker.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await asyncio.wait_for(opening, WAIT)
        assert await store.list_deliveries() == []
    finally:
        await blocker.close()
        await store.close()
