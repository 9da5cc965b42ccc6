"""What one process knows of the leases it took (`LeaseMemory`), so that the check made
just before each send (`Store.still_leased`) needs no read of the store when nothing can
have taken the lease away.

Only two things take a live lease from its holder: an erasure (forgetting a caller
deletes the caller's deliveries and releases the leases of the calls it rewrites,
`router.store.erasure`), and the lease running out, after which another worker may
claim the delivery. So a lease is still held when
- no erasure ran in this process since it began (counted here, `erasing`);
- no erasure ran in another process (the CLI, another replica) either: every erasure
  that changed anything leaves a new random mark in the store (`q.MARK_ERASURE`), read
  by every claim in its own statement and by the reads below; the mark known when the
  lease began is the mark read last, and that read is at most `TRUSTED_SECONDS` old;
- it began less than half its length ago.

Otherwise the store is read, as before (`q.STILL_LEASED`, with the mark). While sends
go on, the mark is read again in the background every `REFRESH_SECONDS`, so checks
never wait for it. An erasure from another process is therefore seen by sends that
start at most `TRUSTED_SECONDS` (plus that read's own time) after it committed, not
only by those whose lease began after it; one in this process, at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

TRUSTED_SECONDS = 0.2
REFRESH_SECONDS = TRUSTED_SECONDS / 2
# Leases not checked (muted, deferred or killed before a send) are forgotten in bulk.
MAX_REMEMBERED = 10_000


@dataclass(slots=True)
class _Lease:
    owner: str
    erasures_here: int  # `LeaseMemory.erasures_here` when the lease began
    mark: str | None  # the store's erasure mark known when it began
    trusted_until: float  # monotonic: half its length after it began


@dataclass(frozen=True, slots=True)
class Before:
    """What was known just before a write that takes leases was asked for."""

    asked_at: float
    erasures_here: int
    mark: str | None
    mark_known: bool


class LeaseMemory:
    """The leases this process took and has not checked yet, and what it knows of erasures."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.erasures_here = 0
        self.mark: str | None = None
        self.mark_read_at: float | None = None  # when the read that gave `mark` was asked
        self._leases: dict[str, _Lease] = {}

    def erasing(self) -> None:
        """An erasure in this process begins, or ends (called for both)."""
        self.erasures_here += 1

    def before(self) -> Before:
        return Before(self.clock(), self.erasures_here, self.mark, self.mark_read_at is not None)

    def read_mark(self, mark: str | None, asked_at: float) -> None:
        """The store's mark, as read by a statement asked for at `asked_at`."""
        if self.mark_read_at is None or asked_at >= self.mark_read_at:
            self.mark, self.mark_read_at = mark, asked_at

    def claimed(
        self, ids: Iterable[str], owner: str, seconds: float, before: Before, mark: str | None
    ) -> None:
        """Leases taken by a claim that read `mark` in its own statement."""
        self.read_mark(mark, before.asked_at)
        self._remember(ids, owner, seconds, before, mark)

    def written(self, leases: Iterable[tuple[str, str, float]], before: Before) -> None:
        """Deliveries written already leased, `(id, owner, seconds)`: the mark known
        before their write was asked for is the one to compare (a mark read later that
        differs sends their check to the store, which answers)."""
        if not before.mark_known:
            return
        for delivery_id, owner, seconds in leases:
            self._remember((delivery_id,), owner, seconds, before, before.mark)

    def _remember(
        self, ids: Iterable[str], owner: str, seconds: float, before: Before, mark: str | None
    ) -> None:
        if len(self._leases) >= MAX_REMEMBERED:
            self._leases.clear()
        trusted_until = before.asked_at + seconds / 2
        for delivery_id in ids:
            self._leases[delivery_id] = _Lease(owner, before.erasures_here, mark, trusted_until)

    def still_held(self, delivery_id: str, owner: str) -> bool:
        """True when `owner` surely still holds the lease; False when only the store can
        tell. Each lease is answered for once (a second ask goes to the store)."""
        lease = self._leases.pop(delivery_id, None)
        if lease is None or lease.owner != owner or lease.erasures_here != self.erasures_here:
            return False
        now = self.clock()
        return (
            now < lease.trusted_until
            and lease.mark == self.mark
            and self.mark_read_at is not None
            and now - self.mark_read_at <= TRUSTED_SECONDS
        )

    def mark_due(self) -> bool:
        """Whether the mark should be read again (in the background)."""
        return self.mark_read_at is None or self.clock() - self.mark_read_at > REFRESH_SECONDS
