"""The SQLite store's WAL on a small volume (a real tmpfs, mounted by root: CI runs as
root; elsewhere these tests skip): checkpoints when idle, by time and when space runs
low keep the WAL from filling the volume, and a write refused for space gets a
TRUNCATE checkpoint and a second try (router.store.checkpoints)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from router.engine.records import new_delivery_id
from router.store import AttemptRecord, IngestRecord, NewDelivery
from router.store.checkpoints import NEVER, CheckpointPolicy
from router.store.sqlite import SQLiteStore
from tests.conftest import fresh_event, sample
from tests.faults import fill, small_volume
from tests.service import post_event, running_service, wait_for

SMALL_CALL = json.dumps(sample("failed-outbound")).encode()


async def write_calls(store: SQLiteStore, count: int, start: int = 0) -> int:
    """Store `count` small calls one at a time, each with a delivery recorded as
    delivered (two commits, as the router's fast path makes them); how many went in."""
    written = 0
    for number in range(start, start + count):
        event_id = str(uuid.uuid4())
        delivery = NewDelivery(
            new_delivery_id(), "crm", "all", lease_owner="test", lease_until=time.time() + 30
        )
        payload = SMALL_CALL.replace(b'"id": "', f'"id": "{event_id}-'.encode(), 1)
        call = IngestRecord(
            event_id,
            payload,
            time.time(),
            [delivery],
            "FAILED",
            "OUTBOUND",
            agent_id=f"agent-{number % 200}",
            organization_id=f"org-{number % 20}",
        )
        try:
            await store.ingest(call)
            attempt = AttemptRecord(1, time.time(), 0.01, "delivered", 200)
            await store.finish(delivery.id, "test", attempt)
        except Exception:
            continue
        written += 1
    return written


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_the_wal_is_cut_to_nothing_once_the_writer_is_idle(tmp_path: Path) -> None:
    db = tmp_path / "router.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        assert await write_calls(store, 20) == 20
        assert wal_size(db) > 0
        await wait_for(lambda: wal_size(db) == 0)
        assert await write_calls(store, 1) == 1  # and the store goes on as before
    finally:
        await store.close()


async def test_a_writer_that_never_idles_checkpoints_by_time(tmp_path: Path) -> None:
    """Writes without a pause: no idle checkpoint comes, the one by time does."""
    db = tmp_path / "router.db"
    policy = CheckpointPolicy(idle_after=float("inf"), every=0.05, low_space=False)
    store = SQLiteStore(db, checkpoints=policy)
    await store.open()
    try:
        began = time.monotonic()
        while time.monotonic() - began < 0.5:
            assert await write_calls(store, 5) == 5
        assert store.connector.checkpoints_done["time"] >= 1
        assert store.connector.checkpoints_done["idle"] == 0
    finally:
        await store.close()


async def test_a_service_on_a_small_volume_takes_calls_that_would_overflow_it(
    tmp_path: Path, write_rules, receiver
) -> None:
    """The issue's 8 MiB volume: each call its own commit wrote ~110 KB of WAL and the
    WAL filled the volume after 77 calls. 300 calls routed and delivered, all taken."""
    volume = tmp_path / "volume"
    with small_volume(volume, "8m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        rules = write_rules(
            f'version: 1\nsinks: {{crm: {{type: http, url: "{receiver.url()}"}}}}\n'
            "rules: [{name: all, to: [crm]}]\n"
        )
        async with running_service(rules, volume / "router.db") as client:
            sent = []
            for _ in range(300):
                event = fresh_event()
                answer = await post_event(client, event)
                assert answer.status == 200, await answer.text()
                sent.append(event["id"])
            await wait_for(lambda: set(sent) <= set(receiver.delivered_ids()), limit=30)


async def test_a_write_refused_for_space_gets_a_truncating_checkpoint_and_a_second_try(
    tmp_path: Path,
) -> None:
    """No checkpoint but SQLite's own by size (40 MB, never reached here): the WAL fills
    a 4 MiB volume. The database file has free pages (calls written and purged before),
    so a checkpoint needs no room to grow it: each refused write is checkpointed away
    and written again."""
    volume = tmp_path / "volume"
    with small_volume(volume, "4m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        db = volume / "router.db"
        store = SQLiteStore(db, checkpoints=CheckpointPolicy(idle_after=0.05))
        await store.open()
        try:
            written_by = []
            for start in range(0, 600, 100):
                assert await write_calls(store, 100, start) == 100
                written_by.append(time.time())
            # Purged a hundred at a time: all 600 in one transaction could itself fill the
            # volume with WAL before the idle checkpoint came.
            for before in written_by:
                await wait_for(lambda: wal_size(db) == 0)
                assert await store.purge(before) == 100
            await wait_for(lambda: wal_size(db) == 0)
        finally:
            await store.close()
        store = SQLiteStore(db, checkpoints=NEVER)
        await store.open()
        try:
            assert await write_calls(store, 150) == 150
            assert store.connector.checkpoints_done["refused write"] >= 1
        finally:
            await store.close()


async def test_a_store_on_a_full_volume_takes_calls_again_once_space_is_freed(
    tmp_path: Path,
) -> None:
    volume = tmp_path / "volume"
    with small_volume(volume, "4m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        db = volume / "router.db"
        store = SQLiteStore(db)
        await store.open()
        try:
            assert await write_calls(store, 10) == 10
            filler = fill(volume)
            assert await write_calls(store, 20) < 20  # the volume is full
            filler.unlink()
            assert await write_calls(store, 100) == 100
        finally:
            await store.close()
