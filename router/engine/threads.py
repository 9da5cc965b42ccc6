"""Slack threads' parents in the store (`thread_by`, DESIGN.md section 16): the
`ThreadRegistry` the app gives the sinks through `SinkResources.threads`.

Exactly-once-ish under concurrency: within the process, one asyncio lock per (sink,
thread key) serializes that key's sends, so the second of two racing alerts waits for
the first to post and record its parent and then replies to it; across replicas the
parent is recorded insert-if-absent (`SlackThreads.start_thread`), so one replica's
parent wins and the other's message stands alone (two parents, never a lost alert).
The locks are held only while a key's sends are in flight and dropped after.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from router.store import SlackThread, SlackThreads
from sinks.base import ThreadParent


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class StoreThreads:
    """A `sinks.base.ThreadRegistry` over the store, on the engine's clock."""

    def __init__(self, store: SlackThreads, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._locks: dict[tuple[str, str], _KeyLock] = {}

    @asynccontextmanager
    async def hold(self, sink: str, thread_key: str) -> AsyncIterator[None]:
        key = (sink, thread_key)
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._locks.pop(key, None)

    async def current(self, sink: str, thread_key: str, lasts: float) -> ThreadParent | None:
        found = await self.store.thread(sink, thread_key, self.clock() - lasts)
        if found is None:
            return None
        return ThreadParent(found.channel, found.ts, _message(found.parent), found.replies)

    async def start(self, sink: str, thread_key: str, parent: ThreadParent, lasts: float) -> bool:
        now = self.clock()
        text = json.dumps(dict(parent.message), ensure_ascii=False, separators=(",", ":"))
        thread = SlackThread(sink, thread_key, parent.channel, parent.ts, text, 0, now)
        return await self.store.start_thread(thread, now - lasts)

    async def replied(self, sink: str, thread_key: str, ts: str) -> int | None:
        return await self.store.count_thread_reply(sink, thread_key, ts)

    async def gone(self, sink: str, thread_key: str, ts: str) -> None:
        await self.store.end_thread(sink, thread_key, ts)


def _message(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
