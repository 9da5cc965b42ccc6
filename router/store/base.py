"""The store's faces: what each of its users may ask of it, as small protocols.

One class implements them all, `router.store.queue.QueueStore`, over a connector per
database (`router.store.sqlite`: embedded, one process, also the in-memory store for
tests; `router.store.postgres`: several replicas); `router.store.open_store(url)` picks
one. A user annotates what it takes with the narrowest face that fits:

- `Lifecycle`: open, close, answer, take a write (the app, the CLI);
- `Ingest`: store a call with its deliveries, or hold it (`router.engine.intake`);
- `DeliveryQueue`: claim, finish, defer, kill, mute; leases, what is due, live workers
  (`router.engine.delivery`);
- `HeldCalls`: verify mode's held calls (`router.revring.verify`);
- `Operators`: silences, sink pauses, acknowledgements, replays, each change written
  with its audit record when one is given (`router.operators`, the admin API, the CLI);
- `Audit`: the recorded changes, written alone and read back (`router.operators.audit`);
- `ConsoleReads`: calls, deliveries, attempts and counts read back (the console, the
  admin API, the CLI, the backlog metrics);
- `Maintenance`: retention's purges (the app);
- `Erasures`: forgetting a caller, and the store's own secrets (`router.operators.forget`);
- `OutboundTokens`: the access tokens sinks got, shared by replicas (`sinks.tokens`);
- `OperatorConsole`: `ConsoleReads`, `Operators` and `Audit` (the console, the admin API,
  Slack's buttons, the CLI);
- `Store`: all of them (the app, `open_store`).

(`CallBodies`, the bodies of stored calls, is part of both `DeliveryQueue` and
`ConsoleReads`.) A new user with needs of its own gets a face here and `Store` one more
base.

Every method is a coroutine that never blocks the event loop; writes are durable when
the call returns; every failure is a `router.store.errors.StoreError`. The records the
faces take and give are in `router.store.records`; other packages import both through
`router.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from router.store.records import (
    AcknowledgedKind,
    Acknowledgement,
    AttemptRecord,
    AuditFilters,
    AuditRecord,
    CallColumn,
    CallFilters,
    ClaimedDelivery,
    DeadDelivery,
    DeliveryStatus,
    DeliveryView,
    DueEscalation,
    Erasure,
    ErasureCounts,
    EscalationOutcome,
    EventCursor,
    EventView,
    HeldCall,
    IngestRecord,
    IngestResult,
    NewNotice,
    OutboundToken,
    SessionRecord,
    SilenceRecord,
    SinkBacklog,
    SinkCounts,
    SinkPause,
    SlackThread,
    Verification,
)

__all__ = [
    "WORKER_HEARTBEAT_SECONDS",
    "WORKER_LIVE_SECONDS",
    "Audit",
    "CallBodies",
    "ConsoleReads",
    "ConsoleSessions",
    "DeliveryQueue",
    "Erasures",
    "HeldCalls",
    "Ingest",
    "Lifecycle",
    "Maintenance",
    "OperatorConsole",
    "Operators",
    "OutboundTokens",
    "Store",
]

WORKER_HEARTBEAT_SECONDS = 5.0
"""How often a delivery engine calls `DeliveryQueue.live_workers` (its heartbeat)."""
WORKER_LIVE_SECONDS = 3 * WORKER_HEARTBEAT_SECONDS
"""A worker whose last heartbeat is older than this no longer counts as live."""


class Lifecycle(Protocol):
    async def open(self, *, create: bool = True) -> None:
        """Connect, create or migrate the schema; a single-process store also
        releases every lease it holds, so a restart resumes at once. `create=False`
        (commands that only read or change a store): where there is no store (no
        SQLite file, no database, or none of the router's tables in it), raise
        `StoreMissing` and create nothing."""
        ...

    async def close(self) -> None:
        """Finish the writes already queued, then disconnect."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot answer (for /readyz)."""
        ...

    async def probe_write(self) -> None:
        """Write a little, durably; raise if the store cannot write (for /readyz)."""
        ...


class Ingest(Protocol):
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
        ...

    async def ingest_held(self, record: IngestRecord) -> IngestResult:
        """Store a call held for verification (verify mode): the event (verification
        `pending`, due for a check at once) and no delivery; a repeated call id is a
        duplicate."""
        ...


class CallBodies(Protocol):
    async def event_payload(self, event_id: str) -> bytes | None:
        """The body of one stored call as received, or None."""
        ...

    async def digest_calls(self, delivery_id: str) -> list[bytes]:
        """The payloads of a digest's member events, in the order they joined (empty for
        an unknown delivery or a single one)."""
        ...


class DeliveryQueue(CallBodies, Protocol):
    async def claim(
        self,
        sink: str,
        limit: int,
        owner: str,
        lease_seconds: float,
        now: float,
        *,
        notices: bool = True,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries of `sink` (pending, `next_attempt_at <= now`,
        no live lease), oldest `next_attempt_at` first, then creation order. A claimed
        digest is closed (`open_group` NULL): no call joins it any more. `notices` False
        leaves notices (`on_dead`) out (their lane is sending some already)."""
        ...

    async def claim_notices(
        self, sink: str, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` pending notices (`on_dead`) of `sink` under no live lease:
        the due ones and those never tried yet (still held by `notice_window`), oldest
        `next_attempt_at` first; they go out together as one message."""
        ...

    async def renew_leases(self, ids: Iterable[str], owner: str, until: float) -> None: ...

    async def finish(
        self,
        delivery_id: str,
        owner: str,
        attempt: AttemptRecord,
        *,
        next_attempt_at: float | None = None,
        notices: Sequence[NewNotice] = (),
    ) -> bool:
        """Record an attempt (numbered attempts so far + 1) and move the delivery on:
        `delivered`, `dead`, or back to `pending` at `next_attempt_at` (outcome `retry`).
        Clears the lease. Returns False (and records nothing) when `owner` no longer holds
        the lease. An attempt that makes it dead writes `notices` (`on_dead`) in the
        same transaction, so a crash cannot keep the dead mark and lose them."""
        ...

    async def finish_many(
        self,
        finishes: Sequence[tuple[str, AttemptRecord, float | None]],
        owner: str,
    ) -> list[str]:
        """`finish` for each (delivery id, attempt, next_attempt_at), all in one
        transaction (notices sent as one message, none of which makes notices): the ids
        recorded, those `owner` still held."""
        ...

    async def defer(self, delivery_id: str, owner: str, next_attempt_at: float) -> None:
        """Put a leased delivery back without spending an attempt (rate limit, pause,
        sink not configured, shutdown)."""
        ...

    async def kill(self, delivery_id: str, owner: str | None, reason: str) -> None:
        """Make a pending delivery dead without an attempt (its sink was removed, or never
        configured before `max_age`); with `owner`, only while that owner holds its
        lease."""
        ...

    async def kill_expired_waiting(
        self,
        sink: str,
        started_before: float,
        reason: str,
        now: float,
        notices_of: Callable[[DeadDelivery], Sequence[NewNotice]] | None = None,
    ) -> int:
        """Make dead, without an attempt, every pending delivery of `sink` not under a live
        lease whose retry budget started before `started_before` (a sink never configured
        within `max_age`); return how many. Writes nothing when none is that old. With
        `notices_of`, the notices of each (`on_dead`) go in the same transaction."""
        ...

    async def mute(self, delivery_id: str, owner: str, reason: str, now: float) -> bool:
        """Make a delivery leased by `owner` muted without an attempt (a silence found at
        send time); False when `owner` no longer holds the lease."""
        ...

    async def next_due_at(self, sink: str) -> float | None:
        """The earliest `next_attempt_at` of the sink's pending deliveries (a leased one
        counts as due when its lease ends), or None."""
        ...

    async def oldest_waiting(self, sink: str, now: float) -> float | None:
        """The earliest `retry_started_at` of the sink's pending deliveries not under a
        live lease, or None."""
        ...

    async def pending_sinks(self) -> set[str]:
        """Names of the sinks that have pending deliveries."""
        ...

    async def live_workers(self, owner: str, now: float) -> int:
        """Record that worker `owner` is alive at `now` and return how many workers share
        this store (itself included), counting those seen within `WORKER_LIVE_SECONDS`.
        An engine calls it every `WORKER_HEARTBEAT_SECONDS` and divides each sink's
        `rate_limit` by the answer. A store owned by one process always answers 1."""
        ...

    async def retire_worker(self, owner: str) -> None:
        """Stop counting `owner` as live (it is shutting down cleanly)."""
        ...

    async def still_leased(self, delivery_id: str, owner: str) -> bool:
        """Whether `owner` still holds the lease of this pending delivery, asked just before
        it is sent: False when it was cancelled (its caller forgotten, `Erasures.forget`),
        or its lease ran out and another worker took it. Answered without a read while
        nothing can have taken a lease this process took (`router.store.leases`)."""
        ...

    def on_new_deliveries(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Call `callback(sinks)` (on the event loop) whenever deliveries that a lane must
        claim are committed, by this process or, for a shared store, another replica:
        `sinks` names their sinks, or is None when unknown (any sink may have some)."""
        ...


class HeldCalls(Protocol):
    """Verify mode (ROUTER_VERIFY_CALLS=revring): calls held until RevRing confirms them."""

    async def due_held(self, now: float, limit: int) -> list[HeldCall]:
        """Held calls whose next check is due, oldest due first."""
        ...

    async def route_held(
        self,
        record: IngestRecord,
        verification: Verification,
        audit: AuditRecord | None = None,
    ) -> IngestResult | None:
        """Route a held call: its payload becomes `record.payload` (the posted body is
        kept), `verification` is set and `record.deliveries` are written, in one
        transaction (with `audit`, the record of a release by hand). `released` also
        routes a `not_verified` call. None (nothing written) when the call is not held
        any more: routing twice is impossible."""
        ...

    async def mark_not_verified(self, event_ids: Sequence[str]) -> int:
        """Held calls RevRing does not know: kept, never routed."""
        ...

    async def postpone_verification(self, event_ids: Sequence[str], next_at: float) -> int:
        """Check these held calls again at `next_at` (RevRing's API did not answer)."""
        ...


class Operators(Protocol):
    """What operators set and do (DESIGN.md section 9): silences, sink pauses,
    acknowledgements, replays. Each change takes an optional `audit`, its record
    (DESIGN.md section 14), written in the change's own transaction when the change took
    effect (a row was added or changed): never a change without its record, nor a record
    of a change that did not happen."""

    async def add_silence(
        self, silence: SilenceRecord, audit: AuditRecord | None = None
    ) -> None: ...

    async def list_silences(self, ended_after: float | None = None) -> list[SilenceRecord]:
        """Silences, earliest start first; with `ended_after`, only those whose end (or
        expiry) is later."""
        ...

    async def expire_silence(
        self, silence_id: str, now: float, audit: AuditRecord | None = None
    ) -> SilenceRecord | None:
        """End a silence now (one already over keeps its end, and `audit` is not
        written); None if unknown."""
        ...

    async def extend_silence(
        self, silence_id: str, ends_at: float, now: float, audit: AuditRecord | None = None
    ) -> bool:
        """Move a silence still in force at `now` to end at `ends_at` (later only);
        False when it is over, expired, unknown or already ends at or after it."""
        ...

    async def pause_sink(self, pause: SinkPause, audit: AuditRecord | None = None) -> None:
        """Hold a sink until `pause.until` (replacing any pause of it)."""
        ...

    async def resume_sink(self, sink: str, audit: AuditRecord | None = None) -> bool:
        """Release a paused sink; False if it was not paused (then `audit` is not
        written)."""
        ...

    async def sink_pauses(self, now: float) -> list[SinkPause]:
        """Pauses still running at `now`, by sink name."""
        ...

    async def acknowledge(
        self, acknowledgement: Acknowledgement, audit: AuditRecord | None = None
    ) -> Acknowledgement:
        """Record an acknowledgement unless its (call, rule) or digest has one (of its
        rule, or an old one of every rule: `ALL_RULES`); the one that counts (`audit` is
        written only when this one is)."""
        ...

    async def acknowledgement(
        self, kind: AcknowledgedKind, target_id: str, rule: str
    ) -> Acknowledgement | None:
        """The acknowledgement that counts for `rule` of the call (kind 'call', its event
        id) or for the digest (kind 'digest', its delivery id, its rule): one made for
        that rule, or an old one made for all of them; None when neither exists."""
        ...

    async def acknowledgements_since(self, since: float) -> list[Acknowledgement]:
        """Acknowledgements made at or after `since`, oldest first."""
        ...

    async def replay(self, delivery_id: str, now: float, audit: AuditRecord | None = None) -> bool:
        """Make one delivery pending and due now, with a fresh retry budget (`retry_attempts`
        = 0, `retry_started_at` = now). Works on dead, delivered and waiting ones; False if
        unknown, or in flight (pending under a live lease: replaying it would send twice)."""
        ...

    async def replay_dead(
        self,
        sink: str | None,
        now: float,
        rule: str | None = None,
        audit: AuditRecord | None = None,
    ) -> int:
        """Replay every dead delivery (of one sink, of one rule); return how many. The
        `audit` record, written when there was any, gets their number as `count` in its
        details."""
        ...

    async def replay_muted(
        self,
        sink: str | None,
        now: float,
        rule: str | None = None,
        audit: AuditRecord | None = None,
    ) -> int:
        """Replay every muted delivery (of one sink, of one rule); return how many (and
        audit as `replay_dead`)."""
        ...


class Audit(Protocol):
    """The recorded changes (DESIGN.md section 14): written alone for a change made
    outside the store (a reload, a backfill, a sign-in), read back newest first."""

    async def record_audit(self, record: AuditRecord) -> None: ...

    async def list_audit(self, filters: AuditFilters, limit: int = 100) -> list[AuditRecord]:
        """Newest first (by `at`, then id), those matching `filters`."""
        ...

    async def audit_choices(self) -> tuple[list[str], list[str]]:
        """The actors and the actions recorded (each sorted, at most
        `queries.AUDIT_CHOICES` of each): what the console offers as filters."""
        ...


class ConsoleReads(CallBodies, Protocol):
    """Stored calls, deliveries and attempts read back for people: the console, the
    admin API, the CLI and the backlog metrics."""

    async def list_events(
        self, filters: CallFilters, before: EventCursor | None = None, limit: int = 50
    ) -> list[EventView]:
        """Calls newest first (by `received_at`, then id), those matching `filters`,
        strictly older than `before` when given (keyset pagination). A body over
        `queries.LISTED_PAYLOAD_BYTES` comes as None (`get_event` gives it whole).
        `filters.phone` reads the calls of that number alone (an index per side);
        `filters.words` reads the database's full-text index (SQLite FTS5, PostgreSQL
        text search). Raises ValueError for more words or terms than a search takes."""
        ...

    async def worst_delivery_states(self, event_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        """Per call with deliveries (its own and the digests it joined): the worst state
        of them, dead before pending before muted before delivered. One query."""
        ...

    async def call_column_values(self, column: CallColumn) -> list[str]:
        """The distinct non-empty values of a call column (`status`, `hangup_cause`)
        in the store, sorted, at most 100: seeks in the column's index."""
        ...

    async def get_event(self, event_id: str) -> EventView | None: ...

    async def deliveries_of_event(self, event_id: str) -> list[DeliveryView]:
        """The call's own deliveries and the digests it is a member of, oldest first."""
        ...

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        sink: str | None = None,
        limit: int = 100,
        offset: int = 0,
        rule: str | None = None,
        call: str | None = None,
    ) -> list[DeliveryView]:
        """Newest first; filtered by status, sink, rule and call when given (a call's
        deliveries are its own and the digests it joined, as `deliveries_of_event`)."""
        ...

    async def get_delivery(self, delivery_id: str) -> DeliveryView | None: ...

    async def escalations_of(self, delivery_id: str) -> list[str]:
        """The ids of the deliveries escalated from this one, oldest first."""
        ...

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]: ...

    async def sink_counts(self, delivered_since: float | None = None) -> dict[str, SinkCounts]:
        """Per sink with any pending, dead or muted delivery, or one delivered at or after
        `delivered_since` (not counted when None): those counts (`retrying`: pending with
        attempts > 0)."""
        ...

    async def backlog(self) -> dict[str, SinkBacklog]:
        """Per sink with anything pending or dead: pending and dead counts, and the oldest
        pending delivery's creation."""
        ...

    async def open_groups(self, now: float) -> dict[str, int]:
        """Per sink: digests still gathering calls (`open_group` set, `closes_at` > now);
        a sink with none is absent."""
        ...


class Maintenance(Protocol):
    """Retention: what the app deletes periodically (payloads hold personal data)."""

    async def purge(self, received_before: float) -> int:
        """Delete events received before the cutoff whose deliveries are all delivered
        and that are members of no digest still undelivered, with their deliveries,
        attempts and memberships. Returns the number of events deleted."""
        ...

    async def purge_silences(self, ended_before: float) -> int:
        """Delete silences that ended (or were expired) before the cutoff, and pauses
        that ran out before it; the number of silences deleted."""
        ...

    async def purge_audit(self, before: float) -> int:
        """Delete the recorded changes and the acknowledgements made before the cutoff;
        the number of audit records deleted."""
        ...

    async def purge_sessions(self, now: float) -> int:
        """Delete console sessions expired at `now`; how many."""
        ...


class ConsoleSessions(Protocol):
    """The console's sessions (DESIGN.md section 14), in the store so that signing out
    ends one on every replica and across restarts."""

    async def start_session(self, session: SessionRecord) -> None: ...

    async def session(self, id_hash: str, now: float) -> SessionRecord | None:
        """The session of that id hash, unless it is over (expired or ended)."""
        ...

    async def end_session(self, id_hash: str) -> bool:
        """Sign out: the session is gone; False if there was none."""
        ...


class Erasures(Protocol):
    """Forgetting a caller on request (DESIGN.md section 15)."""

    async def forget(self, erasure: Erasure) -> ErasureCounts:
        """Delete every call from or to `erasure.number` with its deliveries (pending ones
        cancelled), attempts, digest memberships and acknowledgements, and write
        `[erased]` for the number wherever else it is stored (`router.store.erasure`), in
        one transaction; the counts. A dry run counts the same and writes nothing."""
        ...

    async def secret(self, name: str) -> str:
        """The store's own secret `name`: random, made on first use, the same for every
        process sharing the store (the salt of erased numbers' hashes)."""
        ...


class OutboundTokens(Protocol):
    """The access tokens sinks get from token endpoints (DESIGN.md section 17), shared by
    the replicas and kept across restarts, with the refresh tokens servers rotate."""

    async def outbound_token(self, sink: str, auth_key: str) -> OutboundToken | None:
        """The token stored for `sink`'s auth settings `auth_key`, if any."""
        ...

    async def keep_outbound_token(self, token: OutboundToken) -> None:
        """Store `token` over the one of its sink and auth settings, durably; the sink's
        tokens for other auth settings (settings since changed) go."""
        ...


class Escalations(Protocol):
    """Escalation timers (DESIGN.md section 16), written by `Ingest.ingest` with a call's
    deliveries (`IngestRecord.escalations`) and fired once, like a delivery is sent once:
    claimed under a lease, settled by the worker that still holds it."""

    async def claim_escalations(
        self, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[DueEscalation]:
        """Lease up to `limit` timers due at `now` and not done (no live lease), earliest
        first."""
        ...

    async def next_escalation_due(self) -> float | None:
        """When the earliest timer not done is due; None when none waits."""
        ...

    async def fire_escalation(
        self,
        due: DueEscalation,
        owner: str,
        now: float,
        outcome: EscalationOutcome,
        new_deliveries: Sequence[tuple[str, str]] = (),
    ) -> tuple[EscalationOutcome, list[str]] | None:
        """Settle a leased timer in one transaction: `acknowledged` when the call was
        acknowledged for the timer's rule (a digest: the digest) by now, whatever
        `outcome` says; else `outcome`, and
        when that is `escalated`, a delivery (id, sink) of each of `new_deliveries` with
        `escalated_from` (a sink that already has one of the call skips). None when
        `owner` no longer holds the timer (nothing written). Answers the outcome and the
        sinks that got a delivery."""
        ...


class SlackThreads(Protocol):
    """The parent messages of Slack threads (`thread_by`, DESIGN.md section 16)."""

    async def thread(self, sink: str, thread_key: str, since: float) -> SlackThread | None:
        """The thread of (`sink`, `thread_key`) started after `since`, or None."""
        ...

    async def start_thread(self, thread: SlackThread, since: float) -> bool:
        """Record `thread` unless a thread of its key started after `since` is recorded
        already (insert-if-absent: another replica won the race); whether it was."""
        ...

    async def count_thread_reply(self, sink: str, thread_key: str, ts: str) -> int | None:
        """One more reply in the thread whose parent is `ts`: the replies now, or None
        when that thread is no longer recorded (expired and replaced, or ended)."""
        ...

    async def end_thread(self, sink: str, thread_key: str, ts: str) -> None:
        """Forget the thread whose parent is `ts` (Slack says it is gone)."""
        ...


class OperatorConsole(ConsoleReads, Operators, Audit, Protocol):
    """What operators' interfaces use: the console, the admin API, Slack's buttons and
    the CLI's commands read calls back, act on them and record who did."""


class Store(
    Lifecycle,
    Ingest,
    DeliveryQueue,
    Escalations,
    HeldCalls,
    OperatorConsole,
    ConsoleSessions,
    Maintenance,
    Erasures,
    OutboundTokens,
    SlackThreads,
    Protocol,
):
    """The whole store, for what needs all of it: the app that assembles the service."""
