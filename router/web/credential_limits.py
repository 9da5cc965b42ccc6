"""One limit on failed credentials per client address, shared by every way in that takes a
secret (the console's sign-in, bearer tokens on `/admin/*`): `allowed` failures in any
`window` seconds, then the address's attempts are refused (429 with `Retry-After`,
whatever they present) until its oldest failure ages out.

A burst (failures and refused attempts from one address with no `window`-long pause
between them) is logged once, when it first locks the address. The webhook's
`x-api-key` is not counted: RevRing's calls come from a few addresses, and a 429 there
would lose calls that RevRing does not retry.

`CredentialLimiter` is pure apart from its clock (monotonic unless given);
`record_failure` logs what it decides.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("router.credentials")

FAILURES_ALLOWED = 5  # per address, in any FAILURE_WINDOW seconds
FAILURE_WINDOW = 60.0


@dataclass(frozen=True)
class Lockout:
    """An address that has just been locked, at the start of a burst."""

    address: str
    kinds: dict[str, int]  # what its failures in the window presented, and how many
    seconds: float  # until it may try again


@dataclass
class _Address:
    failures: deque[tuple[float, str]] = field(default_factory=deque)  # (time, kind)
    reported_until: float = -math.inf  # its burst's lockout is logged; it goes on till then


class CredentialLimiter:
    """Counts failed credentials per client address in a sliding window."""

    def __init__(
        self,
        allowed: int = FAILURES_ALLOWED,
        window: float = FAILURE_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,  # bounds memory under a spray of addresses
    ) -> None:
        self.allowed = allowed
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._addresses: dict[str, _Address] = {}

    def _recent(self, address: str, now: float) -> _Address | None:
        known = self._addresses.get(address)
        if known is None:
            return None
        while known.failures and known.failures[0][0] <= now - self.window:
            known.failures.popleft()
        return known

    def wait(self, address: str) -> float | None:
        """Seconds `address` must wait before its credentials are checked again, or None
        when they are checked now. Call it once per attempt: a refused attempt keeps the
        address's burst going."""
        now = self.clock()
        known = self._recent(address, now)
        if known is None or len(known.failures) < self.allowed:
            return None
        known.reported_until = now + self.window
        return max(known.failures[0][0] + self.window - now, 0.0)

    def failed(self, address: str, kind: str) -> Lockout | None:
        """Count a failed credential (`kind`: what was presented, for the log). Returns
        the lockout when this failure locks the address at the start of a burst."""
        now = self.clock()
        known = self._recent(address, now)
        if known is None:
            self._make_room(now)
            known = self._addresses[address] = _Address()
        known.failures.append((now, kind))
        if known.reported_until > now:  # a burst already reported goes on
            known.reported_until = now + self.window
            return None
        if len(known.failures) < self.allowed:
            return None
        known.reported_until = now + self.window
        kinds = Counter(kind for _, kind in known.failures)
        seconds = max(known.failures[0][0] + self.window - now, 0.0)
        return Lockout(address, dict(kinds), seconds)

    def _make_room(self, now: float) -> None:
        if len(self._addresses) < self.max_addresses:
            return
        for address in list(self._addresses):
            known = self._recent(address, now)
            if known is not None and not known.failures and known.reported_until <= now:
                del self._addresses[address]
        if len(self._addresses) >= self.max_addresses:
            self._addresses.pop(next(iter(self._addresses)))

    @property
    def remembered(self) -> int:
        """How many addresses it remembers."""
        return len(self._addresses)


def record_failure(limiter: CredentialLimiter, address: str, kind: str) -> None:
    """Count a failed credential, and log the burst it starts (once)."""
    lockout = limiter.failed(address, kind)
    if lockout is None:
        return
    kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(lockout.kinds.items()))
    log.warning(
        "failed credentials: %d from %s within %g s (%s); its attempts are refused with 429"
        " for %.0f s, and this burst is not logged again",
        sum(lockout.kinds.values()),
        address,
        limiter.window,
        kinds,
        lockout.seconds,
    )
