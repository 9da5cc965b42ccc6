"""The queue, written once: events, deliveries, attempts and digests over any `Connector`.

Each operation is a script of named queries (`router.store.queries`, run through
`router.store.connector`); `QueueStore` hands it to its connector as a write or a read
and announces new work to its listeners. What differs between databases lives in the
connectors: SQLite's one writer thread with group commit, PostgreSQL's pool, NOTIFY,
group commit per loop tick and advisory locks.

Joining a digest is written once, in the form that is safe with concurrent writers:
one conditional UPDATE … RETURNING joins the open digest; failing that, a stale holder
of the group key lets go of it (only if it still cannot take the call) and an INSERT …
ON CONFLICT DO NOTHING opens a new digest; losing that race, the call joins again. On
SQLite, with one writer, the first try always settles it; on PostgreSQL the ingest
transaction first holds an advisory lock per group (`group_lock_key`), so a race is
rare and a deadlock impossible.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any, Literal, overload

from router.store import queries as q
from router.store.base import WORKER_LIVE_SECONDS, Store
from router.store.connector import (
    ANNOUNCE,
    Call,
    CallMany,
    Connector,
    Row,
    Rows,
    Script,
    Shape,
    count,
    from_row,
    row,
    rows,
    value,
)
from router.store.erasure import RECHECK_SECONDS, Scan, forget, mentioning
from router.store.errors import StoreConflict, StoreError, StoreMissing, StoreOpenError
from router.store.exchanges import exchange_columns, exchange_of
from router.store.leases import LeaseMemory
from router.store.migrations import SCHEMA_VERSION_DDL, pending, statements_for
from router.store.queries import Dialect, Query
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
    GroupJoin,
    HeldCall,
    IngestRecord,
    IngestResult,
    NewDelivery,
    NewNotice,
    OutboundToken,
    SessionRecord,
    SilenceRecord,
    SinkBacklog,
    SinkCounts,
    SinkPause,
    SlackThread,
    StateAfterAttempt,
    Verification,
)
from router.store.search import (
    MAX_SEARCH_TERMS,
    MAX_SEARCH_WORDS,
    fts5_query,
    search_terms,
    tsquery,
)
from router.store.steps import attempt_steps_column, delivery_steps_column, steps_of

# Joining loses a race only if another transaction opened or closed the group in
# between; the group lock rules that out, so a few tries are plenty.
MAX_JOIN_TRIES = 3
FORGET_WORKER_AFTER = 24 * 3600.0
LEASE_CHECKS_PER_READ = 500


def group_lock_key(rule: str, sink: str, key: str) -> int:
    """The advisory lock (a signed 64-bit number) guarding one (rule, sink, group key)."""
    text = json.dumps([rule, sink, key], separators=(",", ":")).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


def group_locks(records: Iterable[IngestRecord]) -> list[int]:
    """The lock keys of every group the records join, lowest first."""
    return sorted(
        {
            group_lock_key(delivery.rule, delivery.sink, delivery.group.key)
            for record in records
            for delivery in record.deliveries
            if delivery.group is not None
        }
    )


# --- scripts ---------------------------------------------------------------------------


def migrate(dialect: Dialect, *, release_leases: bool, create: bool, where: str) -> Script[None]:
    """Create or upgrade the schema; a store owned by one process also frees every lease.
    `create=False`: a database without the schema is `StoreMissing` (nothing written)."""
    if not create and not (yield value(q.SCHEMA_EXISTS)):
        raise StoreMissing(f"no store at {where}: it has none of the router's tables")
    yield count(Query("schema_version_table", SCHEMA_VERSION_DDL))
    current = yield value(q.CURRENT_VERSION)
    for migration in pending(current):
        for number, statement in enumerate(statements_for(migration, dialect)):
            name = f"migration_{migration.version}_{number}"
            yield count(Query(name, statement, maintenance=True))
        if migration.backfill is not None:
            yield from migration.backfill()
        yield count(
            q.RECORD_VERSION,
            version=migration.version,
            description=migration.description,
            applied_at=time.time(),
        )
    if release_leases:
        yield count(q.RELEASE_ALL_LEASES)
        yield count(q.RELEASE_ESCALATION_LEASES)


def event_columns(record: IngestRecord) -> dict[str, Any]:
    """The parameters of a call's `events` row, as every statement writing one names them."""
    return {
        "id": record.event_id,
        "payload": record.payload,
        "received_at": record.received_at,
        "status": record.status.upper(),  # filtered in upper case: any case finds it
        "direction": record.direction,
        "agent_id": record.agent_id,
        "organization_id": record.organization_id,
        "hangup_cause": record.hangup_cause.upper(),
        "from_number": record.from_number,
        "to_number": record.to_number,
        "search_text": record.search_text,
    }


def index_words(event_id: str, dialect: Dialect) -> Script[None]:
    """A call just inserted into `events`, into SQLite's FTS5 index of words (migration
    21: a statement of its own is half the CPU of the trigger it replaced)."""
    if dialect == "sqlite":
        yield count(q.INDEX_EVENT_WORDS, id=event_id)


def ingest(record: IngestRecord, dialect: Dialect) -> Script[IngestResult]:
    inserted = yield count(q.INSERT_EVENT, **event_columns(record))
    if inserted == 0:
        return IngestResult("duplicate", 0)
    yield from index_words(record.event_id, dialect)
    return (yield from write_deliveries(record))


def write_deliveries(record: IngestRecord) -> Script[IngestResult]:
    """The deliveries of a call just stored (by `ingest`, or `route_held` later)."""
    # One delivery per (event, sink): the first one named wins. The event is new, so the
    # singles cannot clash with anything else and go in as one batch of rows.
    by_sink: dict[str, NewDelivery] = {}
    for delivery in record.deliveries:
        by_sink.setdefault(delivery.sink, delivery)
    muted = [d for d in by_sink.values() if d.muted_reason is not None]
    if muted:
        yield CallMany(
            q.INSERT_MUTED_DELIVERY,
            [
                {
                    "id": delivery.id,
                    "event_id": record.event_id,
                    "sink": delivery.sink,
                    "rule": delivery.rule,
                    "now": record.received_at,
                    "muted_reason": delivery.muted_reason,
                }
                for delivery in muted
            ],
        )
    singles = [d for d in by_sink.values() if d.group is None and d.muted_reason is None]
    if singles:
        yield CallMany(
            q.INSERT_DELIVERY,
            [
                {
                    "id": delivery.id,
                    "event_id": record.event_id,
                    "sink": delivery.sink,
                    "rule": delivery.rule,
                    "now": record.received_at,
                    "lease_owner": delivery.lease_owner,
                    "lease_until": delivery.lease_until,
                    "trace_parent": record.trace_parent,
                }
                for delivery in singles
            ],
        )
    written = len(singles) + len(muted)
    opened: dict[str, tuple[str, float]] = {}  # rule -> its first digest opened by this call
    for delivery in by_sink.values():
        if delivery.group is not None and delivery.muted_reason is None:
            joined = yield from join_digest(record, delivery, delivery.group)
            written += joined
            escalating = any(plan.rule == delivery.rule for plan in record.escalations)
            if joined and escalating and (yield from _opened_by(record, delivery)):
                full = delivery.group.max is not None and delivery.group.max <= 1
                closes_at = record.received_at + (0.0 if full else delivery.group.window)
                opened.setdefault(delivery.rule, (delivery.id, closes_at))
    if record.escalations:
        yield from write_escalations(record, singles, opened)
    if written > len(muted) and waiting_sinks(record):  # other replicas' lanes may claim
        yield ANNOUNCE
    return IngestResult("accepted", written)


def _opened_by(record: IngestRecord, delivery: NewDelivery) -> Script[bool]:
    """Whether the digest `delivery` went into is the one this call opened (its own id)."""
    found = yield value(q.DELIVERY_OF_EVENT, event_id=record.event_id, sink=delivery.sink)
    return bool(found == delivery.id)


def write_escalations(
    record: IngestRecord,
    singles: Sequence[NewDelivery],
    opened: dict[str, tuple[str, float]],
) -> Script[None]:
    """The escalation timer of each escalating rule that sent the call somewhere: on its
    first single delivery (due `after` from now), or on the digest the call opened (due
    `after` from the window's end: a digest escalates as a whole, once; a call joining an
    open digest adds no timer). A rule whose every delivery was muted has none."""
    timers = []
    for plan in record.escalations:
        single = next((d for d in singles if d.rule == plan.rule), None)
        if single is not None:
            found = (single.id, "single", record.received_at + plan.after)
        elif plan.rule in opened:
            digest_id, closes_at = opened[plan.rule]
            found = (digest_id, "digest", closes_at + plan.after)
        else:
            continue
        delivery_id, kind, due_at = found
        timers.append(
            {
                "event_id": record.event_id,
                "rule": plan.rule,
                "delivery_id": delivery_id,
                "kind": kind,
                "to_sinks": json.dumps(list(plan.to)),
                "due_at": due_at,
            }
        )
    if timers:
        yield CallMany(q.INSERT_ESCALATION, timers)


def claim_escalations(
    limit: int, owner: str, lease_until: float, now: float
) -> Script[list[DueEscalation]]:
    leased: Rows = yield rows(
        q.CLAIM_ESCALATIONS, now=now, limit=limit, owner=owner, lease_until=lease_until
    )
    return [
        DueEscalation(
            event_id=found["event_id"],
            rule=found["rule"],
            delivery_id=found["delivery_id"],
            kind=found["kind"],
            to=tuple(json.loads(found["to_text"])),
            due_at=found["due_at"],
            payload=bytes(found["payload"]),
        )
        for found in sorted(leased.dicts(), key=lambda d: (d["due_at"], d["event_id"]))
    ]


def fire_escalation(
    due: DueEscalation,
    owner: str,
    now: float,
    outcome: EscalationOutcome,
    new_deliveries: Sequence[tuple[str, str]],
) -> Script[tuple[EscalationOutcome, list[str]] | None]:
    """Settle a leased timer once: acknowledged meanwhile for its rule (read here, in the
    transaction that settles it) or not, it is done; escalated, `new_deliveries` ((id, sink) each)
    are written from the escalated delivery. None: this worker no longer holds it (taken
    over, or fired already), and nothing was written. Answers the outcome and the sinks
    given a new delivery."""
    acknowledged = yield value(
        q.ESCALATION_ACKNOWLEDGED,
        event_id=due.event_id,
        rule=due.rule,
        delivery_id=due.delivery_id,
        kind=due.kind,
    )
    if acknowledged:
        outcome = "acknowledged"
    elif outcome == "escalated" and not (
        yield value(q.ESCALATED_DELIVERY_EXISTS, id=due.delivery_id)
    ):
        outcome = "gone"
    settled = yield count(
        q.FINISH_ESCALATION,
        event_id=due.event_id,
        rule=due.rule,
        owner=owner,
        now=now,
        outcome=outcome,
    )
    if not settled:
        return None
    sinks: list[str] = []
    if outcome != "escalated":
        return outcome, sinks
    for delivery_id, sink in new_deliveries:
        made = {"id": delivery_id, "sink": sink, "now": now, "escalated_from": due.delivery_id}
        if due.kind == "digest":
            inserted = yield count(q.INSERT_ESCALATED_DIGEST, **made)
            if inserted:
                yield count(q.COPY_DIGEST_MEMBERS, id=delivery_id, escalated_from=due.delivery_id)
        else:
            inserted = yield count(
                q.INSERT_ESCALATED_DELIVERY, **made, event_id=due.event_id, rule=due.rule
            )
        if inserted:
            sinks.append(sink)
    if sinks:
        yield ANNOUNCE
    return outcome, sinks


def ingest_held(record: IngestRecord, dialect: Dialect) -> Script[IngestResult]:
    inserted = yield count(q.INSERT_HELD_EVENT, **event_columns(record))
    if inserted:
        yield from index_words(record.event_id, dialect)
    return IngestResult("accepted" if inserted else "duplicate", 0)


def route_held(
    record: IngestRecord, verification: str, audit: AuditRecord | None
) -> Script[IngestResult | None]:
    moved = yield count(
        q.ROUTE_HELD,
        **event_columns(record),
        verification=verification,
        also="not_verified" if verification == "released" else "pending",
    )
    if moved == 0:
        return None
    result = yield from write_deliveries(record)
    yield from recording(audit, deliveries=result.deliveries)
    return result


def waiting_sinks(record: IngestRecord) -> frozenset[str]:
    """The sinks of a record's deliveries that wait for a claim (neither written leased
    nor muted)."""
    return frozenset(
        d.sink for d in record.deliveries if d.lease_owner is None and d.muted_reason is None
    )


def join_digest(record: IngestRecord, delivery: NewDelivery, group: GroupJoin) -> Script[int]:
    """Add the event to the open digest of (rule, sink, key), or open one; 1 if done."""
    now = record.received_at
    where = {"rule": delivery.rule, "sink": delivery.sink, "key": group.key, "now": now}
    for _ in range(MAX_JOIN_TRIES):
        joined = yield row(q.JOIN_DIGEST, **where, max=group.max)
        if joined is not None:
            digest_id, position = joined["id"], joined["position"]
            break
        yield count(q.CLOSE_STALE_GROUP, **where, max=group.max)
        full = group.max is not None and group.max <= 1
        opened = yield value(
            q.OPEN_DIGEST,
            id=delivery.id,
            event_id=record.event_id,
            sink=delivery.sink,
            rule=delivery.rule,
            now=now,
            closes_at=now if full else now + group.window,
            key=group.key,
            open_group=None if full else group.key,
            trace_parent=record.trace_parent,
        )
        if opened is not None:
            digest_id, position = opened, 0
            break
        already = yield value(q.DELIVERY_OF_EVENT, event_id=record.event_id, sink=delivery.sink)
        if already is not None:
            return 0
        # Another transaction opened the group between our join and our insert: join it.
    else:
        raise StoreConflict(
            f"could not join or open a digest of rule {delivery.rule!r} for sink"
            f" {delivery.sink!r} after {MAX_JOIN_TRIES} tries"
        )
    yield count(q.ADD_MEMBER, delivery_id=digest_id, event_id=record.event_id, position=position)
    return 1


def claim(
    sink: str,
    limit: int,
    owner: str,
    lease_until: float,
    now: float,
    notices: bool = True,
    query: Query = q.CLAIM,
) -> Script[tuple[list[ClaimedDelivery], str | None]]:
    """The deliveries leased, and the store's erasure mark as the claim read it."""
    leased: Rows = yield rows(
        query,
        sink=sink,
        now=now,
        limit=limit,
        owner=owner,
        lease_until=lease_until,
        **({"notices": int(notices)} if query is q.CLAIM else {}),
    )
    marks = leased.column("erasure_mark")
    claimed = leased.sorted_by("next_attempt_at", "created_at", "id").to(ClaimedDelivery)
    return claimed, (marks[0] if marks else None)


def lease_checks(ids: str) -> Script[tuple[Rows, str | None]]:
    """Who holds each of these deliveries (`ids`: a JSON array), and the erasure mark."""
    holders: Rows = yield rows(q.STILL_LEASED, ids=ids)
    mark = yield from erasure_mark()
    return holders, mark


def erasure_mark() -> Script[str | None]:
    mark = yield value(q.ERASURE_MARK)
    return None if mark is None else str(mark)


def renew_leases(ids: Sequence[str], owner: str, until: float) -> Script[None]:
    yield CallMany(q.RENEW_LEASE, [{"id": id_, "owner": owner, "until": until} for id_ in ids])


def finish(
    delivery_id: str,
    owner: str,
    attempt: AttemptRecord,
    state: StateAfterAttempt,
    dialect: Dialect,
    notices: Sequence[NewNotice] = (),
) -> Script[bool]:
    moved = {
        "id": delivery_id,
        "owner": owner,
        "status": state.status,
        "next_attempt_at": state.next_attempt_at,
        "last_error": state.last_error,
        "delivered_at": state.delivered_at,
        "updated_at": attempt.started_at + attempt.duration,
        "steps": delivery_steps_column(attempt.steps, delivered=state.status == "delivered"),
    }
    recorded = {
        "started_at": attempt.started_at,
        "duration": attempt.duration,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "detail": attempt.detail,
        **exchange_columns(attempt.exchange),
        "attempt_steps": attempt_steps_column(attempt.steps),
    }
    notices = notices if state.status == "dead" else ()
    if dialect == "postgresql" and not notices:  # one statement, one round trip
        number = yield value(q.FINISH_RECORDING_ATTEMPT, **moved, **recorded)
        return number is not None
    number = yield value(q.FINISH, **moved)
    if number is None:
        return False
    yield count(q.RECORD_ATTEMPT, delivery_id=delivery_id, number=number, **recorded)
    yield from write_notices(notices, attempt.started_at + attempt.duration)
    return True


def write_notices(notices: Sequence[NewNotice], now: float) -> Script[None]:
    """Notices of dead deliveries (`on_dead`), announced to the lanes of every replica."""
    if notices:
        written = [
            {
                "id": notice.id,
                "sink": notice.sink,
                "rule": notice.rule,
                "notice_of": notice.notice_of,
                "notice": notice.notice,
                "now": now,
                "due": now + max(notice.hold, 0.0),
            }
            for notice in notices
        ]
        yield CallMany(q.INSERT_NOTICE, written)
        yield ANNOUNCE


def finish_many(
    finishes: Sequence[tuple[str, AttemptRecord, StateAfterAttempt]], owner: str, dialect: Dialect
) -> Script[list[str]]:
    """`finish` for each (delivery id, attempt, state after it), in one transaction (the
    notices of a sink sent as one message): the ids recorded (those `owner` still held)."""
    recorded: list[str] = []
    for delivery_id, attempt, state in finishes:
        if (yield from finish(delivery_id, owner, attempt, state, dialect)):
            recorded.append(delivery_id)
    return recorded


def kill_expired_waiting(
    where: dict[str, Any], notices_of: Callable[[DeadDelivery], Sequence[NewNotice]]
) -> Script[int]:
    """`KILL_EXPIRED_WAITING`, with the notices of the deliveries it made dead."""
    killed: Rows = yield rows(q.KILL_EXPIRED_WAITING_DEAD, **where)
    notices = [notice for dead in killed.to(DeadDelivery) for notice in notices_of(dead)]
    yield from write_notices(notices, where["now"])
    return len(killed)


def announcing(
    query: Query, audit: AuditRecord | None = None, *, counted: bool = False, **parameters: Any
) -> Script[int]:
    """Run one statement; if it changed rows, announce them and write `audit` (with their
    number as `count` when `counted`)."""
    changed: int = yield count(query, **parameters)
    if changed:
        yield from recording(audit, **({"count": changed} if counted else {}))
        yield ANNOUNCE
    return changed


def audited(query: Query, audit: AuditRecord | None, **parameters: Any) -> Script[int]:
    """Run one statement; if it changed a row, write `audit` in the same transaction."""
    changed: int = yield count(query, **parameters)
    if changed:
        yield from recording(audit)
    return changed


def recording(audit: AuditRecord | None, **added: Any) -> Script[None]:
    """Write an audit record (if any), `added` joined to its details."""
    if audit is None:
        return
    details = audit.details
    if added:
        details = json.dumps({**json.loads(details), **added}, ensure_ascii=False)
    yield count(q.RECORD_AUDIT, **{**asdict(audit), "details": details})


def list_audit(filters: AuditFilters, limit: int) -> Script[list[AuditRecord]]:
    parameters: dict[str, Any] = {
        name: getattr(filters, name)
        for name in ("since", "actor", "action")
        if getattr(filters, name) is not None
    }
    conditions = tuple(parameters)
    if filters.before is not None:
        conditions += ("before",)
        parameters["before_at"], parameters["before_id"] = filters.before
    found: Rows = yield rows(q.list_audit(conditions), **parameters, limit=limit)
    return found.to(AuditRecord)


def audit_choices() -> Script[tuple[list[str], list[str]]]:
    actors: Rows = yield rows(q.AUDIT_ACTORS, limit=q.AUDIT_CHOICES)
    actions: Rows = yield rows(q.AUDIT_ACTIONS, limit=q.AUDIT_CHOICES)
    return actors.column("actor"), actions.column("action")


@overload
def single(query: Query, shape: Literal["rows"], **parameters: Any) -> Script[Rows]: ...
@overload
def single(query: Query, shape: Literal["row"], **parameters: Any) -> Script[Row | None]: ...
@overload
def single(query: Query, shape: Literal["value"], **parameters: Any) -> Script[Any]: ...
@overload
def single(query: Query, shape: Literal["count"] = ..., **parameters: Any) -> Script[int]: ...
def single(query: Query, shape: Shape = "count", **parameters: Any) -> Script[Any]:
    """A script of one statement, answering with its result (of `shape`)."""
    return (yield Call(query, parameters, shape))


def keep_token(token: OutboundToken) -> Script[None]:
    """`token` written over its sink's and auth settings' one; the sink's others dropped."""
    yield count(q.PUT_OUTBOUND_TOKEN, **asdict(token))
    yield count(q.DROP_OLD_OUTBOUND_TOKENS, sink=token.sink, auth_key=token.auth_key)


def backlog_of(found: Rows) -> dict[str, SinkBacklog]:
    counts: dict[str, dict[str, tuple[int, float]]] = {}
    for by_status in found.dicts():
        counts.setdefault(by_status["sink"], {})[by_status["status"]] = (
            by_status["deliveries"],
            by_status["oldest"],
        )
    backlog: dict[str, SinkBacklog] = {}
    for sink, by_status in counts.items():
        pending_count, oldest = by_status.get("pending", (0, None))
        dead_count, _ = by_status.get("dead", (0, None))
        backlog[sink] = SinkBacklog(pending_count, dead_count, oldest)
    return backlog


def silence_of(stored: Any) -> SilenceRecord:
    """A stored silence row (a mapping by column name) as a `SilenceRecord`."""
    sinks = stored["sinks"]
    return SilenceRecord(
        id=stored["id"],
        when=stored["condition"],
        sinks=None if sinks is None else tuple(json.loads(sinks)),
        starts_at=stored["starts_at"],
        ends_at=stored["ends_at"],
        comment=stored["comment"],
        created_at=stored["created_at"],
        expired_at=stored["expired_at"],
    )


# A call's worst delivery state first: what needs a person before what went out.
WORST_FIRST: tuple[DeliveryStatus, ...] = ("dead", "pending", "muted", "delivered")
# Distinct values of a call column offered as choices: enough for any real column.
MAX_COLUMN_VALUES = 100
UPPER_CASE_FILTERS = ("status", "hangup_cause")
# Whether a search's words are common, which decides how the calls holding them are
# found (`queries.DIALECT_FRAGMENTS`, "words_match"): SQLite counts the matches up to
# FEW_MATCHES; PostgreSQL counts them among the NEWEST_SAMPLE newest calls, as a page of
# them read by walking would need (bench/README.md, "Console pages with 300,000 calls").
FEW_MATCHES = 2000
NEWEST_SAMPLE = 5000
COMMON_IN_SAMPLE = 17  # a page of 51 within 15,000 calls walked


def list_events(
    filters: CallFilters, before: EventCursor | None, limit: int, dialect: Dialect
) -> Script[list[EventView]]:
    parameters: dict[str, Any] = filters.given()
    for name in UPPER_CASE_FILTERS:  # stored in upper case (`event_columns`)
        if isinstance(parameters.get(name), str):
            parameters[name] = parameters[name].upper()
    conditions = tuple(parameters)
    if len(filters.words) > MAX_SEARCH_WORDS:
        raise ValueError(f"at most {MAX_SEARCH_WORDS} words, got {len(filters.words)}")
    if filters.words:
        terms = search_terms(filters.words)
        if not terms:  # punctuation alone: no word of any call is made of it
            return []
        if len(terms) > MAX_SEARCH_TERMS:
            raise ValueError(f"at most {MAX_SEARCH_TERMS} search terms, got {len(terms)}")
        sqlite = dialect == "sqlite"
        parameters["words"] = fts5_query(terms) if sqlite else tsquery(terms)
        limit_counted, common = (
            (FEW_MATCHES, FEW_MATCHES) if sqlite else (NEWEST_SAMPLE, COMMON_IN_SAMPLE)
        )
        matches = yield value(q.COUNT_WORD_MATCHES, words=parameters["words"], limit=limit_counted)
        conditions += ("common_words" if matches >= common else "words",)
    if before is not None:
        conditions += ("before",)
        parameters["before_at"], parameters["before_id"] = before
    query = q.list_events(conditions)
    found: Rows = yield rows(query, **parameters, limit=limit)
    return found.to(EventView)


def worst_delivery_states(event_ids: Sequence[str]) -> Script[dict[str, DeliveryStatus]]:
    if not event_ids:
        return {}
    found: Rows = yield rows(q.WORST_DELIVERY_RANKS, ids=json.dumps(list(event_ids)))
    return {
        event_id: WORST_FIRST[rank]
        for event_id, rank in zip(found.column("event_id"), found.column("rank"), strict=True)
    }


def sink_counts(delivered_since: float | None) -> Script[dict[str, SinkCounts]]:
    by_status = yield rows(q.SINK_COUNTS)
    delivered = Rows((), [])
    if delivered_since is not None:
        delivered = yield rows(q.DELIVERED_SINCE, since=delivered_since)
    numbers: dict[str, dict[str, Any]] = {}
    for found in by_status.dicts():
        sink = numbers.setdefault(found["sink"], {})
        sink[found["status"]] = int(found["deliveries"])
        if found["status"] == "pending":
            sink["retrying"] = int(found["tried"] or 0)
            sink["oldest_pending_created_at"] = found["oldest"]
    for found in delivered.dicts():
        numbers.setdefault(found["sink"], {})["delivered_since"] = int(found["delivered"])
    return {sink: SinkCounts(**counts) for sink, counts in numbers.items()}


def live_workers(owner: str, now: float) -> Script[int]:
    yield count(q.HEARTBEAT, owner=owner, now=now)
    yield count(q.FORGET_WORKERS, before=now - FORGET_WORKER_AFTER)
    live = yield value(q.LIVE_WORKERS, since=now - WORKER_LIVE_SECONDS)
    return max(int(live), 1)


# --- the store -------------------------------------------------------------------------


NewDeliveries = Callable[[frozenset[str] | None], None]


class QueueStore(Store):
    """Every face of the store (`router.store.base`) over a `Connector`: every backend's
    one implementation of the queue. The connector's `counts` tell its commits."""

    def __init__(self, connector: Connector, *, owns_leases: bool = True) -> None:
        self.connector = connector
        # A store owned by one serving process releases every lease when it opens; a CLI
        # command opening it beside a running server, or a shared store, leaves them alone.
        self.owns_leases = owns_leases and not connector.shared
        self._listeners: list[NewDeliveries] = []
        # `still_leased`: answered from what this process knows of its leases when it
        # can (`router.store.leases`); else the asks queue until the loop's next turn,
        # answered by one read.
        self.leases = LeaseMemory()
        self._lease_checks: list[tuple[str, str, asyncio.Future[bool]]] = []
        self._lease_reader: asyncio.Task[None] | None = None
        self._mark_reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connector.describe()!r})"

    def on_new_deliveries(self, callback: NewDeliveries) -> None:
        self._listeners.append(callback)

    def _notify(self, sinks: frozenset[str] | None = None) -> None:
        for callback in self._listeners:
            callback(sinks)

    # --- lifecycle ---

    async def open(self, *, create: bool = True) -> None:
        """A store error while opening is raised as a `StoreOpenError`."""
        dialect, where = self.connector.dialect, self.connector.describe()
        try:
            await self.connector.open(
                lambda: migrate(
                    dialect, release_leases=self.owns_leases, create=create, where=where
                ),
                create=create,
            )
        except StoreOpenError:
            raise
        except StoreError as error:
            raise StoreOpenError(f"cannot open the store: {error}") from error

    async def close(self) -> None:
        await self.connector.close()

    async def ping(self) -> None:
        await self.connector.read(lambda: single(q.PING, "value"))

    async def probe_write(self) -> None:
        await self._write_one(q.PROBE_WRITE, now=time.time())

    # --- writes ---

    async def ingest(self, record: IngestRecord) -> IngestResult:
        before = self.leases.before()
        dialect = self.connector.dialect
        result = await self.connector.write(
            lambda: ingest(record, dialect),
            group=True,
            locks=group_locks([record]),
            order=record.event_id,
        )
        if result.status == "accepted":
            self.leases.written(
                (
                    (d.id, d.lease_owner, d.lease_until - record.received_at)
                    for d in record.deliveries
                    if d.lease_owner is not None and d.lease_until is not None
                ),
                before,
            )
        waiting = waiting_sinks(record) if result.deliveries > 0 else frozenset()
        if waiting:
            self._notify(waiting)
        return result

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
        if limit <= 0:
            return []
        before = self.leases.before()
        claimed, mark = await self.connector.write(
            lambda: claim(sink, limit, owner, now + lease_seconds, now, notices),
            one_statement=True,
        )
        if claimed:
            self.leases.claimed((d.id for d in claimed), owner, lease_seconds, before, mark)
        return claimed

    async def claim_notices(
        self, sink: str, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        lease_until = now + lease_seconds
        before = self.leases.before()
        claimed, mark = await self.connector.write(
            lambda: claim(sink, limit, owner, lease_until, now, query=q.CLAIM_NOTICES),
            one_statement=True,
        )
        if claimed:
            self.leases.claimed((d.id for d in claimed), owner, lease_seconds, before, mark)
        return claimed

    async def claim_escalations(
        self, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[DueEscalation]:
        if limit <= 0:
            return []
        return await self.connector.write(
            lambda: claim_escalations(limit, owner, now + lease_seconds, now), one_statement=True
        )

    async def next_escalation_due(self) -> float | None:
        found = await self.connector.read(lambda: single(q.NEXT_ESCALATION_DUE, "value"))
        return None if found is None else float(found)

    async def fire_escalation(
        self,
        due: DueEscalation,
        owner: str,
        now: float,
        outcome: EscalationOutcome,
        new_deliveries: Sequence[tuple[str, str]] = (),
    ) -> tuple[EscalationOutcome, list[str]] | None:
        settled = await self.connector.write(
            lambda: fire_escalation(due, owner, now, outcome, new_deliveries)
        )
        if settled is not None and settled[1]:
            self._notify(frozenset(settled[1]))
        return settled

    async def escalations_of(self, delivery_id: str) -> list[str]:
        found = await self.connector.read(lambda: single(q.ESCALATIONS_OF, "rows", id=delivery_id))
        return list(found.column("id"))

    async def renew_leases(self, ids: Iterable[str], owner: str, until: float) -> None:
        id_list = list(ids)
        if id_list:
            await self.connector.write(
                lambda: renew_leases(id_list, owner, until), one_statement=True
            )

    async def finish(
        self,
        delivery_id: str,
        owner: str,
        attempt: AttemptRecord,
        *,
        next_attempt_at: float | None = None,
        notices: Sequence[NewNotice] = (),
    ) -> bool:
        state = StateAfterAttempt.of(attempt, next_attempt_at)  # a bad outcome fails here
        dialect = self.connector.dialect
        notices = notices if state.status == "dead" else ()
        finished = await self.connector.write(
            lambda: finish(delivery_id, owner, attempt, state, dialect, notices),
            one_statement=dialect == "postgresql" and not notices,
        )
        if finished and notices:
            self._notify(frozenset(notice.sink for notice in notices))
        return finished

    async def finish_many(
        self,
        finishes: Sequence[tuple[str, AttemptRecord, float | None]],
        owner: str,
    ) -> list[str]:
        if not finishes:
            return []
        states = [
            (delivery_id, attempt, StateAfterAttempt.of(attempt, next_attempt_at))
            for delivery_id, attempt, next_attempt_at in finishes
        ]
        dialect = self.connector.dialect
        return await self.connector.write(lambda: finish_many(states, owner, dialect))

    async def defer(self, delivery_id: str, owner: str, next_attempt_at: float) -> None:
        parameters = {"id": delivery_id, "owner": owner, "next_attempt_at": next_attempt_at}
        await self._write_one(q.DEFER, now=time.time(), **parameters)

    async def kill(self, delivery_id: str, owner: str | None, reason: str) -> None:
        parameters = {"id": delivery_id, "owner": owner, "reason": reason}
        await self._write_one(q.KILL, now=time.time(), **parameters)

    async def kill_expired_waiting(
        self,
        sink: str,
        started_before: float,
        reason: str,
        now: float,
        notices_of: Callable[[DeadDelivery], Sequence[NewNotice]] | None = None,
    ) -> int:
        where = {"sink": sink, "started_before": started_before, "reason": reason, "now": now}
        if notices_of is None:
            return await self._write_one(q.KILL_EXPIRED_WAITING, **where)
        killed = await self.connector.write(lambda: kill_expired_waiting(where, notices_of))
        if killed:
            self._notify()
        return killed

    async def replay(self, delivery_id: str, now: float, audit: AuditRecord | None = None) -> bool:
        return await self._announcing(q.REPLAY, None, audit, id=delivery_id, now=now) > 0

    async def replay_dead(
        self,
        sink: str | None,
        now: float,
        rule: str | None = None,
        audit: AuditRecord | None = None,
    ) -> int:
        sinks = None if sink is None else frozenset((sink,))
        return await self._announcing(
            q.REPLAY_DEAD, sinks, audit, counted=True, sink=sink, rule=rule, now=now
        )

    async def replay_muted(
        self,
        sink: str | None,
        now: float,
        rule: str | None = None,
        audit: AuditRecord | None = None,
    ) -> int:
        sinks = None if sink is None else frozenset((sink,))
        return await self._announcing(
            q.REPLAY_MUTED, sinks, audit, counted=True, sink=sink, rule=rule, now=now
        )

    async def mute(self, delivery_id: str, owner: str, reason: str, now: float) -> bool:
        parameters = {"id": delivery_id, "owner": owner, "reason": reason, "now": now}
        return await self._write_one(q.MUTE, **parameters) > 0

    # --- operators' controls ---

    async def add_silence(self, silence: SilenceRecord, audit: AuditRecord | None = None) -> None:
        await self._audited(
            q.INSERT_SILENCE,
            audit,
            id=silence.id,
            condition=silence.when,
            sinks=None if silence.sinks is None else json.dumps(list(silence.sinks)),
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            comment=silence.comment,
            created_at=silence.created_at,
        )

    async def list_silences(self, ended_after: float | None = None) -> list[SilenceRecord]:
        found = await self.connector.read(
            lambda: single(q.LIST_SILENCES, "rows", ended_after=ended_after)
        )
        return [silence_of(stored) for stored in found.dicts()]

    async def expire_silence(
        self, silence_id: str, now: float, audit: AuditRecord | None = None
    ) -> SilenceRecord | None:
        await self._audited(q.EXPIRE_SILENCE, audit, id=silence_id, now=now)
        found = await self.connector.read(lambda: single(q.GET_SILENCE, "row", id=silence_id))
        return None if found is None else silence_of(found)

    async def purge_silences(self, ended_before: float) -> int:
        await self._write_one(q.PURGE_PAUSES, before=ended_before)
        return await self._write_one(q.PURGE_SILENCES, before=ended_before)

    async def pause_sink(self, pause: SinkPause, audit: AuditRecord | None = None) -> None:
        await self._audited(
            q.PAUSE_SINK,
            audit,
            sink=pause.sink,
            until=pause.until,
            comment=pause.comment,
            created_at=pause.created_at,
        )

    async def resume_sink(self, sink: str, audit: AuditRecord | None = None) -> bool:
        return await self._audited(q.RESUME_SINK, audit, sink=sink) > 0

    async def sink_pauses(self, now: float) -> list[SinkPause]:
        found = await self.connector.read(lambda: single(q.SINK_PAUSES, "rows", now=now))
        return found.to(SinkPause)

    # --- Slack threads (thread_by) ---

    async def thread(self, sink: str, thread_key: str, since: float) -> SlackThread | None:
        found = await self.connector.read(
            lambda: single(q.GET_THREAD, "row", sink=sink, thread_key=thread_key, since=since)
        )
        return None if found is None else from_row(SlackThread, found)

    async def start_thread(self, thread: SlackThread, since: float) -> bool:
        parameters = {
            "sink": thread.sink,
            "thread_key": thread.thread_key,
            "channel": thread.channel,
            "ts": thread.ts,
            "parent": thread.parent,
            "started_at": thread.started_at,
            "since": since,
        }
        won = await self.connector.write(
            lambda: single(q.START_THREAD, "value", **parameters), one_statement=True
        )
        return won is not None

    async def count_thread_reply(self, sink: str, thread_key: str, ts: str) -> int | None:
        parameters = {"sink": sink, "thread_key": thread_key, "ts": ts}
        replies = await self.connector.write(
            lambda: single(q.COUNT_THREAD_REPLY, "value", **parameters), one_statement=True
        )
        return None if replies is None else int(replies)

    async def end_thread(self, sink: str, thread_key: str, ts: str) -> None:
        await self._write_one(q.END_THREAD, sink=sink, thread_key=thread_key, ts=ts)

    # --- acting from Slack's buttons ---

    async def extend_silence(
        self, silence_id: str, ends_at: float, now: float, audit: AuditRecord | None = None
    ) -> bool:
        parameters = {"id": silence_id, "ends_at": ends_at, "now": now}
        return await self._audited(q.EXTEND_SILENCE, audit, **parameters) > 0

    async def event_payload(self, event_id: str) -> bytes | None:
        found = await self.connector.read(lambda: single(q.EVENT_PAYLOAD, "value", id=event_id))
        return None if found is None else bytes(found)

    async def acknowledge(
        self, acknowledgement: Acknowledgement, audit: AuditRecord | None = None
    ) -> Acknowledgement:
        await self._audited(q.ACKNOWLEDGE, audit, **asdict(acknowledgement))
        found = await self.acknowledgement(
            acknowledgement.kind, acknowledgement.target_id, acknowledgement.rule
        )
        return found or acknowledgement

    async def acknowledgement(
        self, kind: AcknowledgedKind, target_id: str, rule: str
    ) -> Acknowledgement | None:
        found = await self.connector.read(
            lambda: single(q.GET_ACKNOWLEDGEMENT, "row", kind=kind, id=target_id, rule=rule)
        )
        return None if found is None else from_row(Acknowledgement, found)

    async def acknowledgements_since(self, since: float) -> list[Acknowledgement]:
        found = await self.connector.read(
            lambda: single(q.ACKNOWLEDGEMENTS_SINCE, "rows", since=since)
        )
        return found.to(Acknowledgement)

    # --- the audit ---

    async def record_audit(self, record: AuditRecord) -> None:
        await self._write_one(q.RECORD_AUDIT, **asdict(record))

    async def list_audit(self, filters: AuditFilters, limit: int = 100) -> list[AuditRecord]:
        return await self.connector.read(lambda: list_audit(filters, limit))

    async def audit_choices(self) -> tuple[list[str], list[str]]:
        return await self.connector.read(audit_choices)

    async def purge_audit(self, before: float) -> int:
        await self._write_one(q.PURGE_ACKNOWLEDGEMENTS, before=before)
        return await self._write_one(q.PURGE_AUDIT, before=before)

    # --- console sessions ---

    async def start_session(self, session: SessionRecord) -> None:
        await self._write_one(q.START_SESSION, **asdict(session))

    async def session(self, id_hash: str, now: float) -> SessionRecord | None:
        found = await self.connector.read(
            lambda: single(q.GET_SESSION, "row", id_hash=id_hash, now=now)
        )
        return None if found is None else from_row(SessionRecord, found)

    async def end_session(self, id_hash: str) -> bool:
        return await self._write_one(q.END_SESSION, id_hash=id_hash) > 0

    async def purge_sessions(self, now: float) -> int:
        return await self._write_one(q.PURGE_SESSIONS, now=now)

    async def _announcing(
        self,
        query: Query,
        sinks: frozenset[str] | None,
        audit: AuditRecord | None = None,
        *,
        counted: bool = False,
        **parameters: Any,
    ) -> int:
        changed = await self.connector.write(
            lambda: announcing(query, audit, counted=counted, **parameters)
        )
        if changed:
            self._notify(sinks)
        return changed

    async def _audited(self, query: Query, audit: AuditRecord | None, **parameters: Any) -> int:
        """Run one statement as a write, with `audit` in its transaction if it changed a
        row; the number of rows it changed."""
        if audit is None:
            return await self._write_one(query, **parameters)
        return await self.connector.write(lambda: audited(query, audit, **parameters))

    async def _write_one(self, query: Query, **parameters: Any) -> int:
        """Run one statement as a write; the number of rows it changed."""
        return await self.connector.write(lambda: single(query, **parameters), one_statement=True)

    async def purge(self, received_before: float) -> int:
        def script() -> Script[int]:
            # Threads that old have long expired (`thread_for` is far shorter).
            yield count(q.PURGE_THREADS, before=received_before)
            purged: int = yield count(q.PURGE, received_before=received_before)
            return purged

        return await self.connector.write(script)

    # --- forgetting a caller ---

    async def forget(self, erasure: Erasure) -> ErasureCounts:
        if erasure.dry_run:
            return await self.connector.read(lambda: forget(erasure))
        since = time.time() - RECHECK_SECONDS
        scan = Scan(await self.connector.read(lambda: mentioning(erasure)), since)
        self.leases.erasing()  # leases this process holds are checked in the store now
        try:
            return await self.connector.write(lambda: forget(erasure, scan))
        finally:
            self.leases.erasing()

    async def secret(self, name: str) -> str:
        found = await self.connector.read(lambda: single(q.GET_SETTING, "value", name=name))
        if found is None:
            made = secrets.token_hex(32)
            await self._write_one(q.ADD_SETTING, name=name, value=made)
            found = await self.connector.read(lambda: single(q.GET_SETTING, "value", name=name))
        return str(found)

    # --- sinks' access tokens ---

    async def outbound_token(self, sink: str, auth_key: str) -> OutboundToken | None:
        found = await self.connector.read(
            lambda: single(q.GET_OUTBOUND_TOKEN, "row", sink=sink, auth_key=auth_key)
        )
        return None if found is None else from_row(OutboundToken, found)

    async def keep_outbound_token(self, token: OutboundToken) -> None:
        await self.connector.write(lambda: keep_token(token))

    async def still_leased(self, delivery_id: str, owner: str) -> bool:
        """Asked before every send: answered from `self.leases` when nothing can have
        taken the lease; else the asks of one turn of the loop share one read."""
        held = self.leases.still_held(delivery_id, owner)
        if self.leases.mark_due() and (self._mark_reader is None or self._mark_reader.done()):
            self._mark_reader = asyncio.create_task(self._read_mark(), name="erasure-mark-read")
        if held:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._lease_checks.append((delivery_id, owner, future))
        if self._lease_reader is None or self._lease_reader.done():
            self._lease_reader = asyncio.create_task(
                self._read_lease_checks(), name="still-leased-reads"
            )
        return await future

    async def _read_lease_checks(self) -> None:
        await asyncio.sleep(0)  # let every send of this turn ask
        while self._lease_checks:
            batch = self._lease_checks[:LEASE_CHECKS_PER_READ]
            del self._lease_checks[:LEASE_CHECKS_PER_READ]
            ids = json.dumps(sorted({delivery_id for delivery_id, _, _ in batch}))
            asked_at = self.leases.clock()
            try:
                found, mark = await self.connector.read(functools.partial(lease_checks, ids))
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.leases.read_mark(mark, asked_at)
            holders = dict(zip(found.column("id"), found.column("lease_owner"), strict=True))
            for delivery_id, owner, future in batch:
                if not future.done():
                    future.set_result(holders.get(delivery_id) == owner)

    async def _read_mark(self) -> None:
        asked_at = self.leases.clock()
        try:
            mark = await self.connector.read(erasure_mark)
        except Exception:  # checks go to the store until a read succeeds
            return
        self.leases.read_mark(mark, asked_at)

    # --- reads ---

    async def digest_calls(self, delivery_id: str) -> list[bytes]:
        found = await self.connector.read(lambda: single(q.DIGEST_CALLS, "rows", id=delivery_id))
        return [bytes(payload) for payload in found.column("payload")]

    async def open_groups(self, now: float) -> dict[str, int]:
        found = await self.connector.read(lambda: single(q.OPEN_GROUPS, "rows", now=now))
        return {by_sink["sink"]: by_sink["digests"] for by_sink in found.dicts()}

    async def next_due_at(self, sink: str) -> float | None:
        return await self.connector.read(lambda: single(q.NEXT_DUE, "value", sink=sink))

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        sink: str | None = None,
        limit: int = 100,
        offset: int = 0,
        rule: str | None = None,
        call: str | None = None,
    ) -> list[DeliveryView]:
        filters = {"status": status, "sink": sink, "rule": rule, "call": call}
        given = {name: value for name, value in filters.items() if value is not None}
        query = q.LIST_DELIVERIES[tuple(given)]
        found = await self.connector.read(
            lambda: single(query, "rows", **given, limit=limit, offset=offset)
        )
        return found.to(DeliveryView)

    async def get_delivery(self, delivery_id: str) -> DeliveryView | None:
        found = await self.connector.read(lambda: single(q.GET_DELIVERY, "row", id=delivery_id))
        return None if found is None else from_row(DeliveryView, found)

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        found = await self.connector.read(lambda: single(q.LIST_ATTEMPTS, "rows", id=delivery_id))
        return [
            AttemptRecord(
                number=stored["number"],
                started_at=stored["started_at"],
                duration=stored["duration"],
                outcome=stored["outcome"],
                status_code=stored["status_code"],
                error=stored["error"],
                detail=stored["detail"],
                exchange=exchange_of(stored),
                steps=steps_of(stored.get("steps")),
            )
            for stored in found.dicts()
        ]

    async def oldest_waiting(self, sink: str, now: float) -> float | None:
        found = await self.connector.read(
            lambda: single(q.OLDEST_WAITING, "value", sink=sink, now=now)
        )
        return None if found is None else float(found)

    async def pending_sinks(self) -> set[str]:
        found = await self.connector.read(lambda: single(q.PENDING_SINKS, "rows"))
        return set(found.column("sink"))

    async def backlog(self) -> dict[str, SinkBacklog]:
        return backlog_of(await self.connector.read(lambda: single(q.BACKLOG, "rows")))

    # --- verify mode ---

    async def ingest_held(self, record: IngestRecord) -> IngestResult:
        return await self.connector.write(
            lambda: ingest_held(record, self.connector.dialect), group=True, order=record.event_id
        )

    async def due_held(self, now: float, limit: int) -> list[HeldCall]:
        found = await self.connector.read(lambda: single(q.DUE_HELD, "rows", now=now, limit=limit))
        return [
            HeldCall(held.event_id, bytes(held.payload), held.received_at, held.verify_attempts)
            for held in found.to(HeldCall)
        ]

    async def route_held(
        self,
        record: IngestRecord,
        verification: Verification,
        audit: AuditRecord | None = None,
    ) -> IngestResult | None:
        result = await self.connector.write(
            lambda: route_held(record, verification, audit), locks=group_locks([record])
        )
        if result is not None and result.deliveries > 0:
            self._notify()
        return result

    async def mark_not_verified(self, event_ids: Sequence[str]) -> int:
        return await self._each(q.MARK_NOT_VERIFIED, [{"id": i} for i in event_ids])

    async def postpone_verification(self, event_ids: Sequence[str], next_at: float) -> int:
        return await self._each(
            q.POSTPONE_VERIFICATION, [{"id": i, "next_at": next_at} for i in event_ids]
        )

    async def _each(self, query: Query, parameters: list[dict[str, Any]]) -> int:
        """One statement per parameter set, in one transaction; rows changed in all."""

        def script() -> Script[int]:
            changed = 0
            for one in parameters:
                changed += yield count(query, **one)
            return changed

        return await self.connector.write(script) if parameters else 0

    # --- the console's reads ---

    async def list_events(
        self, filters: CallFilters, before: EventCursor | None = None, limit: int = 50
    ) -> list[EventView]:
        dialect = self.connector.dialect
        return await self.connector.read(lambda: list_events(filters, before, limit, dialect))

    async def worst_delivery_states(self, event_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        ids = list(event_ids)
        return await self.connector.read(lambda: worst_delivery_states(ids))

    async def call_column_values(self, column: CallColumn) -> list[str]:
        query = q.CALL_COLUMN_VALUES[column]
        found = await self.connector.read(lambda: single(query, "rows", limit=MAX_COLUMN_VALUES))
        return [str(value) for value in found.column("value")]

    async def get_event(self, event_id: str) -> EventView | None:
        found = await self.connector.read(lambda: single(q.GET_EVENT, "row", id=event_id))
        return None if found is None else from_row(EventView, found)

    async def deliveries_of_event(self, event_id: str) -> list[DeliveryView]:
        found = await self.connector.read(
            lambda: single(q.DELIVERIES_OF_EVENT, "rows", call=event_id)
        )
        return found.to(DeliveryView)

    async def sink_counts(self, delivered_since: float | None = None) -> dict[str, SinkCounts]:
        return await self.connector.read(lambda: sink_counts(delivered_since))

    # --- workers of a shared store ---

    async def live_workers(self, owner: str, now: float) -> int:
        if not self.connector.shared:
            return 1
        return await self.connector.write(lambda: live_workers(owner, now))

    async def retire_worker(self, owner: str) -> None:
        if self.connector.shared:
            await self._write_one(q.RETIRE_WORKER, owner=owner)
