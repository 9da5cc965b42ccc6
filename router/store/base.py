"""The store interface: events, their deliveries, and every attempt, behind one small class.

Model (Hookdeck-like): an *event* is one accepted call (its body as received);
a *delivery* is that event for one sink (one per (event, sink)); an *attempt* is
one try at sending a delivery, with its outcome, status code, error and duration.
A *digest* is a delivery of kind 'digest' (a grouped rule's): it belongs to the
event that opened it and lists its member events, the calls gathered in its window.

Delivery states: `pending` (waiting for `next_attempt_at`, or leased by a worker
while `lease_until` is in the future), `delivered`, `dead` (kept; replay makes it
`pending` again with a fresh retry budget), `muted` (not sent: every rule routing it was
muted by a time interval, or a silence matched; `muted_reason` says which; replayable
like a dead one). All times are unix seconds (float).

Operators' controls live here too (DESIGN.md section 9): *silences* (a `when` condition,
optional sinks, a time span; expiring one ends it now and keeps it listed) and *sink
pauses* (a sink held until a time).

One implementation, `router.store.queue.QueueStore`, over a connector per database:
`router.store.sqlite` (embedded, one process; also the in-memory store for tests)
and `router.store.postgres` (several replicas). `router.store.open_store(url)` picks
one. Every failure is a `router.store.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

DeliveryStatus = Literal["pending", "delivered", "dead", "muted"]
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
    # Not sent: written with status 'muted' and this reason (never leased, never a digest).
    muted_reason: str | None = None


@dataclass(frozen=True)
class IngestRecord:
    """One accepted call and the deliveries its rules produced."""

    event_id: str
    payload: bytes  # the JSON body exactly as received
    received_at: float
    deliveries: Sequence[NewDelivery]
    status: str = ""
    direction: str = ""
    # Copied from the payload into columns of their own, for the console's filters.
    agent_id: str = ""
    organization_id: str = ""
    hangup_cause: str = ""
    # The payload as JSON data, when the webhook still holds it (a small body): a delivery
    # sent straight after the commit uses it instead of decoding the payload again. Never
    # stored; None when unknown.
    decoded: Any = field(default=None, compare=False, repr=False)


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
    # The payload already decoded (`IngestRecord.decoded`), or None: decode `payload`.
    decoded: Any = field(default=None, compare=False, repr=False)

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
            decoded=record.decoded,
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
    muted_reason: str | None = None  # status 'muted': `time_interval:NAME` or `silence:ID`


@dataclass(frozen=True)
class SilenceRecord:
    """A silence as stored: `when` is the condition as JSON text (the rules' syntax),
    `sinks` the sinks it covers (None: all). Expiring sets `expired_at` and ends it then."""

    id: str
    when: str
    sinks: tuple[str, ...] | None
    starts_at: float
    ends_at: float
    comment: str
    created_at: float
    expired_at: float | None = None

    @property
    def effective_end(self) -> float:
        return self.ends_at if self.expired_at is None else min(self.ends_at, self.expired_at)

    def state(self, now: float) -> Literal["pending", "active", "expired"]:
        if now >= self.effective_end:
            return "expired"
        return "pending" if now < self.starts_at else "active"


@dataclass(frozen=True)
class SinkPause:
    """A sink held by hand until `until` (its deliveries wait, spending no attempts)."""

    sink: str
    until: float
    comment: str
    created_at: float


Verification = Literal["pending", "verified", "not_verified", "released"]


@dataclass(frozen=True)
class HeldCall:
    """A call stored in verify mode and not routed yet (verification `pending`)."""

    event_id: str
    payload: bytes
    received_at: float
    verify_attempts: int


@dataclass(frozen=True)
class CallFilters:
    """Which calls `Store.list_events` shows; None (or nothing) leaves a field unfiltered.
    Times are unix seconds: `received_from` inclusive, `received_to` exclusive."""

    status: str | None = None
    direction: str | None = None
    agent_id: str | None = None
    organization_id: str | None = None
    hangup_cause: str | None = None
    call_id: str | None = None
    verification: str | None = None
    received_from: float | None = None
    received_to: float | None = None

    def given(self) -> dict[str, str | float]:
        """The fields set, by name, in a fixed order."""
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class EventView:
    """A stored call: its body as received, the columns copied from it, and (verify
    mode) where its verification stands."""

    id: str
    payload: bytes | None  # None in a list of calls when it is over 256 KiB
    received_at: float
    status: str
    direction: str
    agent_id: str = ""
    organization_id: str = ""
    hangup_cause: str = ""
    verification: Verification | None = None  # None: routed on arrival (verify mode off)
    verify_attempts: int = 0
    verify_next_at: float | None = None


EventCursor = tuple[float, str]
"""Where a newest-first page of events ends: (received_at, id) of its last call."""


@dataclass(frozen=True)
class SinkCounts:
    """A sink's deliveries for the console's overview."""

    pending: int = 0
    retrying: int = 0  # pending after at least one attempt
    dead: int = 0
    muted: int = 0
    delivered_since: int = 0  # delivered at or after the time asked about
    oldest_pending_created_at: float | None = None


AcknowledgedKind = Literal["call", "digest"]


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a call (`kind` 'call', `target_id` the event id) or a digest
    ('digest', its delivery id) from an alert's button, and when; the first one counts."""

    kind: AcknowledgedKind
    target_id: str
    user_id: str
    user_name: str
    channel: str
    at: float


@dataclass(frozen=True)
class SlackActionRecord:
    """One click on an alert's button, as audited: `target` is `call:ID` or `digest:ID`,
    `outcome` what came of it (silenced, extended, acknowledged, refused, failed...)."""

    id: str
    at: float
    user_id: str
    user_name: str
    channel: str
    action: str
    target: str
    outcome: str
    detail: str = ""


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
        rule: str | None = None,
    ) -> list[DeliveryView]:
        """Newest first; filtered by status, sink and rule when given."""

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
    async def replay_muted(self, sink: str | None, now: float) -> int:
        """Replay every muted delivery (of one sink); return how many."""

    @abstractmethod
    async def mute(self, delivery_id: str, owner: str, reason: str, now: float) -> bool:
        """Make a delivery leased by `owner` muted without an attempt (a silence found at
        send time); False when `owner` no longer holds the lease."""

    @abstractmethod
    async def add_silence(self, silence: SilenceRecord) -> None: ...

    @abstractmethod
    async def list_silences(self, ended_after: float | None = None) -> list[SilenceRecord]:
        """Silences, earliest start first; with `ended_after`, only those whose end (or
        expiry) is later."""

    @abstractmethod
    async def expire_silence(self, silence_id: str, now: float) -> SilenceRecord | None:
        """End a silence now (one already over keeps its end); None if unknown."""

    @abstractmethod
    async def pause_sink(self, pause: SinkPause) -> None:
        """Hold a sink until `pause.until` (replacing any pause of it)."""

    @abstractmethod
    async def resume_sink(self, sink: str) -> bool:
        """Release a paused sink; False if it was not paused."""

    @abstractmethod
    async def sink_pauses(self, now: float) -> list[SinkPause]:
        """Pauses still running at `now`, by sink name."""

    @abstractmethod
    async def extend_silence(self, silence_id: str, ends_at: float, now: float) -> bool:
        """Move a silence still in force at `now` to end at `ends_at` (later only);
        False when it is over, expired, unknown or already ends at or after it."""

    @abstractmethod
    async def event_payload(self, event_id: str) -> bytes | None:
        """The body of one stored call as received, or None."""

    @abstractmethod
    async def acknowledge(self, acknowledgement: Acknowledgement) -> Acknowledgement:
        """Record an acknowledgement unless its target has one; the one that counts."""

    @abstractmethod
    async def acknowledgement(
        self, kind: AcknowledgedKind, target_id: str
    ) -> Acknowledgement | None: ...

    @abstractmethod
    async def acknowledgements_since(self, since: float) -> list[Acknowledgement]:
        """Acknowledgements made at or after `since`, oldest first."""

    @abstractmethod
    async def record_slack_action(self, action: SlackActionRecord) -> None: ...

    @abstractmethod
    async def slack_actions(self, limit: int = 100) -> list[SlackActionRecord]:
        """The audit of clicks on alerts' buttons, newest first."""

    @abstractmethod
    async def purge_slack_actions(self, before: float) -> int:
        """Delete audited clicks and acknowledgements made before the cutoff (retention);
        the number of audit rows deleted."""

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

    # --- verify mode (ROUTER_VERIFY_CALLS=revring) ---

    async def ingest_held(self, record: IngestRecord) -> IngestResult:
        """Store a call held for verification: the event (verification `pending`, due for
        a check at once) and no delivery; a repeated call id is a duplicate."""
        raise NotImplementedError

    async def due_held(self, now: float, limit: int) -> list[HeldCall]:
        """Held calls whose next check is due, oldest due first."""
        raise NotImplementedError

    async def route_held(
        self, record: IngestRecord, verification: Verification
    ) -> IngestResult | None:
        """Route a held call: its payload becomes `record.payload` (the posted body is
        kept), `verification` is set and `record.deliveries` are written, in one
        transaction. `released` also routes a `not_verified` call. None (nothing written)
        when the call is not held any more: routing twice is impossible."""
        raise NotImplementedError

    async def mark_not_verified(self, event_ids: Sequence[str]) -> int:
        """Held calls RevRing does not know: kept, never routed."""
        raise NotImplementedError

    async def postpone_verification(self, event_ids: Sequence[str], next_at: float) -> int:
        """Check these held calls again at `next_at` (RevRing's API did not answer)."""
        raise NotImplementedError

    @abstractmethod
    async def purge_silences(self, ended_before: float) -> int:
        """Delete silences that ended (or were expired) before the cutoff, and pauses
        that ran out before it; the number of silences deleted."""

    # The console's reads (not abstract: fakes of the delivery path need not have them).

    async def list_events(
        self, filters: CallFilters, before: EventCursor | None = None, limit: int = 50
    ) -> list[EventView]:
        """Calls newest first (by `received_at`, then id), those matching `filters`,
        strictly older than `before` when given (keyset pagination). A body over
        `queries.LISTED_PAYLOAD_BYTES` comes as None (`get_event` gives it whole)."""
        raise NotImplementedError

    async def get_event(self, event_id: str) -> EventView | None:
        raise NotImplementedError

    async def deliveries_of_event(self, event_id: str) -> list[DeliveryView]:
        """The call's own deliveries and the digests it is a member of, oldest first."""
        raise NotImplementedError

    async def sink_counts(self, delivered_since: float | None = None) -> dict[str, SinkCounts]:
        """Per sink with any pending, dead or muted delivery, or one delivered at or after
        `delivered_since` (not counted when None): those counts (`retrying`: pending with
        attempts > 0)."""
        raise NotImplementedError

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
