"""A budget of bytes shared by the requests being parsed at once: a burst waits its turn
(first come, first served) instead of growing memory, and nothing is refused."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """At most `capacity` bytes held at once. A request larger than the whole budget
    may still go, alone, so no size waits for ever."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a byte budget needs a capacity of at least 1")
        self.capacity = capacity
        self.available = capacity
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        share = self._share(size)
        await self._take(share)
        try:
            yield
        finally:
            self._give_back(share)

    def take_now(self, size: int) -> int | None:
        """`size`'s share taken at once when it would not wait (nobody waiting, room
        left), else None; give it back with `give_back`. What `hold` does for work that
        does not await in between, without its context manager's cost."""
        share = self._share(size)
        if self._waiting or share > self.available:
            return None
        self.available -= share
        return share

    def give_back(self, share: int) -> None:
        self._give_back(share)

    def _share(self, size: int) -> int:
        return min(max(size, 1), self.capacity)

    async def _take(self, share: int) -> None:
        if not self._waiting and share <= self.available:
            self.available -= share
            return
        turn = asyncio.get_running_loop().create_future()
        entry = (share, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._give_back(share)  # granted just as it was cancelled
            else:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                self._wake()  # those behind it may fit now
            raise

    def _give_back(self, share: int) -> None:
        self.available += share
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._waiting[0][0] <= self.available:
            share, turn = self._waiting.popleft()
            if turn.done():
                continue
            self.available -= share
            turn.set_result(None)
