"""Fixtures for integration tests: stores on real databases.

`store_factory` is parametrized by store kind; the contract suite runs once per
kind. A PostgreSQL run needs ROUTER_TEST_POSTGRES_URL and is skipped (with the
reason) when it is unset or unreachable, unless ROUTER_REQUIRE_POSTGRES=1, which
turns the skip into a failure (CI).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest

from router.engine.parse_workers import ParseWorkers
from router.store import Store

StoreFactory = Callable[[], Awaitable[Store]]
"""Opens a new `Store` object on the test's database; call again to reopen the same data."""

STORE_KINDS = [
    "sqlite",
    "memory",  # the in-memory fake for unit tests must keep the same contract
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


def _unavailable(reason: str) -> None:
    if os.environ.get("ROUTER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"ROUTER_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def _postgres_url() -> str:
    url = os.environ.get("ROUTER_TEST_POSTGRES_URL", "")
    if not url:
        _unavailable("ROUTER_TEST_POSTGRES_URL is not set")
    if importlib.util.find_spec("router.store.postgres") is None:
        _unavailable("router.store.postgres is not written yet")
    return url


@asynccontextmanager
async def fresh_postgres_schema(prefix: str) -> AsyncIterator[str]:
    """A store URL whose connections live in a new, empty schema, dropped afterwards."""
    import asyncpg

    base = _postgres_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
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


def _store_for(kind: str, tmp_path: Path, postgres_url: str = "") -> Callable[[], Store]:
    if kind == "sqlite":
        from router.store.sqlite import SQLiteStore

        database = tmp_path / "store" / "router.db"
        return lambda: SQLiteStore(database)
    if kind == "memory":
        from router.store import open_store

        name = f"memory://{uuid.uuid4().hex}"  # named: kept across close and reopen
        return lambda: open_store(name)
    if kind == "postgresql":
        from router.store import open_store

        return lambda: open_store(postgres_url)
    raise AssertionError(f"unknown store kind {kind}")


@pytest.fixture(params=STORE_KINDS)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    async with contextlib.AsyncExitStack() as stack:
        postgres_url = ""
        if request.param == "postgresql":  # a schema of its own: the database is shared
            postgres_url = await stack.enter_async_context(fresh_postgres_schema("contract"))
        async for factory in _opening_stores(_store_for(request.param, tmp_path, postgres_url)):
            yield factory


async def _opening_stores(make_store: Callable[[], Store]) -> AsyncIterator[StoreFactory]:
    opened: list[Store] = []

    async def open_new() -> Store:
        store = make_store()
        await store.open()
        opened.append(store)
        return store

    yield open_new
    for store in opened:
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()


@pytest.fixture
async def workers() -> AsyncIterator[ParseWorkers]:
    """A pool of two parse worker processes (`router.engine.parse_workers`), stopped
    after the test."""
    pool = ParseWorkers(2)
    await pool.start()
    yield pool
    pool.close()


# The message brokers on this machine (DESIGN.md section 18). A test needing one skips,
# saying why, when it is not there, unless ROUTER_REQUIRE_BROKERS=1 (CI) fails it.
RABBITMQ_ADDRESS = ("127.0.0.1", 5672)
RABBITMQ_CREDENTIALS = "guest:guest"
REDIS_ADDRESS = ("127.0.0.1", 6379)
NATS_ADDRESS = ("127.0.0.1", 4222)


def broker_unavailable(reason: str) -> NoReturn:
    if os.environ.get("ROUTER_REQUIRE_BROKERS") == "1":
        pytest.fail(f"ROUTER_REQUIRE_BROKERS=1 but {reason}")
    pytest.skip(reason)


async def require_rabbitmq() -> tuple[str, int]:
    """RabbitMQ's address, once a guest login there works."""
    import aio_pika

    host, port = RABBITMQ_ADDRESS
    try:
        connection = await aio_pika.connect(
            f"amqp://{RABBITMQ_CREDENTIALS}@{host}:{port}/", timeout=5
        )
    except Exception as error:
        broker_unavailable(f"RabbitMQ at {host}:{port} is unreachable: {error!r}")
    await connection.close()
    return RABBITMQ_ADDRESS


async def require_redis() -> tuple[str, int]:
    """Redis's address, once it answers a PING."""
    import redis.asyncio

    host, port = REDIS_ADDRESS
    client = redis.asyncio.Redis(host=host, port=port, socket_connect_timeout=5)
    try:
        await client.ping()
    except Exception as error:
        broker_unavailable(f"Redis at {host}:{port} is unreachable: {error!r}")
    finally:
        await client.aclose()
    return REDIS_ADDRESS


async def require_nats() -> tuple[str, int]:
    """NATS's address, once it answers with JetStream enabled."""
    import nats

    host, port = NATS_ADDRESS
    try:
        client = await nats.connect(
            f"nats://{host}:{port}", connect_timeout=5, allow_reconnect=False
        )
    except Exception as error:
        broker_unavailable(f"NATS at {host}:{port} is unreachable: {error!r}")
    try:
        await client.jetstream().account_info()
    except Exception as error:
        broker_unavailable(f"NATS at {host}:{port} has no JetStream: {error!r}")
    finally:
        await client.close()
    return NATS_ADDRESS


@pytest.fixture
async def rabbitmq_address() -> tuple[str, int]:
    return await require_rabbitmq()


@pytest.fixture
async def redis_address() -> tuple[str, int]:
    return await require_redis()


@pytest.fixture
async def nats_address() -> tuple[str, int]:
    return await require_nats()
