"""The check before each send (`Store.still_leased`) against a real store: answered
without a read while nothing can have taken the lease, and still False for a delivery
whose caller was forgotten, by this process or by another one on the same database (the
CLI, another replica), which the lanes learn from the erasure mark. SQLite files and
PostgreSQL; the lease memory's clock is a number the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.operators import ForgetRequest
from router.operators.forget import erasure_of
from router.store import Store, open_store
from router.store.leases import TRUSTED_SECONDS
from router.store.queue import QueueStore
from router.store.sqlite import SQLiteStore
from tests.integration.conftest import fresh_postgres_schema
from tests.integration.test_store_forget import CALLER, NOW, SOMEONE, call, single


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def two_processes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[QueueStore, QueueStore]]:
    """The serving process's store and another process's (a CLI command) on one database."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            serving: Store = SQLiteStore(tmp_path / "router.db")
            other: Store = SQLiteStore(tmp_path / "router.db", owns_leases=False)
        else:
            url = await stack.enter_async_context(fresh_postgres_schema("leases"))
            serving, other = open_store(url), open_store(url, serving=False)
        for store in (serving, other):
            await store.open()
            stack.push_async_callback(store.close)
        assert isinstance(serving, QueueStore) and isinstance(other, QueueStore)
        yield serving, other


def counting_reads(store: QueueStore) -> list[int]:
    reads = [0]
    read = store.connector.read

    async def counted(script: Callable[[], Any]) -> Any:
        reads[0] += 1
        return await read(script)

    store.connector.read = counted  # type: ignore[method-assign]
    return reads


def forget_caller() -> Any:
    return erasure_of(ForgetRequest(CALLER))


async def test_a_lease_just_taken_is_answered_without_a_read(
    two_processes: tuple[QueueStore, QueueStore],
) -> None:
    serving, _ = two_processes
    serving.leases.clock = Clock()
    await serving.ingest(call("mine", NOW, deliveries=(single("d1"),)))
    [claimed] = await serving.claim("ops", 1, "w1", 30.0, NOW + 1)
    reads = counting_reads(serving)

    assert await serving.still_leased(claimed.id, "w1")
    assert reads == [0]
    assert not await serving.still_leased(claimed.id, "w2")  # not its lease: the store says
    assert reads[0] >= 1


async def test_an_erasure_here_stops_the_send_at_once(
    two_processes: tuple[QueueStore, QueueStore],
) -> None:
    serving, _ = two_processes
    serving.leases.clock = Clock()
    await serving.ingest(call("mine", NOW, deliveries=(single("d1"),)))
    [claimed] = await serving.claim("ops", 1, "w1", 30.0, NOW + 1)

    await serving.forget(forget_caller())

    assert not await serving.still_leased(claimed.id, "w1")


async def test_an_erasure_by_another_process_reaches_leases_already_taken(
    two_processes: tuple[QueueStore, QueueStore],
) -> None:
    serving, cli = two_processes
    serving.leases.clock = clock = Clock()
    await serving.ingest(call("mine-1", NOW, deliveries=(single("d1"),)))
    await serving.ingest(call("mine-2", NOW, deliveries=(single("d2"),)))
    await serving.ingest(call("other", NOW, from_number=SOMEONE, deliveries=(single("d3", "crm"),)))
    held = await serving.claim("ops", 2, "w1", 30.0, NOW + 1)
    assert {d.id for d in held} == {"d1", "d2"}

    counts = await cli.forget(forget_caller())
    assert counts.pending_cancelled == 2

    # The next claim of any sink reads the erasure's mark in its own statement.
    await serving.claim("crm", 1, "w1", 30.0, NOW + 2)
    assert not await serving.still_leased("d1", "w1")
    # Without a claim, a mark read longer than TRUSTED_SECONDS ago is not trusted.
    serving.leases.read_mark(serving.leases.mark, clock.now)
    serving.leases.claimed(["d2"], "w1", 30.0, serving.leases.before(), serving.leases.mark)
    clock.now += TRUSTED_SECONDS + 0.01
    assert not await serving.still_leased("d2", "w1")


async def test_leases_written_at_ingest_are_answered_from_memory_once_a_mark_was_read(
    two_processes: tuple[QueueStore, QueueStore],
) -> None:
    from router.store import NewDelivery

    serving, cli = two_processes
    serving.leases.clock = Clock()
    await serving.claim("ops", 1, "w1", 30.0, NOW)  # nothing due: no mark read yet
    quick = NewDelivery("d-quick", "ops", "rule-a", None, "w1", NOW + 30)
    await serving.ingest(call("mine", NOW, deliveries=(quick,)))
    assert await serving.still_leased("d-quick", "w1")  # read: no mark was known
    assert serving.leases.mark_read_at is not None

    again = NewDelivery("d-quick-2", "ops", "rule-a", None, "w1", NOW + 30)
    await serving.ingest(call("mine-2", NOW, deliveries=(again,)))
    reads = counting_reads(serving)
    assert await serving.still_leased("d-quick-2", "w1")
    assert reads == [0]

    third = NewDelivery("d-quick-3", "ops", "rule-a", None, "w1", NOW + 30)
    await serving.ingest(call("mine-3", NOW, deliveries=(third,)))
    await cli.forget(forget_caller())
    await serving._read_mark()  # the background read of the mark, as sends trigger it
    assert not await serving.still_leased("d-quick-3", "w1")
