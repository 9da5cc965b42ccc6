"""The store interface: events, their deliveries, and every attempt, behind one small class.

Model (Hookdeck-like): an *event* is one accepted call (its body as received);
a *delivery* is that event for one sink (one per (event, sink)); an *attempt* is
one try at sending a delivery, with its outcome, status code, error and duration.
A *digest* is a delivery of kind 'digest' (a grouped rule's): it belongs to the
event that opened it and lists its member events, the calls gathered in its window.

Delivery states: `pending` (waiting for `next_attempt_at`, or leased by a worker
while `lease_until` is in the future), `delivered`, `dead` (kept; replay makes it
`pending` again with a fresh retry budget). All times are unix seconds (float).

One implementation, `router.store.queue.QueueStore`, over a connector per database:
`router.store.sqlite` (embedded, one process; also the in-memory store for tests)
and `router.store.postgres` (several replicas). `router.store.open_store(url)` picks
one. Every failure is a `router.store.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

DeliveryStatus = Literal["pending", "delivered", "dead"]
AttemptOutcome = Literal["delivered", "retry", "dead"]
DeliveryKind = Literal["single", "digest"]


@dataclass(frozen=True)
class GroupJoin:
    """How a delivery of a grouped rule joins a digest (see `Store.ingest`)."""

    key: str  # the group key as canonical JSON text
    window: float  # seconds from the first call to the digest's due time
    max: int | None = None  # send early once this many calls are in


WORKER_HEARTBEAT_SECONDS = 5.0
"""How often a delivery engine calls `Store.live_workers` (its heartbeat)."""
WORKER_LIVE_SECONDS = 3 * WORKER_HEARTBEAT_SECONDS
"""A worker whose last heartbeat is older than this no longer counts as live."""


@dataclass(frozen=True)
class NewDelivery:
    id: str
    sink: str
    rule: str
    group: GroupJoin | None = None  # None: a delivery of its own (kind 'single')
    # Written already leased (single deliveries only): the ingesting worker sends it
    # straight away, with no claim; if that worker dies, the lease expires as usual.
    lease_owner: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True)
class IngestRecord:
    """One accepted call and the deliveries its rules produced."""

    event_id: str
    payload: bytes  # the JSON body exactly as received
    received_at: float
    deliveries: Sequence[NewDelivery]
    status: str = ""
    direction: str = ""


@dataclass(frozen=True)
class IngestResult:
    status: Literal["accepted", "duplicate"]
    deliveries: int


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to one worker, with what the sink needs to send it."""

    id: str
    event_id: str
    sink: str
    rule: str
    payload: bytes
    attempts: int  # all attempts so far, replays included
    retry_attempts: int  # attempts since it was created or last replayed (the retry budget)
    retry_started_at: float  # creation or last replay: `max_age` counts from here
    created_at: float
    kind: DeliveryKind = "single"
    group_key: str | None = None  # digests: the canonical JSON of the group key
    window_start: float | None = None  # digests: the first call's arrival
    window_end: float | None = None  # digests: when the window closed (or `max` was reached)

    @classmethod
    def written_leased(cls, delivery: NewDelivery, record: IngestRecord) -> ClaimedDelivery:
        """A single delivery just committed already leased (`NewDelivery.lease_owner`), as
        a claim would have returned it: no attempt yet, its budget counting from now."""
        return cls(
            id=delivery.id,
            event_id=record.event_id,
            sink=delivery.sink,
            rule=delivery.rule,
            payload=record.payload,
            attempts=0,
            retry_attempts=0,
            retry_started_at=record.received_at,
            created_at=record.received_at,
        )


@dataclass(frozen=True)
class AttemptRecord:
    number: int  # 1-based, over the delivery's whole life
    started_at: float
    duration: float  # seconds
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class StateAfterAttempt:
    """Where an attempt leaves its delivery; the same rule for every store."""

    status: DeliveryStatus
    next_attempt_at: float | None
    delivered_at: float | None
    last_error: str | None

    @classmethod
    def of(cls, attempt: AttemptRecord, next_attempt_at: float | None) -> StateAfterAttempt:
        if attempt.outcome == "retry" and next_attempt_at is None:
            raise ValueError("a retry outcome needs next_attempt_at")
        if attempt.outcome == "delivered":
            return cls("delivered", None, attempt.started_at + attempt.duration, None)
        if attempt.outcome == "retry":
            return cls("pending", next_attempt_at, None, attempt.error)
        return cls("dead", None, None, attempt.error)


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the admin API and `revring-router deliveries` show it."""

    id: str
    event_id: str
    sink: str
    rule: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    delivered_at: float | None
    kind: DeliveryKind = "single"
    calls: int = 1  # the calls it carries: a digest's members so far, 1 for a single delivery


@dataclass(frozen=True)
class SinkBacklog:
    pending: int
    dead: int
    oldest_pending_created_at: float | None


class Store(ABC):
    """Durable home of events, deliveries and attempts. Every method is a coroutine
    that never blocks the event loop; writes are durable when the call returns."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, create or migrate the schema; a single-process store also
        releases every lease it holds, so a restart resumes at once."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot answer (for /readyz)."""

    @abstractmethod
    async def probe_write(self) -> None:
        """Write a little, durably; raise if the store cannot write (for /readyz)."""

    @abstractmethod
    async def ingest(self, record: IngestRecord) -> IngestResult:
        """Write the event and its deliveries in one transaction, durably (fsync'd),
        or report a duplicate call id (then nothing is written). Concurrent calls
        are group-committed. `IngestResult.deliveries` counts the deliveries created
        plus the digests joined.

        A `NewDelivery` with a `group` joins the open digest of (rule, sink, group key):
        the one whose `open_group` is the key, still `pending` with no attempt, whose
        `closes_at` is after `received_at` and which holds fewer than `max` calls. The
        event becomes its next member (`digest_members`, position = calls before it).
        With none, it opens a digest: a delivery row of kind 'digest' for this event,
        `window_start` = `received_at`, `closes_at` = `next_attempt_at` = `received_at`
        + `window`, one member. A digest reaching `max` closes at once: `closes_at` =
        `next_attempt_at` = `received_at`, `open_group` NULL. A stale open digest (one
        that cannot take this call: its window over but not yet claimed, or full) lets
        go of the key before a new one opens, so the unique index on (rule, sink,
        open_group) holds; a digest that can still take the call is never closed this
        way. `router.store.queue.join_digest` joins with one conditional UPDATE …
        RETURNING and opens with INSERT … ON CONFLICT DO NOTHING, joining again when it
        loses the race."""

    @abstractmethod
    async def claim(
        self, sink: str, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries of `sink` (pending, `next_attempt_at <= now`,
        no live lease), oldest `next_attempt_at` first, then creation order. A claimed
        digest is closed (`open_group` NULL): no call joins it any more."""

    @abstractmethod
    async def digest_calls(self, delivery_id: str) -> list[bytes]:
        """The payloads of a digest's member events, in the order they joined (empty for
        an unknown delivery or a single one)."""

    @abstractmethod
    async def next_due_at(self, sink: str) -> float | None:
        """The earliest `next_attempt_at` of the sink's pending deliveries, or None."""

    @abstractmethod
    async def renew_leases(self, ids: Iterable[str], owner: str, until: float) -> None: ...

    @abstractmethod
    async def finish(
        self,
        delivery_id: str,
        owner: str,
        attempt: AttemptRecord,
        *,
        next_attempt_at: float | None = None,
    ) -> bool:
        """Record an attempt and move the delivery on: `delivered`, `dead`, or back to
        `pending` at `next_attempt_at` (outcome `retry`). Clears the lease. Returns
        False (and records nothing) when `owner` no longer holds the lease."""

    @abstractmethod
    async def defer(self, delivery_id: str, owner: str, next_attempt_at: float) -> None:
        """Put a leased delivery back without spending an attempt (rate limit, pause,
        sink not configured, shutdown)."""

    @abstractmethod
    async def kill(self, delivery_id: str, owner: str | None, reason: str) -> None:
        """Make a delivery dead without an attempt (its sink was removed, or never
        configured before `max_age`)."""

    @abstractmethod
    async def kill_expired_waiting(
        self, sink: str, started_before: float, reason: str, now: float
    ) -> int:
        """Make dead, without an attempt, every pending delivery of `sink` not under a live
        lease whose retry budget started before `started_before` (a sink never configured
        within `max_age`); return how many. Writes nothing when none is that old."""

    @abstractmethod
    async def oldest_waiting(self, sink: str, now: float) -> float | None:
        """The earliest `retry_started_at` of the sink's pending deliveries not under a
        live lease, or None."""

    @abstractmethod
    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        sink: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        """Newest first."""

    @abstractmethod
    async def get_delivery(self, delivery_id: str) -> DeliveryView | None: ...

    @abstractmethod
    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]: ...

    @abstractmethod
    async def replay(self, delivery_id: str, now: float) -> bool:
        """Make one delivery pending and due now, with a fresh retry budget (`retry_attempts`
        = 0, `retry_started_at` = now). Works on dead, delivered and waiting ones; False if
        unknown, or in flight (pending under a live lease: replaying it would send twice)."""

    @abstractmethod
    async def replay_dead(self, sink: str | None, now: float) -> int:
        """Replay every dead delivery (of one sink); return how many."""

    @abstractmethod
    async def pending_sinks(self) -> set[str]:
        """Names of the sinks that have pending deliveries."""

    @abstractmethod
    async def backlog(self) -> dict[str, SinkBacklog]:
        """Per sink: pending and dead counts, and the oldest pending delivery's creation."""

    @abstractmethod
    async def open_groups(self, now: float) -> dict[str, int]:
        """Per sink: digests still gathering calls (`open_group` set, `closes_at` > now);
        a sink with none is absent."""

    @abstractmethod
    async def purge(self, received_before: float) -> int:
        """Delete events received before the cutoff whose deliveries are all delivered
        and that are members of no digest still undelivered, with their deliveries,
        attempts and memberships (payloads hold personal data). Returns the number of
        events deleted."""

    async def live_workers(self, owner: str, now: float) -> int:
        """Record that worker `owner` is alive at `now` and return how many workers share
        this store (itself included), counting those seen within `WORKER_LIVE_SECONDS`.
        An engine calls it every `WORKER_HEARTBEAT_SECONDS` and divides each sink's
        `rate_limit` by the answer. A store owned by one process always answers 1."""
        return 1

    async def retire_worker(self, owner: str) -> None:
        """Stop counting `owner` as live (it is shutting down cleanly)."""
        return None

    def on_new_deliveries(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Call `callback(sinks)` (on the event loop) whenever deliveries that a lane must
        claim are committed, by this process or, for a shared store, another replica:
        `sinks` names their sinks, or is None when unknown (any sink may have some)."""
        self._listeners = [*getattr(self, "_listeners", []), callback]

    def _notify(self, sinks: frozenset[str] | None = None) -> None:
        for callback in getattr(self, "_listeners", []):
            callback(sinks)
