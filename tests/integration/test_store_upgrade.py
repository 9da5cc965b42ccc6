"""A store written by the router before the store was unified (schema version 2, commit
2e54fbf) opens with today's code, keeps every row and goes on working: SQLite from the
committed file `tests/fixtures/router-v2.db` (made by `make_router_v2_db.py` with that
commit's code), PostgreSQL from the same rows in a schema made by the version 1 and 2
migrations, which are unchanged since."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from router.store import (
    AttemptRecord,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    SilenceRecord,
    SinkPause,
    Store,
    open_store,
    queries,
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

    async with opened(SQLiteStore(database)) as store:
        await check_upgraded(store)

    with sqlite3.connect(database) as upgraded:
        versions = [v for (v,) in upgraded.execute("SELECT version FROM schema_version")]
    upgraded.close()
    assert versions == [migration.version for migration in MIGRATIONS]


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


async def copy_fixture_rows(connection, fixture: Path = FIXTURE, tables=TABLES) -> None:
    source = sqlite3.connect(fixture)
    try:
        for table in tables:
            cursor = source.execute(f"SELECT * FROM {table}")
            names = [column[0] for column in cursor.description]
            placeholders = ", ".join(f"${n}" for n in range(1, len(names) + 1))
            await connection.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})",
                cursor.fetchall(),
            )
    finally:
        source.close()


SCHEMA_3_CALL = (
    b'{"id": "old-call", "agentId": "agent-7", "organizationId": "org-3",'
    b' "hangupCause": "MAX_DURATION", "summary": "\\u00e9t\\u00e9"}'
)


async def check_calls_backfilled(store: Store) -> None:
    from router.store import CallFilters

    event = await store.get_event("old-call")
    assert event is not None
    assert (event.agent_id, event.organization_id, event.hangup_cause) == (
        "agent-7",
        "org-3",
        "MAX_DURATION",
    )
    assert (await store.get_event("no-fields")).agent_id == ""  # type: ignore[union-attr]
    found = await store.list_events(CallFilters(hangup_cause="MAX_DURATION"))
    assert [e.id for e in found] == ["old-call"]


async def test_a_schema_3_sqlite_store_gets_its_call_columns_from_the_payloads(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        old.execute(SCHEMA_VERSION_DDL)
        for migration in MIGRATIONS[:3]:
            for statement in statements_for(migration, "sqlite"):
                old.execute(statement)
            old.execute("INSERT INTO schema_version VALUES (?, 'old', 0)", (migration.version,))
        old.execute(
            "INSERT INTO events (id, payload, received_at) VALUES (?, ?, ?)",
            ("old-call", SCHEMA_3_CALL, T),
        )
        old.execute(
            "INSERT INTO events (id, payload, received_at) VALUES (?, ?, ?)",
            ("no-fields", b'{"id": "no-fields", "hangupCause": null}', T + 1),
        )
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_calls_backfilled(store)


@pytest.mark.postgres
async def test_a_schema_3_postgresql_store_gets_its_call_columns_from_the_payloads() -> None:
    import asyncpg

    async with fresh_postgres_schema("upgrade3") as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(SCHEMA_VERSION_DDL)
            for migration in MIGRATIONS[:3]:
                for statement in statements_for(migration, "postgresql"):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_version VALUES ($1, 'old', 0)", migration.version
                )
            await connection.execute(
                "INSERT INTO events (id, payload, received_at) VALUES ($1, $2, $3), ($4, $5, $6)",
                "old-call",
                SCHEMA_3_CALL,
                T,
                "no-fields",
                b'{"id": "no-fields", "hangupCause": null}',
                T + 1,
            )
        finally:
            await connection.close()
        store = open_store(url)
        await store.open()
        try:
            await check_calls_backfilled(store)
        finally:
            await store.close()


# Made by the router at 19e1ea7 (schema 7), before calls could be searched.
FIXTURE_V7 = Path(__file__).resolve().parents[1] / "fixtures" / "router-v7.db"


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    """`store` opened (its migrations run), and closed afterwards."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def postgres_of_schema_7(
    prefix: str,
    tables: tuple[str, ...] = ("schema_version", "events"),
    fixture: Path = FIXTURE_V7,
    fill: Callable[[Any], Awaitable[None]] | None = None,
) -> AsyncIterator[str]:
    """The URL of a new PostgreSQL schema made by migrations 1-7, holding the fixture's
    rows of `tables` and what `fill` writes through the connection."""
    import asyncpg

    async with fresh_postgres_schema(prefix) as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(SCHEMA_VERSION_DDL)
            for migration in MIGRATIONS[:7]:
                for statement in statements_for(migration, "postgresql"):
                    await connection.execute(statement)
            await copy_fixture_rows(connection, fixture, tables)
            if fill is not None:
                await fill(connection)
        finally:
            await connection.close()
        yield url


@asynccontextmanager
async def postgres_built(prefix: str, statements: Iterable[str]) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema made by `statements` (what an older router wrote), as a
    store URL; dropped afterwards."""
    import asyncpg

    async with fresh_postgres_schema(prefix) as url:
        connection = await asyncpg.connect(url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()
        yield url


async def check_old_calls_found(store: Store) -> None:
    """The calls the old router stored are found by number, in any spelling, and by
    words of their summary and transcript; a call stored now beside them too."""
    from router.core.phones import e164
    from router.store import CallFilters

    async def found(filters: CallFilters) -> list[str]:
        return [event.id for event in await store.list_events(filters)]

    caller = e164("(415) 555-0123")
    assert await found(CallFilters(phone=caller)) == ["v7-failed", "v7-reschedule"]
    assert await found(CallFilters(phone=e164("+44 20 7183 8750"))) == ["v7-failed"]
    assert await found(CallFilters(phone=e164("+49 30 901820"))) == ["v7-voicemail"]
    line = await found(CallFilters(phone=e164("415.555.0199")))
    assert line == ["v7-anonymous", "v7-voicemail", "v7-reschedule"]
    assert await found(CallFilters(words=("friday",))) == ["v7-reschedule"]
    assert await found(CallFilters(words=("ava", "acme"))) == ["v7-voicemail"]
    assert await found(CallFilters(words=("beep",))) == ["v7-voicemail"]
    assert await found(CallFilters(words=("agent",))) == []
    [old] = await store.list_events(CallFilters(call_id="v7-reschedule"))
    assert (old.from_number, old.to_number) == ("+14155550123", "+14155550199")

    new = IngestRecord("new-call", b'{"id": "new-call"}', T + 100, [], from_number="+14155550123")
    await store.ingest(new)
    assert (await found(CallFilters(phone=caller)))[0] == "new-call"


async def test_a_sqlite_store_of_schema_7_finds_its_old_calls_by_number_and_words(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    with sqlite3.connect(database) as old:
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (7,)
    old.close()

    async with opened(SQLiteStore(database)) as store:
        await check_old_calls_found(store)
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # Migration 11's full-text index holds exactly the calls' texts (FTS5 compares).
        upgraded.execute("INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)")
        indexed = upgraded.execute("SELECT COUNT(*) FROM events_fts_docsize").fetchone()
        stored = upgraded.execute("SELECT COUNT(*) FROM events").fetchone()
        versions = [v for (v,) in upgraded.execute("SELECT version FROM schema_version")]
    upgraded.close()
    assert indexed == stored
    assert versions == [migration.version for migration in MIGRATIONS]


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_7_finds_its_old_calls_by_number_and_words() -> None:
    async with postgres_of_schema_7("upgrade7") as url, opened(open_store(url)) as store:
        await check_old_calls_found(store)


async def check_sessions_beside_old_calls(store: Store) -> None:
    """Migration 9 adds console sessions to a store of schema 7 and keeps its calls."""
    from router.store import CallFilters, SessionRecord

    kept = {event.id for event in await store.list_events(CallFilters())}
    assert {"v7-failed", "v7-reschedule", "v7-voicemail"} <= kept
    session = SessionRecord("hash-1", "alice", "operator", "password", "mac", "csrf", T, T + 60)
    await store.start_session(session)
    assert await store.session("hash-1", T + 1) == session
    assert await store.session("hash-1", T + 60) is None, "expired"
    assert await store.purge_sessions(T + 60) == 1
    assert not await store.end_session("hash-1")


async def test_a_sqlite_store_of_schema_7_gets_console_sessions(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    async with opened(SQLiteStore(database)) as store:
        await check_sessions_beside_old_calls(store)


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_7_gets_console_sessions() -> None:
    async with postgres_of_schema_7("upgrade9") as url, opened(open_store(url)) as store:
        await check_sessions_beside_old_calls(store)


# Clicks on Slack's buttons as the router at schema 7 audited them.
SLACK_CLICKS = [
    (
        "k1",
        T,
        "U0ALICE",
        "alice",
        "#ops (C1)",
        "silence",
        "call:c1",
        "silenced",
        "silence s1 for 1h",
    ),
    ("k2", T + 5, "U0BOB", "", "C1", "acknowledge", "digest:d1", "acknowledged", ""),
    ("k3", T + 9, "U0EVE", "eve", "", "acknowledge", "call:c2", "refused", "not allowed"),
]


async def check_slack_clicks_moved(store: Store) -> None:
    """The clicks audited before schema 10 are in the one audit, newest first."""
    from router.store import AuditFilters, AuditRecord

    assert await store.list_audit(AuditFilters()) == [
        AuditRecord(
            "k3",
            T + 9,
            "slack:U0EVE",
            "acknowledge",
            "call:c2",
            json.dumps({"outcome": "refused", "user_name": "eve", "detail": "not allowed"}),
        ),
        AuditRecord(
            "k2",
            T + 5,
            "slack:U0BOB",
            "acknowledge",
            "digest:d1",
            json.dumps({"outcome": "acknowledged", "channel": "C1"}),
        ),
        AuditRecord(
            "k1",
            T,
            "slack:U0ALICE",
            "silence.create",
            "call:c1",
            json.dumps(
                {
                    "outcome": "silenced",
                    "user_name": "alice",
                    "channel": "#ops (C1)",
                    "detail": "silence s1 for 1h",
                }
            ),
        ),
    ]
    assert await store.audit_choices() == (
        ["slack:U0ALICE", "slack:U0BOB", "slack:U0EVE"],
        ["acknowledge", "silence.create"],
    )


async def test_a_sqlite_store_of_schema_7_keeps_its_slack_clicks_in_the_audit(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    with sqlite3.connect(database) as old:
        old.executemany(
            "INSERT INTO slack_actions_audit (id, at, user_id, user_name, channel, action,"
            " target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            SLACK_CLICKS,
        )
    old.close()

    async with opened(SQLiteStore(database)) as store:
        await check_slack_clicks_moved(store)
    with sqlite3.connect(database) as upgraded:
        tables = {name for (name,) in upgraded.execute("SELECT name FROM sqlite_master")}
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    upgraded.close()
    assert "slack_actions_audit" not in tables and "audit" in tables


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_7_keeps_its_slack_clicks_in_the_audit() -> None:
    import asyncpg

    async def clicks(connection: asyncpg.Connection) -> None:
        await connection.executemany(
            "INSERT INTO slack_actions_audit (id, at, user_id, user_name, channel, action,"
            " target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            SLACK_CLICKS,
        )

    async with postgres_of_schema_7("upgrade7audit", ("schema_version",), fill=clicks) as url:
        async with opened(open_store(url)) as store:
            await check_slack_clicks_moved(store)
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT to_regclass('slack_actions_audit')") is None
        finally:
            await connection.close()


async def check_old_caller_forgotten(store: Store) -> None:
    """Migration 13 (the store's settings) keeps the old calls: a caller among them is
    forgotten, the others stay, and the store makes its salt."""
    from router.operators import ForgetRequest
    from router.operators.forget import SALT_SETTING, erasure_of
    from router.store import CallFilters

    before = {event.id for event in await store.list_events(CallFilters())}
    assert {"v7-failed", "v7-reschedule"} <= before
    counts = await store.forget(erasure_of(ForgetRequest("+14155550123")))
    assert counts.calls_deleted == 2
    after = {event.id for event in await store.list_events(CallFilters())}
    assert after == before - {"v7-failed", "v7-reschedule"}
    assert len(await store.secret(SALT_SETTING)) == 64


async def test_a_sqlite_store_of_schema_7_upgraded_forgets_an_old_caller(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    async with opened(SQLiteStore(database)) as store:
        await check_old_caller_forgotten(store)


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_7_upgraded_forgets_an_old_caller() -> None:
    async with postgres_of_schema_7("upgrade13") as url, opened(open_store(url)) as store:
        await check_old_caller_forgotten(store)


# An attempt the old router recorded (schema 7: no request or response kept).
OLD_ATTEMPT_ROWS = (
    "INSERT INTO deliveries (id, event_id, sink, rule, status, attempts, retry_attempts,"
    " retry_started_at, created_at, updated_at, last_error)"
    " VALUES ('v7-failed:crm', 'v7-failed', 'crm', 'failed', 'dead', 1, 1, 1, 1, 2,"
    " 'HTTP 400')",
    "INSERT INTO attempts (delivery_id, number, started_at, duration, outcome, status_code,"
    " error, detail) VALUES ('v7-failed:crm', 1, 1.5, 0.25, 'dead', 400, 'HTTP 400', NULL)",
)


def v7_copy_with_an_old_attempt(tmp_path: Path) -> Path:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    with sqlite3.connect(database) as old:
        for statement in OLD_ATTEMPT_ROWS:
            old.execute(statement)
    old.close()
    return database


async def check_old_attempts_not_recorded(store: Store) -> None:
    """The old attempt is there, its exchange not recorded; a new one keeps its own."""
    from router.store import Exchange, SentRequest

    [old] = await store.list_attempts("v7-failed:crm")
    assert (old.number, old.outcome, old.status_code, old.exchange) == (1, "dead", 400, None)
    assert await store.replay("v7-failed:crm", T + 1)
    [claimed] = await store.claim("crm", 10, "w", 30.0, T + 2)
    exchange = Exchange(SentRequest("POST", "https://crm.example/***", body="{}", size=2))
    again = AttemptRecord(2, T + 2, 0.1, "delivered", 200, exchange=exchange)
    assert await store.finish(claimed.id, "w", again)
    assert [a.exchange for a in await store.list_attempts("v7-failed:crm")] == [None, exchange]


async def test_a_sqlite_store_of_schema_7_shows_its_old_attempts_as_not_recorded(
    tmp_path: Path,
) -> None:
    database = v7_copy_with_an_old_attempt(tmp_path)
    async with opened(SQLiteStore(database)) as store:
        await check_old_attempts_not_recorded(store)
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        columns = [row[1] for row in upgraded.execute("PRAGMA table_info(attempts)")]
    upgraded.close()
    assert columns[-5:-1] == ["request_head", "request_body", "response_head", "response_body"]
    assert columns[-1] == "steps"  # migration 17


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_7_shows_its_old_attempts_as_not_recorded(
    tmp_path: Path,
) -> None:
    database = v7_copy_with_an_old_attempt(tmp_path)
    tables = ("schema_version", "events", "deliveries", "attempts")
    made = postgres_of_schema_7("upgrade7attempts", tables, fixture=database)
    async with made as url, opened(open_store(url)) as store:
        await check_old_attempts_not_recorded(store)


# --- schema 13: what the router of schema 13 made; migration 18 keeps traceparents ---

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OLD_DELIVERY_ROW = (
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at)"
    " VALUES ('v13-call:crm', 'v13-call', 'crm', 'all', 'pending', 1700000000.0,"
    " 1700000000.0, 1700000000.0, 1700000000.0)"
)


def migrated_statements(dialect: str, version: int, description: str) -> list[str]:
    """The schema as migrations 1 to `version` made it, each recorded in schema_version
    (with `description`), from those migrations' own SQL: what an older router left."""
    statements = [SCHEMA_VERSION_DDL]
    for migration in MIGRATIONS:
        if migration.version <= version:
            statements += statements_for(migration, dialect)  # type: ignore[arg-type]
            statements.append(
                "INSERT INTO schema_version (version, description, applied_at)"
                f" VALUES ({migration.version}, '{description}', 1700000000.0)"
            )
    return statements


def schema_13_statements(dialect: str) -> list[str]:
    """What the router of schema 13 (the latest before migration 18) made, and a call
    with a pending delivery written then."""
    statements = migrated_statements(dialect, 13, "before traces")
    binary = "CAST(X'7b226964223a227631332d63616c6c227d' AS BLOB)"
    if dialect == "postgresql":
        binary = "convert_to('{\"id\":\"v13-call\"}', 'UTF8')"
    statements.append(
        "INSERT INTO events (id, payload, received_at, status)"
        f" VALUES ('v13-call', {binary}, 1700000000.0, 'completed')"
    )
    statements.append(OLD_DELIVERY_ROW)
    return statements


async def check_traceparents_kept(store: Store) -> None:
    """The old delivery has no traceparent and is sent as before; a call stored now keeps
    its traceparent on its single delivery and on the digest it opens, and a claim (a
    retry however late) gives it back."""
    [old] = await store.claim("crm", 10, "w", 30.0, T)
    assert (old.id, old.trace_parent) == ("v13-call:crm", None)
    assert await store.finish(old.id, "w", AttemptRecord(1, T, 0.1, "delivered", 200))
    body = json.dumps({"id": "traced-call"}).encode()
    record = IngestRecord(
        "traced-call",
        body,
        T + 1,
        [
            NewDelivery("traced:crm", "crm", "all"),
            NewDelivery("traced:ops", "ops", "digest", GroupJoin("k", 0.0, 1)),
        ],
        trace_parent=TRACEPARENT,
    )
    assert (await store.ingest(record)).status == "accepted"
    [single] = await store.claim("crm", 10, "w", 30.0, T + 2)
    assert (single.id, single.trace_parent) == ("traced:crm", TRACEPARENT)
    assert await store.finish(
        single.id,
        "w",
        AttemptRecord(1, T + 2, 0.1, "retry", 503, "HTTP 503"),
        next_attempt_at=T + 3600,
    )
    [again] = await store.claim("crm", 10, "w", 30.0, T + 3601)  # an hour later: same trace
    assert again.trace_parent == TRACEPARENT
    [digest] = await store.claim("ops", 10, "w", 30.0, T + 3601)
    assert (digest.kind, digest.trace_parent) == ("digest", TRACEPARENT)


async def test_a_sqlite_store_of_schema_13_keeps_traceparents(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in schema_13_statements("sqlite"):
            old.execute(statement)
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_traceparents_kept(store)
    with sqlite3.connect(database) as upgraded:
        columns = [row[1] for row in upgraded.execute("PRAGMA table_info(deliveries)")]
        versions = [row[0] for row in upgraded.execute("SELECT version FROM schema_version")]
    upgraded.close()
    assert "trace_parent" in columns and 18 in versions


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_keeps_traceparents() -> None:

    made = postgres_built("upgrade18", schema_13_statements("postgresql"))
    async with made as url, opened(open_store(url)) as store:
        await check_traceparents_kept(store)


# --- schema 13 -> migration 14: escalation timers ---

OLD_ACKNOWLEDGEMENT_ROW = (
    "INSERT INTO acknowledgements (kind, target_id, user_id, user_name, channel, at)"
    " VALUES ('call', 'v13-call', 'U1', 'ann', 'C1', 1700000001.0)"
)


async def check_escalations_after_13(store: Store) -> None:
    """Migration 14: the old delivery has no `escalated_from` and keeps its acknowledgement;
    a call stored now gets its escalation timer, which fires once into a delivery
    escalated from the first."""
    from router.store import EscalationPlan

    old = await store.get_delivery("v13-call:crm")
    assert old is not None and old.escalated_from is None
    assert await store.acknowledgement("call", "v13-call", "all") is not None
    assert await store.next_escalation_due() is None  # no timer made up for old calls
    plans = [EscalationPlan("failed", 60.0, ("oncall",))]
    deliveries = [NewDelivery("v14-ops", "ops", "failed")]
    record = IngestRecord("v14-call", b'{"id":"v14-call"}', T, deliveries, escalations=plans)
    await store.ingest(record)
    assert await store.next_escalation_due() == T + 60
    (due,) = await store.claim_escalations(10, "w", 30.0, T + 60)
    settled = await store.fire_escalation(due, "w", T + 60, "escalated", [("v14-up", "oncall")])
    assert settled == ("escalated", ["oncall"])
    assert await store.escalations_of("v14-ops") == ["v14-up"]
    escalated = await store.get_delivery("v14-up")
    assert escalated is not None and escalated.escalated_from == "v14-ops"


async def test_a_sqlite_store_of_schema_13_gets_escalations(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in [*schema_13_statements("sqlite"), OLD_ACKNOWLEDGEMENT_ROW]:
            old.execute(statement)
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_escalations_after_13(store)


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_gets_escalations() -> None:

    async with (
        postgres_built(
            "upgrade14", [*schema_13_statements("postgresql"), OLD_ACKNOWLEDGEMENT_ROW]
        ) as url,
        opened(open_store(url)) as store,
    ):
        await check_escalations_after_13(store)


@asynccontextmanager
async def schema_13_code(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Inside: the store code knows migrations up to 13 only (the schema before threads)."""
    from router.store import migrations

    with monkeypatch.context() as patch:
        older = tuple(m for m in migrations.MIGRATIONS if m.version <= 13)
        patch.setattr(migrations, "MIGRATIONS", older)
        patch.setattr(migrations, "LATEST_VERSION", 13)
        yield


async def check_threads_after_13(store: Store) -> None:
    """Migration 15 (Slack threads' parents) on a store of schema 13: the old calls stay,
    and a thread is recorded, found, counted and ended."""
    from router.store import CallFilters, SlackThread

    assert {"v7-failed", "v7-reschedule"} <= {e.id for e in await store.list_events(CallFilters())}
    thread = SlackThread("ops-slack", TRUNK_A, "C0ALERTS", "1.000100", '{"text":"x"}', 0, T)
    assert await store.start_thread(thread, T - 3600)
    assert not await store.start_thread(thread, T - 3600)  # a live one is kept
    found = await store.thread("ops-slack", TRUNK_A, T - 3600)
    assert found is not None and found.ts == "1.000100"
    assert await store.count_thread_reply("ops-slack", TRUNK_A, "1.000100") == 1
    await store.end_thread("ops-slack", TRUNK_A, "1.000100")
    assert await store.thread("ops-slack", TRUNK_A, T - 3600) is None
    # And notices of dead deliveries (no call of their own) beside a call's own delivery.
    from router.store import NewNotice

    deliveries = [NewDelivery("v15:crm", "crm", "r"), NewDelivery("v15:slack", "slack", "r")]
    await store.ingest(IngestRecord("v15", b'{"id": "v15"}', T, deliveries))
    [crm] = await store.claim("crm", 10, "w", 30, T + 1)
    dead = AttemptRecord(1, T + 2, 0.1, "dead", 400, "HTTP 400", None)
    notice = NewNotice("v15:notice", "slack", "r", crm.id, '{"notice": "delivery_dead"}')
    assert await store.finish(crm.id, "w", dead, notices=[notice])
    claimed = {d.id: d for d in await store.claim("slack", 10, "w", 30, T + 3)}
    assert set(claimed) == {"v15:slack", "v15:notice"}
    assert claimed["v15:notice"].notice == '{"notice": "delivery_dead"}'


async def test_a_sqlite_store_of_schema_13_gets_slack_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "router.db"
    shutil.copyfile(FIXTURE_V7, database)
    # (not the owner: no lease release, which would meet the table migration 14 makes)
    async with schema_13_code(monkeypatch), opened(SQLiteStore(database, owns_leases=False)):
        pass
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone() == (13,)
    async with opened(SQLiteStore(database)) as store:
        await check_threads_after_13(store)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] >= 15


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_gets_slack_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with postgres_of_schema_7("upgrade15") as url:
        async with schema_13_code(monkeypatch), opened(open_store(url)):
            pass
        async with opened(open_store(url)) as store:
            await check_threads_after_13(store)


# --- migration 17: an `http` sink's steps ------------------------------------------------


async def check_steps_after_upgrade(store: Store) -> None:
    """A delivery queued at schema 13, its old attempt kept, goes on with steps: an attempt
    records its steps, the next claim resumes after the ones done, delivered clears them."""
    from router.store import Exchange, SentRequest, StepOutcome, resume_state

    [old] = await store.list_attempts("s13:crm")
    assert (old.number, old.outcome, old.steps) == (1, "retry", ())
    [claimed] = await store.claim("crm", 10, "w", 30.0, T + 2)
    assert claimed.id == "s13:crm" and claimed.steps is None
    sent = Exchange(SentRequest("POST", "https://api.example/***", body="{}", size=2))
    steps = (
        StepOutcome("find", "done", {"contact": "501"}, {"contact": "501"}, sent),
        StepOutcome("create", "skipped"),
        StepOutcome("log", "failed", exchange=sent),
    )
    failed = AttemptRecord(2, T + 2, 0.1, "retry", 503, "HTTP 503", steps=steps)
    assert await store.finish(claimed.id, "w", failed, next_attempt_at=T + 3)
    [again] = await store.claim("crm", 10, "w", 30.0, T + 4)
    assert resume_state(again.steps) == {
        "find": ("done", {"contact": "501"}),
        "create": ("skipped", {}),
    }
    done = AttemptRecord(3, T + 4, 0.1, "delivered", 201, steps=(StepOutcome("log", "done"),))
    assert await store.finish(again.id, "w", done)
    attempts = await store.list_attempts("s13:crm")
    assert [[(s.name, s.outcome) for s in a.steps] for a in attempts] == [
        [],
        [("find", "done"), ("create", "skipped"), ("log", "failed")],
        [("log", "done")],
    ]
    assert attempts[1].steps[0].shown == {"contact": "501"}
    assert attempts[1].steps[0].exchange == sent
    assert attempts[1].steps[0].captures == {}  # the raw values stay with the delivery only


S13_ROWS = (
    "INSERT INTO events (id, payload, received_at, status)"
    " VALUES ('s13', {payload}, 1700000000.0, 'completed')",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at)"
    " VALUES ('s13:crm', 's13', 'crm', 'r', 'pending', 1700000000.0,"
    " 1700000000.0, 1700000000.0, 1700000000.0)",
)


def schema_13_with_a_pending_delivery(dialect: str) -> list[str]:
    """Schema 13, as that router made it, holding the call `s13` with one pending
    delivery (`s13:crm`)."""
    payload = "CAST(X'7b226964223a2022733133227d' AS BLOB)"  # {"id": "s13"}
    if dialect == "postgresql":
        payload = "convert_to('{\"id\": \"s13\"}', 'UTF8')"
    rows = [row.format(payload=payload) for row in S13_ROWS]
    schema_only = schema_13_statements(dialect)[:-2]  # without its call v13-call
    return [*schema_only, *rows]


OLD_STEP_ATTEMPT = (
    "INSERT INTO attempts (delivery_id, number, started_at, duration, outcome, status_code,"
    " error, detail) VALUES ('s13:crm', 1, 1.5, 0.25, 'retry', 503, 'HTTP 503', NULL)",
    "UPDATE deliveries SET attempts = 1, retry_attempts = 1 WHERE id = 's13:crm'",
)


async def test_a_sqlite_store_of_schema_13_upgrades_to_steps(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in schema_13_with_a_pending_delivery("sqlite"):
            old.execute(statement)
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (13,)
        for statement in OLD_STEP_ATTEMPT:
            old.execute(statement)
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_steps_after_upgrade(store)
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert upgraded.execute("SELECT steps FROM deliveries").fetchall() == [(None,)]
    upgraded.close()


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_upgrades_to_steps() -> None:
    import asyncpg

    async with fresh_postgres_schema("upgrade17") as url:
        connection = await asyncpg.connect(url)
        try:
            for statement in schema_13_with_a_pending_delivery("postgresql"):
                await connection.execute(statement)
            assert await connection.fetchval("SELECT MAX(version) FROM schema_version") == 13
            for statement in OLD_STEP_ATTEMPT:
                await connection.execute(statement)
        finally:
            await connection.close()
        async with opened(open_store(url)) as store:
            await check_steps_after_upgrade(store)


# --- schema 18 -> migration 19: acknowledgements per call and rule ---

S18_BODY = '{"id":"v18-call","status":"FAILED"}'
S18_PAYLOAD = {
    "sqlite": f"CAST(X'{S18_BODY.encode().hex()}' AS BLOB)",
    "postgresql": f"convert_to('{S18_BODY}', 'UTF8')",
}
S18_ROWS = (
    "INSERT INTO events (id, payload, received_at, status)"
    " VALUES ('v18-call', {payload}, 1700000000.0, 'FAILED')",
    # The call matched two rules, each with a delivery and an escalation timer due at T.
    *(
        "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
        " next_attempt_at, created_at, updated_at, delivered_at)"
        f" VALUES ('v18:{sink}', 'v18-call', '{sink}', '{rule}', 'delivered', 1700000000.0,"
        " 1700000000.0, 1700000000.0, 1700000001.0, 1700000001.0)"
        for sink, rule in (("ops", "failed"), ("sales", "vip"))
    ),
    *(
        "INSERT INTO escalations (event_id, rule, delivery_id, kind, to_sinks, due_at)"
        f" VALUES ('v18-call', '{rule}', 'v18:{sink}', 'single', '[\"{up}\"]', 1700000000.0)"
        for sink, rule, up in (("ops", "failed", "oncall"), ("sales", "vip", "lead"))
    ),
    # Acknowledged (from the #sales alert) when an acknowledgement was the whole call's;
    # and a digest acknowledged then.
    "INSERT INTO acknowledgements (kind, target_id, user_id, user_name, channel, at)"
    " VALUES ('call', 'v18-call', 'U0SALES', 'sam', 'C0SALES', 1700000002.0)",
    "INSERT INTO acknowledgements (kind, target_id, user_id, user_name, channel, at)"
    " VALUES ('digest', 'v18-digest', 'U0OPS', 'olga', 'C0OPS', 1700000003.0)",
)


def schema_18_statements(dialect: str) -> list[str]:
    """What the router of schema 18 (the latest before migration 19) made, holding the
    call `v18-call` matched by two rules, their timers and its old acknowledgement."""
    statements = migrated_statements(dialect, 18, "acknowledged per call")
    return [*statements, *(row.format(payload=S18_PAYLOAD[dialect]) for row in S18_ROWS)]


async def check_acknowledgements_after_18(store: Store) -> None:
    """Migration 19: the old acknowledgement is kept with rule '' (every rule of its call),
    shown on each delivery of the call and still stops both rules' escalations; the old
    digest's is kept; a new call's acknowledgements are per rule."""
    from router.operators import AuditTrail, acknowledge_delivery
    from router.store import ALL_RULES, Acknowledgement, EscalationPlan
    from router.web.admin import acknowledgements_of, delivery_json

    old = Acknowledgement("call", "v18-call", ALL_RULES, "U0SALES", "sam", "C0SALES", T + 2)
    old_digest = Acknowledgement("digest", "v18-digest", ALL_RULES, "U0OPS", "olga", "C0OPS", T + 3)
    assert await store.acknowledgements_since(0) == [old, old_digest]
    assert await store.acknowledgement("call", "v18-call", "failed") == old
    assert await store.acknowledgement("call", "v18-call", "vip") == old
    assert await store.acknowledgement("digest", "v18-digest", "trunks") == old_digest
    views = await store.deliveries_of_event("v18-call")
    acknowledged = await acknowledgements_of(store, views)
    shown = {view.id: delivery_json(view, acknowledged.get(view.id)) for view in views}
    assert {d: (s["acknowledged_by"], s["rule"]) for d, s in shown.items()} == {
        "v18:ops": ("U0SALES", "failed"),
        "v18:sales": ("U0SALES", "vip"),
    }
    trail = AuditTrail(store)
    again = await acknowledge_delivery(trail, store, "v18:ops", "otto", T + 10)
    assert again is not None and not again.first and again.acknowledgement == old
    fired = []
    for due in await store.claim_escalations(10, "w", 30.0, T + 60):
        fired.append(await store.fire_escalation(due, "w", T + 60, "escalated", [("x", "up")]))
    assert fired == [("acknowledged", []), ("acknowledged", [])]  # neither escalates

    plans = [EscalationPlan("failed", 60.0, ("oncall",)), EscalationPlan("vip", 60.0, ("lead",))]
    deliveries = [NewDelivery("v19:ops", "ops", "failed"), NewDelivery("v19:sales", "sales", "vip")]
    await store.ingest(
        IngestRecord("v19-call", b'{"id":"v19-call"}', T, deliveries, escalations=plans)
    )
    done = await acknowledge_delivery(trail, store, "v19:sales", "sam", T + 10)
    assert done is not None and done.first and done.acknowledgement.rule == "vip"
    assert await store.acknowledgement("call", "v19-call", "failed") is None
    settled = {}
    for due in await store.claim_escalations(10, "w", 30.0, T + 61):
        new = [(f"{due.rule}-up", due.to[0])]
        settled[due.rule] = await store.fire_escalation(due, "w", T + 61, "escalated", new)
    assert settled == {"failed": ("escalated", ["oncall"]), "vip": ("acknowledged", [])}


async def check_old_acknowledgement_shown(rules_path: Path, url: str) -> None:
    """The console of the upgraded store (retention off: the old call is from 2023) shows
    the old acknowledgement on the call's page for each of its rules, as the whole
    call's, and on each delivery's page."""
    from aiohttp.test_utils import TestClient, TestServer

    from router.web.app import ServiceSettings, build_app
    from tests.integration.test_console import signed_in_page
    from tests.service import ADMIN_TOKEN

    settings = ServiceSettings(
        config_path=str(rules_path),
        store_url=url,
        admin_token=ADMIN_TOKEN,
        retention_days=0,
        watch_interval=0,
    )
    async with TestClient(TestServer(build_app(settings))) as client:
        page = await signed_in_page(client, "/ui/calls/v18-call")
        for rule in ("failed", "vip"):
            listed = page.split(f'<li data-rule="{rule}">', 1)[1].split("</li>", 1)[0]
            assert "acknowledged by sam" in listed and "for every rule of the call" in listed
        for delivery in ("v18:ops", "v18:sales"):
            shown = await (await client.get(f"/ui/deliveries/{delivery}")).text()
            assert '<dd class="acknowledged">by sam' in shown


async def test_a_sqlite_store_of_schema_18_keeps_its_acknowledgements_for_every_rule(
    tmp_path: Path, write_rules: Any
) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in schema_18_statements("sqlite"):
            old.execute(statement)
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (18,)
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_acknowledgements_after_18(store)
    rules_path = write_rules("version: 1\nsinks: {}\nrules: []\n")
    await check_old_acknowledgement_shown(rules_path, f"sqlite:///{database}")
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        key = [row[1] for row in upgraded.execute("PRAGMA table_info(acknowledgements)") if row[5]]
        indexes = [row[1] for row in upgraded.execute("PRAGMA index_list(acknowledgements)")]
        tables = [row[0] for row in upgraded.execute("SELECT name FROM sqlite_master")]
    upgraded.close()
    assert key == ["kind", "target_id", "rule"]
    assert "acknowledgements_at" in indexes
    assert "acknowledgements_by_rule" not in tables


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_18_keeps_its_acknowledgements_for_every_rule(
    write_rules: Any,
) -> None:
    import asyncpg

    async with fresh_postgres_schema("upgrade19") as url:
        connection = await asyncpg.connect(url)
        try:
            for statement in schema_18_statements("postgresql"):
                await connection.execute(statement)
            assert await connection.fetchval("SELECT MAX(version) FROM schema_version") == 18
        finally:
            await connection.close()
        async with opened(open_store(url)) as store:
            await check_acknowledgements_after_18(store)
        rules_path = write_rules("version: 1\nsinks: {}\nrules: []\n")
        await check_old_acknowledgement_shown(rules_path, url)


# --- schema 13 -> migration 21: a call's words indexed by the store's script ---


async def check_words_indexed_after_13(store: Store) -> None:
    """Migration 21: the old call is still found by its words; a call stored now, held
    or routed, is found by its own; a duplicate adds nothing."""
    from router.store import CallFilters

    async def found(*words: str) -> list[str]:
        return [event.id for event in await store.list_events(CallFilters(words=words))]

    assert await found("reschedule") == ["v13-call"]
    routed = IngestRecord("v21-routed", b'{"id":"v21-routed"}', T, [], search_text="refund friday")
    held = IngestRecord("v21-held", b'{"id":"v21-held"}', T + 1, [], search_text="refund monday")
    assert (await store.ingest(routed)).status == "accepted"
    assert (await store.ingest(routed)).status == "duplicate"
    assert (await store.ingest_held(held)).status == "accepted"
    assert await found("refund") == ["v21-held", "v21-routed"]
    assert await found("friday") == ["v21-routed"]
    assert await found("monday") == ["v21-held"]


def schema_13_with_words(dialect: str) -> list[str]:
    return [
        *schema_13_statements(dialect),
        "UPDATE events SET search_text = 'please reschedule' WHERE id = 'v13-call'",
    ]


async def test_a_sqlite_store_of_schema_13_indexes_words_without_the_trigger(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in schema_13_with_words("sqlite"):
            old.execute(statement)
    old.close()
    async with opened(SQLiteStore(database)) as store:
        await check_words_indexed_after_13(store)
    with sqlite3.connect(database) as upgraded:
        triggers = {row[0] for row in upgraded.execute("SELECT name FROM sqlite_master")}
        versions = [row[0] for row in upgraded.execute("SELECT version FROM schema_version")]
        upgraded.execute("DELETE FROM events WHERE id = 'v21-held'")  # its trigger is kept
        upgraded.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")
        left = upgraded.execute(
            "SELECT COUNT(*) FROM events_fts WHERE events_fts MATCH 'refund'"
        ).fetchone()
    upgraded.close()
    assert "events_fts_insert" not in triggers and "events_fts_delete" in triggers
    assert 21 in versions
    assert left == (1,)


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_indexes_words() -> None:

    made = postgres_built("upgrade21", schema_13_with_words("postgresql"))
    async with made as url, opened(open_store(url)) as store:
        await check_words_indexed_after_13(store)


# --- schema 21 -> migration 22: events_received_at dropped ---

S21_CALLS = (  # (id, received_at, status): one old enough to purge, two recent
    ("v21-old", 1700000000.0, "COMPLETED"),
    ("v21-mid", 1700086400.0, "FAILED"),
    ("v21-new", 1700090000.0, "COMPLETED"),
)
S21_PAYLOAD = {
    "sqlite": 'CAST(\'{{"id":"{id}"}}\' AS BLOB)',
    "postgresql": "convert_to('{{\"id\":\"{id}\"}}', 'UTF8')",
}


def schema_21_statements(dialect: str) -> list[str]:
    """What the router of schema 21 (the latest before migration 22) made, holding three
    calls, each with a delivered delivery (the middle one's still pending)."""
    statements = migrated_statements(dialect, 21, "before the index diet")
    for call_id, at, status in S21_CALLS:
        payload = S21_PAYLOAD[dialect].format(id=call_id)
        statements.append(
            "INSERT INTO events (id, payload, received_at, status, search_text)"
            f" VALUES ('{call_id}', {payload}, {at}, '{status}', 'kept {call_id}')"
        )
        delivered = "'pending', NULL" if call_id == "v21-mid" else f"'delivered', {at + 1}"
        statements.append(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, delivered_at,"
            " retry_started_at, next_attempt_at, created_at, updated_at)"
            f" VALUES ('{call_id}:crm', '{call_id}', 'crm', 'all', {delivered},"
            f" {at}, {at}, {at}, {at + 1})"
        )
    if dialect == "sqlite":  # the words of each call, as schema 21's ingest wrote them
        statements.append("INSERT INTO events_fts (events_fts) VALUES ('rebuild')")
    return statements


async def check_calls_after_21(store: Store) -> None:
    """Migration 22: the calls and deliveries are all there; the reads that took
    events_received_at (the calls page's dates, retention's purge) answer as before."""
    from router.store import CallFilters

    async def listed(filters: CallFilters) -> list[str]:
        return [event.id for event in await store.list_events(filters)]

    assert await listed(CallFilters()) == ["v21-new", "v21-mid", "v21-old"]
    assert await listed(CallFilters(received_from=1700086400.0)) == ["v21-new", "v21-mid"]
    assert await listed(CallFilters(received_to=1700086400.0)) == ["v21-old"]
    assert await listed(CallFilters(status="failed")) == ["v21-mid"]
    assert await listed(CallFilters(words=("kept",))) == ["v21-new", "v21-mid", "v21-old"]
    views = {view.id: view.status for view in await store.list_deliveries(sink="crm")}
    assert views == {
        "v21-new:crm": "delivered",
        "v21-mid:crm": "pending",
        "v21-old:crm": "delivered",
    }
    # Older than a day before the newest call: the old one goes; the middle one (not
    # delivered yet) and the new one stay.
    assert await store.purge(1700089000.0) == 1
    assert await listed(CallFilters()) == ["v21-new", "v21-mid"]


async def test_a_sqlite_store_of_schema_21_drops_events_received_at(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        for statement in schema_21_statements("sqlite"):
            old.execute(statement)
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (21,)
        made = {row[1] for row in old.execute("PRAGMA index_list(events)")}
    old.close()
    assert "events_received_at" in made
    async with opened(SQLiteStore(database)) as store:
        await check_calls_after_21(store)
    with sqlite3.connect(database) as upgraded:
        assert upgraded.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        indexes = {row[1] for row in upgraded.execute("PRAGMA index_list(events)")}
        versions = [row[0] for row in upgraded.execute("SELECT version FROM schema_version")]
        purge = upgraded.execute(
            "EXPLAIN QUERY PLAN " + queries.PURGE.compiled("sqlite").text, {"received_before": 1.0}
        ).fetchall()
    upgraded.close()
    assert "events_received_at" not in indexes and 22 in versions
    assert made - indexes == {"events_received_at"}  # every other index kept
    assert "INDEX events_newest (received_at<?)" in purge[0][-1]  # retention's range


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_21_drops_events_received_at() -> None:
    import asyncpg

    indexes = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    async with postgres_built("upgrade22", schema_21_statements("postgresql")) as url:
        connection = await asyncpg.connect(url)
        try:
            made = {row[0] for row in await connection.fetch(indexes)}
        finally:
            await connection.close()
        assert "events_received_at" in made
        async with opened(open_store(url)) as store:
            await check_calls_after_21(store)
        connection = await asyncpg.connect(url)
        try:
            kept = {row[0] for row in await connection.fetch(indexes)}
            versions = [
                row[0] for row in await connection.fetch("SELECT version FROM schema_version")
            ]
        finally:
            await connection.close()
    assert made - kept == {"events_received_at"} and 22 in versions
