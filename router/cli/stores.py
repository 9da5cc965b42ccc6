"""The store as the commands that only read or change one see it (DESIGN.md section 3):
they open an existing store and never create one, and say in one line why a store
cannot be used.

Exit status: 2 where there is no store (naming where they looked), 1 when it cannot be
opened or used."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from router.store import Store, StoreError, StoreMissing, open_store

NO_STORE = 2


@asynccontextmanager
async def existing_store(url: str) -> AsyncIterator[Store]:
    """The store at `url`, opened beside any running server (its leases left alone);
    `StoreMissing` where there is none."""
    store = open_store(url, serving=False)
    await store.open(create=False)
    try:
        yield store
    finally:
        await store.close()


def store_failed(command: str, error: Exception) -> int:
    """One line on stderr for a store that is missing, cannot be opened or failed (its
    message names the store without credentials); the exit status."""
    reason = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, StoreMissing):
        print(
            f"revring-router {command}: {reason}; `revring-router serve` with this store"
            " creates it, or point --store (or ROUTER_STORE) at an existing one",
            file=sys.stderr,
        )
        return NO_STORE
    print(f"revring-router {command}: {reason}", file=sys.stderr)
    return 1


async def _run(url: str, work: Callable[[Store], Awaitable[int]]) -> int:
    async with existing_store(url) as store:
        return await work(store)


def with_existing_store(command: str, url: str, work: Callable[[Store], Awaitable[int]]) -> int:
    """Run `work` on the existing store at `url`; its exit status, or the store's failure's."""
    try:
        return asyncio.run(_run(url, work))
    except (StoreError, ValueError) as error:
        return store_failed(command, error)
