"""A store written by the router before the store was unified (schema version 2, commit
2e54fbf) opens with today's code, keeps every row and goes on working: SQLite from the
committed file `tests/fixtures/router-v2.db` (made by `make_router_v2_db.py` with that
commit's code), PostgreSQL from the same rows in a schema made by the version 1 and 2
migrations, which are unchanged since."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from router.store import open_store
from router.store.base import (
    AttemptRecord,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    SilenceRecord,
    SinkPause,
    Store,
)
from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for
from router.store.sqlite import SQLiteStore
from tests.integration.conftest import fresh_postgres_schema

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "router-v2.db"
T = 1_700_000_000.0
TRUNK_A = '{"sipTrunkId":"trunk-a"}'
TABLES = ("schema_version", "events", "deliveries", "attempts", "digest_members")
OLD_REPLICAS_DDL = (  # what the PostgreSQL store of 2e54fbf created outside the migrations
    "CREATE TABLE IF NOT EXISTS replicas (owner TEXT PRIMARY KEY,"
    " last_seen DOUBLE PRECISION NOT NULL)"
)


async def check_upgraded(store: Store) -> None:
    """Every row of the fixture is there, and the store works on it."""
    views = {view.id: view for view in await store.list_deliveries(limit=100)}
    assert {view_id: (v.status, v.attempts, v.kind, v.calls) for view_id, v in views.items()} == {
        "d-pending": ("pending", 0, "single", 1),
        "d-dead": ("dead", 2, "single", 1),
        "d-done": ("delivered", 1, "single", 1),
        "g0:ops": ("pending", 0, "digest", 3),
    }
    assert views["d-dead"].last_error == "HTTP 400"
    assert views["d-done"].delivered_at == T + 8.25
    assert await store.list_attempts("d-dead") == [
        AttemptRecord(1, T + 5, 0.5, "retry", 503, "HTTP 503", None),
        AttemptRecord(2, T + 7, 0.5, "dead", 400, "HTTP 400", "bad"),
    ]
    members = [json.loads(p)["id"] for p in await store.digest_calls("g0:ops")]
    assert members == ["g0", "g1", "g2"]
    assert await store.open_groups(T + 20) == {"ops": 1}

    # A new call joins the digest the old code opened.
    joining = IngestRecord(
        "g3",
        b'{"id": "g3"}',
        T + 30,
        [NewDelivery("g3:ops", "ops", "trunk-outage", GroupJoin(TRUNK_A, 600.0))],
    )
    assert (await store.ingest(joining)).deliveries == 1
    assert (await store.get_delivery("g0:ops")).calls == 4

    [claimed] = await store.claim("slack", 10, "new-worker", 30.0, T + 40)
    assert (claimed.id, claimed.payload) == (
        "d-pending",
        b'{"id": "e-pending", "status": "FAILED"}',
    )
    assert await store.finish(
        claimed.id, "new-worker", AttemptRecord(1, T + 41, 0.1, "delivered", 200)
    )

    assert await store.replay("d-dead", T + 50)
    [replayed] = await store.claim("crm", 10, "new-worker", 30.0, T + 50)
    assert (replayed.id, replayed.attempts, replayed.retry_attempts) == ("d-dead", 2, 0)
    assert await store.finish(
        replayed.id, "new-worker", AttemptRecord(3, T + 51, 0.1, "delivered", 200)
    )
    assert [a.number for a in await store.list_attempts("d-dead")] == [1, 2, 3]

    [digest] = await store.claim("ops", 10, "new-worker", 30.0, T + 10 + 600)
    assert (digest.id, digest.kind, digest.group_key) == ("g0:ops", "digest", TRUNK_A)
    await store.probe_write()
    await check_muting_works(store)


async def check_muting_works(store: Store) -> None:
    """Schema 4 on an upgraded database: the status 'muted', silences and pauses."""
    muted = IngestRecord(
        "m1", b'{"id": "m1"}', T + 60, [NewDelivery("m1:slack", "slack", "r", muted_reason="x")]
    )
    assert (await store.ingest(muted)).deliveries == 1
    view = await store.get_delivery("m1:slack")
    assert view is not None and (view.status, view.muted_reason) == ("muted", "x")
    await store.add_silence(SilenceRecord("s1", "{}", None, T, T + 60, "", T))
    assert [s.id for s in await store.list_silences()] == ["s1"]
    await store.pause_sink(SinkPause("crm", T + 60, "", T))
    assert [p.sink for p in await store.sink_pauses(T)] == ["crm"]


async def test_a_sqlite_store_of_schema_3_upgrades_in_place(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        old.execute(SCHEMA_VERSION_DDL)
        for migration in MIGRATIONS[:3]:
            for statement in statements_for(migration, "sqlite"):
                old.execute(statement)
            old.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, T),
            )
        old.execute("INSERT INTO events (id, payload, received_at) VALUES ('e', x'7b7d', ?)", (T,))
        old.execute(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " created_at, updated_at) VALUES ('d', 'e', 'crm', 'r', 'dead', ?, ?, ?)",
            (T, T, T),
        )
    old.close()

    store = SQLiteStore(database)
    await store.open()
    try:
        assert [(v.id, v.status) for v in await store.list_deliveries()] == [("d", "dead")]
        await check_muting_works(store)
        assert await store.replay("d", T + 1)
    finally:
        await store.close()
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            upgraded.execute("UPDATE deliveries SET status = 'lost'")
    upgraded.close()


async def test_a_sqlite_store_written_by_the_old_code_upgrades_in_place(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE, database)
    with sqlite3.connect(database) as old:
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (2,)
    old.close()

    store = SQLiteStore(database)
    await store.open()
    try:
        await check_upgraded(store)
    finally:
        await store.close()

    with sqlite3.connect(database) as upgraded:
        versions = [v for (v,) in upgraded.execute("SELECT version FROM schema_version")]
    upgraded.close()
    assert versions == [m.version for m in MIGRATIONS]


@pytest.mark.postgres
async def test_a_postgresql_store_with_the_old_schema_upgrades_in_place() -> None:
    import asyncpg

    async with fresh_postgres_schema("upgrade") as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(SCHEMA_VERSION_DDL)
            for migration in MIGRATIONS[:2]:
                for statement in statements_for(migration, "postgresql"):
                    await connection.execute(statement)
            await connection.execute(OLD_REPLICAS_DDL)
            await connection.execute("INSERT INTO replicas VALUES ('old-engine', $1)", T)
            await copy_fixture_rows(connection)
        finally:
            await connection.close()

        store = open_store(url)
        await store.open()
        try:
            await check_upgraded(store)
            assert await store.live_workers("new-engine", T + 1) == 2, "old heartbeats kept"
        finally:
            await store.close()


async def copy_fixture_rows(connection) -> None:
    source = sqlite3.connect(FIXTURE)
    try:
        for table in TABLES:
            cursor = source.execute(f"SELECT * FROM {table}")
            names = [column[0] for column in cursor.description]
            placeholders = ", ".join(f"${n}" for n in range(1, len(names) + 1))
            await connection.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})",
                cursor.fetchall(),
            )
    finally:
        source.close()
