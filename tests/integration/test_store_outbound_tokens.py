"""The store keeps sinks' access tokens (DESIGN.md section 17, migration 16): one row
per sink and auth settings, shared by every store object on the same data (replicas),
kept across a reopen (a restart), and upgraded into a store of schema 13 in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from router.store import OutboundToken, Store
from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for
from router.store.sqlite import SQLiteStore
from tests.integration.conftest import StoreFactory, fresh_postgres_schema

T = 1_700_000_000.0


def token(access: str, *, key: str = "k1", refresh: str | None = None) -> OutboundToken:
    return OutboundToken("hubspot", key, access, T, T + 3600, refresh)


async def test_a_token_kept_is_read_back_by_another_store_and_after_a_reopen(
    store_factory: StoreFactory, request: pytest.FixtureRequest
) -> None:
    first = await store_factory()
    assert await first.outbound_token("hubspot", "k1") is None
    await first.keep_outbound_token(token("at-1", refresh="rt-1"))
    if request.node.callspec.params["store_factory"] == "memory":
        second = first  # two in-memory stores open at once do not share their data
    else:
        second = await store_factory()  # another replica on the same data
        assert await second.outbound_token("hubspot", "k1") == token("at-1", refresh="rt-1")

    await second.keep_outbound_token(token("at-2", refresh="rt-2"))  # a renewal, rotated
    await first.close()
    await second.close()
    reopened = await store_factory()
    assert await reopened.outbound_token("hubspot", "k1") == token("at-2", refresh="rt-2")
    assert await reopened.outbound_token("other-sink", "k1") is None


async def test_new_auth_settings_drop_the_tokens_of_the_old_ones(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    await store.keep_outbound_token(token("at-old", key="old-settings", refresh="rt-old"))
    await store.keep_outbound_token(OutboundToken("sheet", "old-settings", "at-s", T, T + 60))
    await store.keep_outbound_token(token("at-new", key="new-settings"))
    assert await store.outbound_token("hubspot", "old-settings") is None
    assert await store.outbound_token("hubspot", "new-settings") == token(
        "at-new", key="new-settings"
    )
    assert await store.outbound_token("sheet", "old-settings") is not None, "another sink's"


def test_a_token_never_shows_its_secrets_in_its_repr() -> None:
    shown = repr(token("at-secret-1", refresh="rt-secret-1"))
    assert "at-secret-1" not in shown and "rt-secret-1" not in shown
    assert "hubspot" in shown


async def check_tokens_work(store: Store) -> None:
    await store.keep_outbound_token(token("at-1", refresh="rt-1"))
    assert await store.outbound_token("hubspot", "k1") == token("at-1", refresh="rt-1")


async def test_a_sqlite_store_of_schema_13_upgrades_and_keeps_tokens(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with sqlite3.connect(database) as old:
        old.execute(SCHEMA_VERSION_DDL)
        for migration in [m for m in MIGRATIONS if m.version <= 13]:
            for statement in statements_for(migration, "sqlite"):
                old.execute(statement)
            old.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                (migration.version, migration.description, T),
            )
        old.execute("INSERT INTO settings VALUES ('kept', 'value')")
    old.close()
    store = SQLiteStore(database)
    await store.open()
    try:
        await check_tokens_work(store)
        assert await store.secret("kept") == "value"
    finally:
        await store.close()
    with sqlite3.connect(database) as upgraded:
        versions = [v for (v,) in upgraded.execute("SELECT version FROM schema_version")]
    upgraded.close()
    assert versions == [migration.version for migration in MIGRATIONS]


@pytest.mark.postgres
async def test_a_postgresql_store_of_schema_13_upgrades_and_keeps_tokens() -> None:
    import asyncpg

    from router.store import open_store

    async with fresh_postgres_schema("upgrade16") as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(SCHEMA_VERSION_DDL)
            for migration in [m for m in MIGRATIONS if m.version <= 13]:
                for statement in statements_for(migration, "postgresql"):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_version VALUES ($1, $2, $3)",
                    migration.version,
                    migration.description,
                    T,
                )
            await connection.execute("INSERT INTO settings VALUES ('kept', 'value')")
        finally:
            await connection.close()
        store = open_store(url)
        await store.open()
        try:
            await check_tokens_work(store)
            assert await store.secret("kept") == "value"
        finally:
            await store.close()
