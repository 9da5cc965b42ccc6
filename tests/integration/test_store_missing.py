"""`Store.open(create=False)`, for commands that only read or change a store: where
there is none (no SQLite file, an empty file, a database without the router's tables)
it raises `StoreMissing` naming where it looked, and creates nothing; a store that is
there opens as usual."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from router.store import StoreMissing, open_store
from router.store.sqlite import SQLiteStore
from tests.integration.conftest import fresh_postgres_schema


async def test_no_sqlite_file_is_no_store_and_none_is_made(tmp_path: Path) -> None:
    database = tmp_path / "data" / "router.db"
    store = SQLiteStore(database, owns_leases=False)
    with pytest.raises(StoreMissing, match=f"no store at {database}: the file does not exist"):
        await store.open(create=False)
    assert not (tmp_path / "data").exists()


async def test_an_empty_sqlite_file_is_no_store_and_gets_no_tables(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    database.touch()
    with pytest.raises(StoreMissing, match="none of the router's tables"):
        await SQLiteStore(database).open(create=False)
    store = SQLiteStore(database)
    with pytest.raises(StoreMissing):
        await store.open(create=False)


async def test_an_existing_sqlite_store_opens_without_create(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    made = SQLiteStore(database)
    await made.open()
    await made.close()
    store = SQLiteStore(database, owns_leases=False)
    await store.open(create=False)
    try:
        assert await store.list_deliveries() == []
    finally:
        await store.close()


async def test_a_memory_store_is_there_once_made() -> None:
    name = f"memory://{uuid.uuid4().hex}"
    with pytest.raises(StoreMissing, match=f"no store at {name}"):
        await open_store(name).open(create=False)
    made = open_store(name)
    await made.open()
    await made.close()
    store = open_store(name)
    await store.open(create=False)
    await store.close()


@pytest.mark.postgres
async def test_a_postgresql_schema_without_the_tables_is_no_store() -> None:
    import asyncpg

    async with fresh_postgres_schema("missing") as url:
        store = open_store(url, serving=False)
        with pytest.raises(StoreMissing, match="none of the router's tables") as raised:
            await store.open(create=False)
        assert "postgres@" not in str(raised.value)
        connection = await asyncpg.connect(url)
        try:
            tables = await connection.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        finally:
            await connection.close()
        assert tables == [], "nothing created"

        made = open_store(url)
        await made.open()
        await made.close()
        store = open_store(url, serving=False)
        await store.open(create=False)
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_database_that_does_not_exist_is_no_store() -> None:
    from tests.integration.conftest import _postgres_url

    base = _postgres_url()
    absent = urlsplit(base)._replace(path=f"/absent_{uuid.uuid4().hex[:8]}").geturl()
    with pytest.raises(StoreMissing, match="the database does not exist"):
        await open_store(absent, serving=False).open(create=False)
