"""Console sessions in every kind of store: stored by their id's hash, read back until they
expire, ended by signing out (for every process that shares the store), purged once
expired."""

from __future__ import annotations

import pytest

from router.store import SessionRecord, Store

T = 1_800_000_000.0


def session(id_hash: str, expires_at: float = T + 3600) -> SessionRecord:
    return SessionRecord(
        id_hash, "alice", "viewer", "password", "mac", f"csrf-{id_hash}", T, expires_at
    )


async def test_a_session_is_read_back_until_it_expires(store: Store) -> None:
    await store.start_session(session("a"))
    assert await store.session("a", T + 10) == session("a")
    assert await store.session("a", T + 3600) is None
    assert await store.session("unknown", T) is None


async def test_signing_out_ends_a_session_for_every_reader(store_factory, request) -> None:
    if request.node.callspec.params["store_factory"] == "memory":
        pytest.skip("two in-memory stores open at once do not share their data")
    first = await store_factory()
    second = await store_factory()  # another process on the same data
    await first.start_session(session("a"))
    await first.start_session(session("b"))
    assert await second.session("a", T) is not None
    assert await second.end_session("a")
    assert not await second.end_session("a")
    assert await first.session("a", T) is None
    assert await first.session("b", T) is not None


async def test_expired_sessions_are_purged(store: Store) -> None:
    await store.start_session(session("old", expires_at=T + 10))
    await store.start_session(session("new", expires_at=T + 1000))
    assert await store.purge_sessions(T + 10) == 1
    assert await store.session("new", T + 11) is not None
