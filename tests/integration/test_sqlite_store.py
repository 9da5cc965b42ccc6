"""What only the SQLite store promises: URLs and files, WAL and fsync, one owner
(leases released on open), group commit, per-operation failures, and durability
across `kill -9`."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import sys
import uuid
from pathlib import Path

import pytest

from router.store import (
    IngestRecord,
    IngestResult,
    NewDelivery,
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreOpenError,
    open_store,
)
from router.store.migrations import MIGRATIONS
from router.store.sqlite import SQLiteStore

NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def record(event_id: str | None = None, sinks: tuple[str, ...] = ("slack",)) -> IngestRecord:
    event_id = event_id or str(uuid.uuid4())
    return IngestRecord(
        event_id, b"{}", NOW, [NewDelivery(f"{event_id}:{sink}", sink, "r") for sink in sinks]
    )


@pytest.fixture
async def sqlite_store(tmp_path: Path):
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    yield store
    await store.close()


# --- URLs and files ----------------------------------------------------------------------


async def test_relative_url_is_resolved_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/nested/router.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "data" / "nested" / "router.db"

    await store.open()
    await store.close()
    assert (tmp_path / "data" / "nested" / "router.db").is_file()


async def test_absolute_url_creates_parent_directories(tmp_path: Path) -> None:
    database = tmp_path / "a" / "b" / "router.db"
    store = SQLiteStore.from_url(f"sqlite:///{database}")
    assert str(database).startswith("/")
    assert store.path == database

    await store.open()
    await store.close()
    assert database.is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/router.db", "x.db"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        SQLiteStore.from_url(url)


async def test_unopenable_file_is_named_in_the_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    store = SQLiteStore(blocker / "router.db")

    with pytest.raises(StoreOpenError, match=str(blocker / "router.db")):
        await store.open()


async def test_file_that_is_not_a_database_is_named_in_the_error(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    database.write_bytes(b"this is not SQLite" * 100)

    with pytest.raises(StoreOpenError, match=str(database)):
        await SQLiteStore(database).open()


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    store = SQLiteStore(database)
    await store.open()
    await store.close()
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    connection.close()

    with pytest.raises(StoreOpenError, match="newer"):
        await SQLiteStore(database).open()


async def test_schema_is_migrated_once_and_wal_is_on(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    for _ in range(2):
        store = SQLiteStore(database)
        await store.open()
        await store.close()

    connection = sqlite3.connect(database)
    try:
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
        (journal_mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        connection.close()
    assert versions == [(migration.version,) for migration in MIGRATIONS]
    assert journal_mode == "wal"
    assert {"events", "deliveries", "attempts", "digest_members", "schema_version"} <= tables


async def test_writer_connection_is_synchronous_full_with_foreign_keys(sqlite_store) -> None:
    settings = await sqlite_store._write(
        lambda connection: (
            connection.execute("PRAGMA synchronous").fetchone()[0],
            connection.execute("PRAGMA foreign_keys").fetchone()[0],
        )
    )
    assert settings == (2, 1)  # 2 is FULL


# --- one owner ---------------------------------------------------------------------------


async def test_reopening_releases_every_lease(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    await store.ingest(record("call-1"))
    assert len(await store.claim("slack", 10, "crashed-worker", 3600, NOW)) == 1
    await store.close()

    reopened = SQLiteStore(tmp_path / "router.db")
    await reopened.open()
    try:
        claimed = await reopened.claim("slack", 10, "new-worker", 30, NOW + 1)
    finally:
        await reopened.close()
    assert [c.id for c in claimed] == ["call-1:slack"]


async def test_next_due_at_counts_a_leased_delivery_as_due_when_its_lease_ends(
    sqlite_store,
) -> None:
    await sqlite_store.ingest(record("call-1"))
    await sqlite_store.claim("slack", 10, "w1", 30, NOW + 5)

    assert await sqlite_store.next_due_at("slack") == NOW + 35


# --- group commit and failures -----------------------------------------------------------


async def test_concurrent_ingests_share_transactions(sqlite_store) -> None:
    counts = sqlite_store.connector.counts
    commits_before = counts.commits
    operations_before = counts.committed_operations

    results = await asyncio.gather(*(sqlite_store.ingest(record()) for _ in range(100)))

    assert results == [IngestResult("accepted", 1)] * 100
    assert counts.committed_operations - operations_before == 100
    assert counts.commits - commits_before < 100
    assert counts.largest_batch > 1


async def test_a_failing_ingest_costs_only_its_own_caller(sqlite_store) -> None:
    await sqlite_store.ingest(record("call-0"))
    clashing = IngestRecord("call-x", b"{}", NOW, [NewDelivery("call-0:slack", "slack", "r")])
    good = [record(f"call-{i}") for i in range(1, 20)]
    counts = sqlite_store.connector.counts
    commits_before = counts.commits

    results = await asyncio.gather(
        *(sqlite_store.ingest(r) for r in [*good[:10], clashing, *good[10:]]),
        return_exceptions=True,
    )

    assert isinstance(results[10], StoreConflict)
    assert isinstance(results[10].__cause__, sqlite3.IntegrityError)
    assert [r for r in results if not isinstance(r, Exception)] == [
        IngestResult("accepted", 1)
    ] * 19
    assert len(await sqlite_store.list_deliveries()) == 20
    assert counts.commits - commits_before < len(good)  # the others still shared commits
    assert await sqlite_store.ingest(record("call-x")) == IngestResult("accepted", 1)


async def test_an_operation_that_breaks_the_batch_transaction_costs_only_its_caller(
    sqlite_store,
) -> None:
    def ends_the_transaction(connection: sqlite3.Connection) -> None:
        connection.execute("ROLLBACK")

    good = [record() for _ in range(10)]
    results = await asyncio.gather(
        *(sqlite_store.ingest(r) for r in good[:5]),
        sqlite_store._write(ends_the_transaction),
        *(sqlite_store.ingest(r) for r in good[5:]),
        return_exceptions=True,
    )

    assert isinstance(results[5], StoreError)
    assert [r for r in results if not isinstance(r, Exception)] == [
        IngestResult("accepted", 1)
    ] * 10
    assert len(await sqlite_store.list_deliveries()) == 10


async def test_close_finishes_queued_writes_then_refuses_new_ones(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    pending = [asyncio.ensure_future(store.ingest(record())) for _ in range(50)]
    await asyncio.sleep(0)  # let every ingest reach the writer's queue

    await store.close()

    assert [task.result() for task in pending] == [IngestResult("accepted", 1)] * 50
    with pytest.raises(StoreClosed):
        await store.ingest(record())
    with pytest.raises(StoreClosed):
        await store.ping()
    await store.close()

    reopened = SQLiteStore(tmp_path / "router.db")
    await reopened.open()
    try:
        assert len(await reopened.list_deliveries(limit=100)) == 50
    finally:
        await reopened.close()


# --- durability --------------------------------------------------------------------------

INGEST_FOREVER = """
import asyncio, sys, time, uuid
from router.store import IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore

async def ingest_one(store):
    event_id = str(uuid.uuid4())
    sinks = [NewDelivery(f"{event_id}:{sink}", sink, "r") for sink in ("slack", "crm")]
    await store.ingest(IngestRecord(event_id, b"{}", time.time(), sinks))
    print(event_id, flush=True)

async def main():
    store = SQLiteStore(sys.argv[1])
    await store.open()
    while True:
        await asyncio.gather(*(ingest_one(store) for _ in range(8)))

asyncio.run(main())
"""


@pytest.mark.slow
async def test_every_acknowledged_ingest_survives_sigkill(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        INGEST_FOREVER,
        str(database),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 300:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "the ingesting process ended before it was killed"
            acknowledged.append(line.decode().strip())
        process.send_signal(signal.SIGKILL)
        rest = await asyncio.wait_for(process.stdout.read(), timeout=60)
        acknowledged.extend(rest.decode().split())
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()

    store = SQLiteStore(database)
    await store.open()
    try:
        persisted = await store.list_deliveries(limit=1_000_000)
    finally:
        await store.close()
    persisted_ids = {d.id for d in persisted}
    missing = [
        event_id
        for event_id in acknowledged
        if {f"{event_id}:slack", f"{event_id}:crm"} - persisted_ids
    ]
    assert missing == []


async def test_a_second_opener_that_does_not_serve_leaves_the_leases_alone(tmp_path):
    from router.store import IngestRecord, NewDelivery
    from router.store.sqlite import SQLiteStore

    server = SQLiteStore(tmp_path / "shared.db")
    await server.open()
    try:
        record = IngestRecord("call-1", b"{}", 1000.0, [NewDelivery("d1", "crm", "r")])
        await server.ingest(record)
        [claimed] = await server.claim("crm", 10, "server", 30.0, 1000.0)
        cli = SQLiteStore(tmp_path / "shared.db", owns_leases=False)
        await cli.open()
        await cli.close()
        assert await server.claim("crm", 10, "someone-else", 30.0, 1001.0) == []
        assert claimed.id == "d1"
    finally:
        await server.close()


# --- file permissions (the file holds phone numbers and transcripts) ----------------------


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
async def test_a_new_store_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    database = tmp_path / "data" / "nested" / "router.db"
    store = SQLiteStore(database)
    await store.open()
    try:
        await store.ingest(record())
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert [mode_of(path) for path in (database, wal, shm)] == [0o600] * 3
    finally:
        await store.close()
    assert mode_of(tmp_path / "data") == 0o700
    assert mode_of(tmp_path / "data" / "nested") == 0o700


@pytest.mark.usefixtures("umask_022")
async def test_an_existing_store_readable_by_others_is_tightened_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "router.db"
    store = SQLiteStore(database)
    await store.open()
    await store.close()
    database.chmod(0o644)

    reopened = SQLiteStore(database)
    await reopened.open()
    try:
        await reopened.ingest(record())
        assert mode_of(database) == 0o600
        assert mode_of(Path(f"{database}-wal")) == 0o600
    finally:
        await reopened.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(database) in warnings[0] and "0644" in warnings[0]
