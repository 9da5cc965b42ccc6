"""What only a shared PostgreSQL store must do: several replicas (here, several store
objects, each with its own pool) on one database. Each test runs in its own schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest

from router.store.base import (
    WORKER_LIVE_SECONDS,
    AttemptRecord,
    IngestRecord,
    IngestResult,
    NewDelivery,
    open_store,
)
from tests.integration.conftest import _postgres_url, _unavailable

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
    import asyncpg

    base = _postgres_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(base)
    except (OSError, asyncpg.PostgresError) as error:
        _unavailable(f"PostgreSQL at ROUTER_TEST_POSTGRES_URL is unreachable: {error}")
    await admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


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
    b.on_new_deliveries(woken.set)
    await a.ingest(record())
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_a_replay_on_one_replica_wakes_the_other(replica) -> None:
    a, b = await replica(), await replica()
    await a.ingest(record("call-1"))
    (claimed,) = await a.claim("crm", 1, "a", LEASE, NOW)
    assert await a.finish(claimed.id, "a", delivered())
    woken = asyncio.Event()
    b.on_new_deliveries(woken.set)
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
    from router.store.migrations import LATEST_VERSION

    assert versions == list(range(1, LATEST_VERSION + 1))
    assert payload_type == "bytea"


async def test_concurrent_ingests_share_transactions(replica) -> None:
    store = await replica()
    results = await asyncio.gather(*(store.ingest(record()) for _ in range(60)))
    assert all(r == IngestResult("accepted", 1) for r in results)
    assert store.committed_operations == 60
    assert store.commits < 60
    assert store.largest_batch > 1


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
    b.on_new_deliveries(woken.set)
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
    from router.store.postgres import StoreClosedError

    store = await replica()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.ingest(record())
    with pytest.raises(StoreClosedError):
        await store.claim("crm", 1, "a", LEASE, NOW)
