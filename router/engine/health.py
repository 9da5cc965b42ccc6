"""Whether the store is taking writes, judged from what this process's own writes came to.

Every part that writes (ingest, the delivery lanes, /readyz's probe) reports each
outcome here. An outage is logged once when it starts, with its first error, and once
when it ends, with how long it lasted and how many operations failed meanwhile,
instead of a traceback per failed request (an outage on a full disk must not fill it
faster). An outage ends when the store has answered steadily for a moment (a few
successes and a few seconds without a failure), not at its first success: after a
freeze, calls queued during it still time out between others that succeed, and that
is one outage, not a dozen. The delivery lanes back off on their own meanwhile (see
router.engine.delivery).

/readyz probes with a one-row write, which a full disk can still take (it reuses the
WAL's pages) while a call's larger write cannot: a write refused for lack of space or
a read-only store, by any caller, keeps /readyz at 503 for `HealthPolicy.refusal_memory`
seconds after the last one. Then, if the probe writes, it is ready again by itself.

The bookkeeping (`StoreRecord`) is pure, on an injected clock; `StoreHealth` logs what
it decides.

`answer_within` bounds a store call without waiting for the abandoned work to notice
its cancellation: a frozen database may never answer the cancel either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from router.store import StoreError, StoreRefusedWrite

log = logging.getLogger("router.store")

T = TypeVar("T")
Clock = Callable[[], float]

ERROR_TEXT_LIMIT = 300


def describe_error(error: BaseException) -> str:
    """`TypeName: message`, bounded, for a log line or an answer."""
    text = str(error).strip()
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return described[:ERROR_TEXT_LIMIT]


def is_store_failure(error: BaseException) -> bool:
    """Whether an exception raised by a store call means the store is unavailable (as
    opposed to a bug in the caller): the store's own errors, or a call that timed out."""
    return isinstance(error, StoreError | TimeoutError)


async def answer_within(awaitable: Awaitable[T], seconds: float) -> T:
    """The awaitable's result, or `TimeoutError` once `seconds` have passed. On time-out
    the work is cancelled but not waited for. (A store write abandoned this way may
    still commit later: the caller must treat it as "unknown", never as "not written".)

    On the webhook's hot path: a store call that returns a future (the SQLite writer's)
    is awaited with one timer, no task of its own."""
    work = asyncio.ensure_future(awaitable)  # a future stays itself; a coroutine gets a task
    if work.done():
        return work.result()
    loop = asyncio.get_running_loop()
    settled = loop.create_future()

    def wake(_: object = None) -> None:
        if not settled.done():
            settled.set_result(None)

    timer = loop.call_later(seconds, wake)
    work.add_done_callback(wake)
    try:
        await settled
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        timer.cancel()
        work.remove_done_callback(wake)
    if work.done():
        return work.result()
    work.cancel()
    work.add_done_callback(_retrieve)
    raise TimeoutError(f"the store did not answer within {seconds:g} s")


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "never retrieved"


@dataclass(frozen=True)
class HealthPolicy:
    # An outage ends at a success that comes this long after its last failure...
    settle_seconds: float = 5.0
    # ...and after at least this many successes since that failure.
    settle_successes: int = 3
    # /readyz answers 503 for this long after a write was refused (no space, read-only).
    refusal_memory: float = 30.0


@dataclass(frozen=True)
class OutageEnded:
    answering_after: float  # seconds from the first failure to the steady answers
    failures: int
    last_error: str | None


class StoreRecord:
    """The store's recent record: pure, every method takes the time. `failure` says
    whether it started an outage, `success` whether it ended one."""

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy or HealthPolicy()
        self.down_since: float | None = None
        self.failures = 0  # operations failed in the current outage
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.answering_since: float | None = None  # first success after the last failure
        self.successes = 0  # since the last failure
        self.refused_at: float | None = None  # the last write refused for space / read-only
        self.refused_reason: str | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failure(self, now: float, error: str, refused: str | None = None) -> bool:
        """An operation failed (`refused`: the reason the store refused a write, if it
        did). True when this failure starts an outage."""
        self.last_error = error
        self.last_failure_at = now
        self.answering_since = None
        self.successes = 0
        if refused is not None:
            self.refused_at, self.refused_reason = now, refused
        started = self.down_since is None
        if started:
            self.down_since = now
            self.failures = 0
        self.failures += 1
        return started

    def success(self, now: float) -> OutageEnded | None:
        """A write went through; the outage it ends, if the store now answers steadily."""
        if self.down_since is None:
            return None
        if self.answering_since is None:
            self.answering_since = now
        self.successes += 1
        assert self.last_failure_at is not None
        if (
            self.successes < self.policy.settle_successes
            or now - self.last_failure_at < self.policy.settle_seconds
        ):
            return None
        ended = OutageEnded(self.answering_since - self.down_since, self.failures, self.last_error)
        self.down_since = None
        self.failures = 0
        return ended

    def refusal(self, now: float) -> tuple[float, str] | None:
        """(seconds ago, reason) of a write refused within `refusal_memory`, else None."""
        if self.refused_at is None or self.refused_reason is None:
            return None
        ago = now - self.refused_at
        if ago >= self.policy.refusal_memory:
            return None
        return max(ago, 0.0), self.refused_reason


class StoreHealth:
    """The store's recent record, as seen by this process (see the module docstring)."""

    def __init__(
        self, *, clock: Clock = time.monotonic, policy: HealthPolicy | None = None
    ) -> None:
        self.clock = clock
        self.record = StoreRecord(policy)

    @property
    def down(self) -> bool:
        return self.record.down

    @property
    def failures(self) -> int:
        return self.record.failures

    @property
    def last_error(self) -> str | None:
        return self.record.last_error

    def failed(self, error: BaseException) -> None:
        """A store operation failed; the first failure of an outage is logged."""
        refused = error.reason if isinstance(error, StoreRefusedWrite) else None
        if self.record.failure(self.clock(), describe_error(error), refused):
            log.error(
                "store unavailable: %s; webhooks answer 503 and deliveries wait until it"
                " recovers (logged once; a summary follows when it does)",
                self.record.last_error,
            )

    def succeeded(self) -> None:
        """A store write went through (one that wrote something: a commit that changed
        nothing proves nothing); the outage ends, with its summary, once the store has
        answered steadily (`HealthPolicy`)."""
        ended = self.record.success(self.clock())
        if ended is not None:
            log.warning(
                "store available again after %.1f s; %d operation%s failed meanwhile (last: %s)",
                ended.answering_after,
                ended.failures,
                "" if ended.failures == 1 else "s",
                ended.last_error,
            )

    def refusal(self) -> str | None:
        """Why calls cannot be taken although the probe may write: a write refused for
        lack of space or a read-only store in the last `refusal_memory` seconds."""
        refused = self.record.refusal(self.clock())
        if refused is None:
            return None
        ago, reason = refused
        return f"the store refused a write {ago:.0f} s ago ({reason})"
