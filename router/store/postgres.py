"""The shared store: PostgreSQL through asyncpg, for several router replicas at once.

Same schema and migrations as the SQLite store (`router.store.migrations`), with
what running side by side needs:

- claims take rows with `FOR UPDATE SKIP LOCKED`, so two replicas never lease the
  same delivery, and a crashed replica's leases simply expire for another to take;
- migrations run under a transaction-level advisory lock, so replicas starting
  together migrate once;
- concurrent `ingest` calls of one process are group-committed: what is queued in
  one loop tick (up to `max_batch`) shares one transaction, each call in its own
  savepoint; a duplicate call id is an `INSERT … ON CONFLICT DO NOTHING` that
  returns nothing, on this replica or any other;
- each committed batch with new deliveries sends one NOTIFY; every replica LISTENs
  on a dedicated connection and wakes its workers. If that connection drops, the
  store logs it and reconnects with backoff; the workers poll meanwhile;
- `live_workers` counts the engines that heartbeat into the `replicas` table, so a
  per-process rate limit can be divided among them (docs/postgresql.md);
- a grouped call joins its open digest with one conditional UPDATE, or opens one
  with INSERT … ON CONFLICT DO NOTHING against the unique index on the open group.
  Before anything else, an ingest transaction takes a transaction-level advisory
  lock per (rule, sink, group key) it touches, in one global order (by lock key):
  every replica's batch then waits for a group before it holds any row, so joins
  never deadlock, and one group is one digest however many replicas take its calls.

Unlike the SQLite store, `open()` releases no lease: they may belong to live replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from router.store.base import (
    PROBE_WRITE,
    WORKER_LIVE_SECONDS,
    AttemptRecord,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryView,
    GroupJoin,
    IngestRecord,
    IngestResult,
    NewDelivery,
    SinkBacklog,
    StateAfterAttempt,
    Store,
)
from router.store.migrations import SCHEMA_VERSION_DDL, pending, statements_for

log = logging.getLogger(__name__)

URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_MAX_BATCH = 256
DEFAULT_POOL_MIN = 2
DEFAULT_POOL_MAX = 10
# No statement waits longer than this on a frozen or overloaded server (asyncpg raises
# TimeoutError); the slow maintenance statements (migrations, purge) get LONG_STATEMENT.
DEFAULT_COMMAND_TIMEOUT = 30.0
LONG_STATEMENT_TIMEOUT = 3600.0
CHANNEL = "revring_router_deliveries"
LISTENER_APPLICATION_NAME = "revring-router-listener"
# Any fixed 64-bit number: replicas migrating at once queue on it.
MIGRATION_LOCK_KEY = 0x7265_7672_696E_6701
LISTEN_BACKOFF_MIN = 0.5
LISTEN_BACKOFF_MAX = 30.0
FORGET_WORKER_AFTER = 24 * 3600.0
# Joining loses a race only if another transaction opened or closed the group in
# between; the group lock rules that out, so a few tries are plenty.
MAX_JOIN_TRIES = 3

# Not part of the data model, so not a shared migration: replicas exist only here.
COORDINATION_DDL = (
    "CREATE TABLE IF NOT EXISTS replicas ("
    " owner TEXT PRIMARY KEY,"
    " last_seen DOUBLE PRECISION NOT NULL"
    ")"
)

SELECT_DELIVERY_VIEWS = (
    "SELECT id, event_id, sink, rule, status, attempts, last_error, next_attempt_at,"
    " created_at, updated_at, delivered_at, kind,"
    " CASE WHEN kind = 'digest' THEN member_count ELSE 1 END FROM deliveries"
)
NEWEST_FIRST_PAGE = " ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
# One literal query per filter combination, so each can use its own index.
LIST_DELIVERIES: dict[tuple[str, ...], str] = {
    (): SELECT_DELIVERY_VIEWS + NEWEST_FIRST_PAGE.format(limit="$1", offset="$2"),
    ("status",): SELECT_DELIVERY_VIEWS
    + " WHERE status = $1"
    + NEWEST_FIRST_PAGE.format(limit="$2", offset="$3"),
    ("sink",): SELECT_DELIVERY_VIEWS
    + " WHERE sink = $1"
    + NEWEST_FIRST_PAGE.format(limit="$2", offset="$3"),
    ("status", "sink"): SELECT_DELIVERY_VIEWS
    + " WHERE status = $1 AND sink = $2"
    + NEWEST_FIRST_PAGE.format(limit="$3", offset="$4"),
}

INSERT_EVENT = (
    "INSERT INTO events (id, payload, received_at, status, direction)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id"
)
INSERT_DELIVERIES = (
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, lease_owner, lease_until)"
    " SELECT d.id, $1, d.sink, d.rule, 'pending', $2, $2, $2, $2, d.lease_owner, d.lease_until"
    " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::float8[])"
    " AS d (id, sink, rule, lease_owner, lease_until)"
    " ON CONFLICT (event_id, sink) DO NOTHING RETURNING id"
)
GROUP_LOCK = "SELECT pg_advisory_xact_lock($1)"
# The open digest takes one more call; reaching `max` ($5) closes it and makes it due.
JOIN_DIGEST = (
    "UPDATE deliveries SET member_count = member_count + 1, updated_at = $4,"
    " open_group = CASE WHEN member_count + 1 >= $5 THEN NULL ELSE open_group END,"
    " closes_at = CASE WHEN member_count + 1 >= $5 THEN $4 ELSE closes_at END,"
    " next_attempt_at = CASE WHEN member_count + 1 >= $5"
    "  THEN LEAST(next_attempt_at, $4) ELSE next_attempt_at END"
    " WHERE rule = $1 AND sink = $2 AND open_group = $3 AND status = 'pending'"
    " AND attempts = 0 AND closes_at > $4 AND ($5::integer IS NULL OR member_count < $5)"
    " RETURNING id, member_count - 1"
)
# Whatever still holds the key but cannot take this call (its window is over) lets go of
# it. The test repeats the join's, so a digest committed by another transaction since our
# join looked stays open and our insert loses the race instead.
CLOSE_STALE_GROUP = (
    "UPDATE deliveries SET open_group = NULL"
    " WHERE rule = $1 AND sink = $2 AND open_group = $3 AND NOT (status = 'pending'"
    " AND attempts = 0 AND closes_at > $4 AND ($5::integer IS NULL OR member_count < $5))"
)
OPEN_DIGEST = (
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, kind, group_key, open_group,"
    " window_start, closes_at, member_count)"
    " VALUES ($1, $2, $3, $4, 'pending', $5, $6, $5, $5, 'digest', $7, $8, $5, $6, 1)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
ADD_MEMBER = "INSERT INTO digest_members (delivery_id, event_id, position) VALUES ($1, $2, $3)"
CLAIM = (
    "UPDATE deliveries d SET lease_owner = $4, lease_until = $5, open_group = NULL"
    " FROM events e"
    " WHERE e.id = d.event_id AND d.id IN ("
    "  SELECT id FROM deliveries"
    "  WHERE sink = $1 AND status = 'pending' AND next_attempt_at <= $2"
    "  AND (lease_until IS NULL OR lease_until < $2)"
    "  ORDER BY next_attempt_at, created_at, id LIMIT $3"
    "  FOR UPDATE SKIP LOCKED)"
    " RETURNING d.id, d.event_id, d.sink, d.rule, e.payload, d.attempts, d.retry_attempts,"
    " d.retry_started_at, d.created_at, d.kind, d.group_key, d.window_start,"
    " d.closes_at AS window_end, d.next_attempt_at"
)
# One statement, so the lease check and the attempt's number cannot race.
FINISH = (
    "WITH moved AS ("
    " UPDATE deliveries SET attempts = attempts + 1, retry_attempts = retry_attempts + 1,"
    " status = $3, next_attempt_at = $4, last_error = $5, delivered_at = $6, updated_at = $7,"
    " lease_owner = NULL, lease_until = NULL"
    " WHERE id = $1 AND lease_owner = $2 AND status = 'pending'"
    " RETURNING id, attempts)"
    " INSERT INTO attempts (delivery_id, number, started_at, duration, outcome, status_code,"
    " error, detail)"
    " SELECT id, attempts, $8, $9, $10, $11, $12, $13 FROM moved RETURNING number"
)
DEFER = (
    "UPDATE deliveries SET next_attempt_at = $3, updated_at = $4,"
    " lease_owner = NULL, lease_until = NULL"
    " WHERE id = $1 AND lease_owner = $2 AND status = 'pending'"
)
KILL = (
    "UPDATE deliveries SET status = 'dead', last_error = $3, next_attempt_at = NULL,"
    " updated_at = $4, lease_owner = NULL, lease_until = NULL"
    " WHERE id = $1 AND status = 'pending' AND ($2::text IS NULL OR lease_owner = $2)"
)
REPLAY_SET = (
    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, retry_attempts = 0,"
    " retry_started_at = $1, delivered_at = NULL, updated_at = $1,"
    " lease_owner = NULL, lease_until = NULL"
)
# A delivery in flight (pending under a live lease) is not replayed: it would go out twice.
REPLAY = (
    REPLAY_SET + " WHERE id = $2 AND NOT (status = 'pending' AND lease_until IS NOT NULL"
    " AND lease_until >= $1)"
)
REPLAY_DEAD = REPLAY_SET + " WHERE status = 'dead' AND ($2::text IS NULL OR sink = $2)"
RENEW = (
    "UPDATE deliveries SET lease_until = $3"
    " WHERE id = ANY($1::text[]) AND lease_owner = $2 AND status = 'pending'"
)
PURGE = (
    "DELETE FROM events WHERE received_at < $1 AND NOT EXISTS ("
    " SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status <> 'delivered')"
    " AND NOT EXISTS ("
    " SELECT 1 FROM digest_members m JOIN deliveries d ON d.id = m.delivery_id"
    " WHERE m.event_id = events.id AND d.status <> 'delivered')"
)
DIGEST_CALLS = (
    "SELECT e.payload FROM digest_members m JOIN events e ON e.id = m.event_id"
    " WHERE m.delivery_id = $1 ORDER BY m.position"
)
OPEN_GROUPS = (
    "SELECT sink, COUNT(*) FROM deliveries"
    " WHERE open_group IS NOT NULL AND status = 'pending' AND closes_at > $1 GROUP BY sink"
)
# A leased delivery cannot be claimed before its lease runs out.
NEXT_DUE = (
    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at"
    " THEN lease_until ELSE next_attempt_at END)"
    " FROM deliveries WHERE sink = $1 AND status = 'pending'"
)
BACKLOG = (
    "SELECT sink, status, COUNT(*), MIN(created_at) FROM deliveries"
    " WHERE status IN ('pending', 'dead') GROUP BY sink, status"
)
HEARTBEAT = (
    "INSERT INTO replicas (owner, last_seen) VALUES ($1, $2)"
    " ON CONFLICT (owner) DO UPDATE SET last_seen = GREATEST(replicas.last_seen, $2)"
)


class StoreOpenError(RuntimeError):
    """The PostgreSQL database cannot be reached, migrated or written."""


class StoreClosedError(RuntimeError):
    """An operation was asked of a store that is not open."""


class DigestJoinError(RuntimeError):
    """A grouped call could neither join nor open its digest (it fails alone)."""


@dataclass
class _QueuedIngest:
    record: IngestRecord
    future: asyncio.Future[IngestResult]


def _settle(future: asyncio.Future[Any], succeeded: bool, value: Any) -> None:
    if future.done():
        return
    if succeeded:
        future.set_result(value)
    else:
        future.set_exception(value)


def _safe_location(url: str) -> str:
    """host:port/database of a URL, without user or password (for logs and repr)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def _group_lock_key(rule: str, sink: str, key: str) -> int:
    """The advisory lock (a signed 64-bit number) guarding one (rule, sink, group key)."""
    text = json.dumps([rule, sink, key], separators=(",", ":")).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


async def _lock_groups(connection: asyncpg.Connection, records: Iterable[IngestRecord]) -> None:
    """Take the advisory lock of every group the records join, lowest key first: with
    one global order and no row held yet, two transactions cannot wait on each other."""
    keys = sorted(
        {
            _group_lock_key(delivery.rule, delivery.sink, delivery.group.key)
            for record in records
            for delivery in record.deliveries
            if delivery.group is not None
        }
    )
    if keys:
        await connection.executemany(GROUP_LOCK, [(key,) for key in keys])


async def _join_digest(
    connection: asyncpg.Connection,
    record: IngestRecord,
    delivery: NewDelivery,
    group: GroupJoin,
) -> int:
    """Add the event to the open digest of (rule, sink, key), or open one; 1 if done."""
    now = record.received_at
    for _ in range(MAX_JOIN_TRIES):
        joined = await connection.fetchrow(
            JOIN_DIGEST, delivery.rule, delivery.sink, group.key, now, group.max
        )
        if joined is not None:
            digest_id, position = joined[0], joined[1]
            break
        await connection.execute(
            CLOSE_STALE_GROUP, delivery.rule, delivery.sink, group.key, now, group.max
        )
        full = group.max is not None and group.max <= 1
        closes_at = now if full else now + group.window
        opened = await connection.fetchval(
            OPEN_DIGEST,
            delivery.id,
            record.event_id,
            delivery.sink,
            delivery.rule,
            now,
            closes_at,
            group.key,
            None if full else group.key,
        )
        if opened is not None:
            digest_id, position = opened, 0
            break
        already = await connection.fetchval(
            "SELECT 1 FROM deliveries WHERE event_id = $1 AND sink = $2",
            record.event_id,
            delivery.sink,
        )
        if already is not None:
            return 0
        # Another transaction opened the group between our join and our insert: join it.
    else:
        raise DigestJoinError(
            f"could not join or open a digest of rule {delivery.rule!r} for sink"
            f" {delivery.sink!r} after {MAX_JOIN_TRIES} tries"
        )
    await connection.execute(ADD_MEMBER, digest_id, record.event_id, position)
    return 1


async def _ingest_one(connection: asyncpg.Connection, record: IngestRecord) -> IngestResult:
    inserted = await connection.fetchval(
        INSERT_EVENT,
        record.event_id,
        record.payload,
        record.received_at,
        record.status,
        record.direction,
    )
    if inserted is None:
        return IngestResult("duplicate", 0)
    singles = [delivery for delivery in record.deliveries if delivery.group is None]
    written = 0
    if singles:
        rows = await connection.fetch(
            INSERT_DELIVERIES,
            record.event_id,
            record.received_at,
            [delivery.id for delivery in singles],
            [delivery.sink for delivery in singles],
            [delivery.rule for delivery in singles],
            [delivery.lease_owner for delivery in singles],
            [delivery.lease_until for delivery in singles],
        )
        written += len(rows)
    for delivery in record.deliveries:
        if delivery.group is not None:
            written += await _join_digest(connection, record, delivery, delivery.group)
    return IngestResult("accepted", written)


async def _migrate(connection: asyncpg.Connection) -> None:
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY, timeout=LONG_STATEMENT_TIMEOUT
        )
        await connection.execute(SCHEMA_VERSION_DDL)
        current = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        for migration in pending(current):
            for statement in statements_for(migration, "postgresql"):
                await connection.execute(statement, timeout=LONG_STATEMENT_TIMEOUT)
            await connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.description,
                time.time(),
            )
        await connection.execute(COORDINATION_DDL)


class PostgresStore(Store):
    """`Store` on a PostgreSQL database shared by every replica; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        pool_min: int = DEFAULT_POOL_MIN,
        pool_max: int = DEFAULT_POOL_MAX,
        channel: str = CHANNEL,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        if not url.startswith(URL_SCHEMES):
            raise ValueError("a PostgreSQL store URL starts with postgresql:// or postgres://")
        self._url = url
        self.max_batch = max_batch
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.channel = channel
        self.command_timeout = command_timeout
        self._token = uuid.uuid4().hex  # marks our own NOTIFYs, already announced locally
        self._pool: asyncpg.Pool | None = None
        self._queue: list[_QueuedIngest] = []
        self._flusher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closing = False
        self.commits = 0
        self.committed_operations = 0
        self.largest_batch = 0

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """`postgresql://user[:password]@host[:port]/database[?options=-csearch_path%3Dschema]`
        (`postgres://` too); query parameters are passed to asyncpg."""
        return cls(url)

    def __repr__(self) -> str:
        return f"PostgresStore({_safe_location(self._url)!r})"

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (otherwise the workers rely on polling)."""
        return self._listening.is_set()

    # --- lifecycle ---

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=self.pool_min,
                max_size=self.pool_max,
                command_timeout=self.command_timeout,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StoreOpenError(f"cannot open the PostgreSQL store {self!r}: {error}") from error
        try:
            async with pool.acquire() as connection:
                await _migrate(connection)
        except BaseException as error:
            await pool.close()
            if isinstance(error, RuntimeError | asyncpg.PostgresError | OSError):
                raise StoreOpenError(
                    f"cannot migrate the PostgreSQL store {self!r}: {error}"
                ) from error
            raise
        self._pool = pool
        first_attempt = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(
            self._listen_forever(first_attempt), name="postgres-listener"
        )
        await first_attempt

    async def close(self) -> None:
        """Commit the ingests already queued, stop listening, close the pool."""
        if self._pool is None or self._closing:
            return
        self._closing = True
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        pool, self._pool = self._pool, None
        self._closing = False
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await pool.close()

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreClosedError(f"the PostgreSQL store {self!r} is not open")
        return self._pool

    async def ping(self) -> None:
        await self._require_pool().fetchval("SELECT 1")

    async def probe_write(self) -> None:
        await self._require_pool().execute(PROBE_WRITE.format(at="$1"), time.time())

    # --- LISTEN/NOTIFY ---

    def _on_notification(
        self, connection: asyncpg.Connection, pid: int, channel: str, payload: str
    ) -> None:
        if payload != self._token:
            self._notify()

    async def _listen_forever(self, first_attempt: asyncio.Future[None]) -> None:
        """Keep one connection LISTENing; on loss, reconnect with backoff, never give up."""
        backoff = LISTEN_BACKOFF_MIN
        reconnecting = False
        while True:
            connection: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(
                    self._url, server_settings={"application_name": LISTENER_APPLICATION_NAME}
                )
                connection.add_termination_listener(lambda _connection, event=lost: event.set())
                await connection.add_listener(self.channel, self._on_notification)
                self._listening.set()
                backoff = LISTEN_BACKOFF_MIN
                if reconnecting:
                    log.info("listening for new deliveries again")
                    self._notify()  # whatever was announced while we were away
                _settle(first_attempt, True, None)
                await lost.wait()
                log.warning(
                    "lost the PostgreSQL LISTEN connection; reconnecting (workers poll meanwhile)"
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "cannot LISTEN on PostgreSQL (%s: %s); retrying in %.1f s,"
                    " workers poll meanwhile",
                    type(error).__name__,
                    error,
                    backoff,
                )
            finally:
                self._listening.clear()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            _settle(first_attempt, True, None)
            reconnecting = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, LISTEN_BACKOFF_MAX)

    # --- group-committed ingest ---

    async def ingest(self, record: IngestRecord) -> IngestResult:
        self._require_pool()
        if self._closing:
            raise StoreClosedError(f"the PostgreSQL store {self!r} is closing")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_QueuedIngest(record, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="postgres-group-commit")
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every ingest of this loop tick join the batch
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                outcomes = await self._commit_batch(batch)
            except Exception as error:
                outcomes = [(False, error)] * len(batch)
            announced = False
            for queued, (succeeded, value) in zip(batch, outcomes, strict=True):
                _settle(queued.future, succeeded, value)
                announced = announced or (succeeded and value.deliveries > 0)
            if announced:
                self._notify()

    async def _commit_batch(self, batch: list[_QueuedIngest]) -> list[tuple[bool, Any]]:
        pool = self._require_pool()
        # Every replica inserts in call-id order, so two batches cannot deadlock.
        order = sorted(range(len(batch)), key=lambda index: batch[index].record.event_id)
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        try:
            async with pool.acquire() as connection, connection.transaction():
                await _lock_groups(connection, (queued.record for queued in batch))
                written = 0
                for index in order:
                    try:
                        async with connection.transaction():  # a savepoint per call
                            result = await _ingest_one(connection, batch[index].record)
                    except (asyncpg.PostgresError, DigestJoinError) as error:
                        outcomes[index] = (False, error)
                    else:
                        outcomes[index] = (True, result)
                        written += result.deliveries
                if written:
                    await connection.execute("SELECT pg_notify($1, $2)", self.channel, self._token)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The transaction as a whole failed (BEGIN, COMMIT, the connection): give each
            # call its own. If the COMMIT did land, a rerun reports a duplicate: still true.
            log.warning("group commit of %d ingests failed; retrying one by one", len(batch))
            return [await self._ingest_alone(queued.record) for queued in batch]
        self.commits += 1
        self.committed_operations += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        return outcomes

    async def _ingest_alone(self, record: IngestRecord) -> tuple[bool, Any]:
        try:
            async with self._require_pool().acquire() as connection, connection.transaction():
                await _lock_groups(connection, [record])
                result = await _ingest_one(connection, record)
                if result.deliveries:
                    await connection.execute("SELECT pg_notify($1, $2)", self.channel, self._token)
        except Exception as error:
            return False, error
        self.commits += 1
        self.committed_operations += 1
        return True, result

    # --- deliveries ---

    async def claim(
        self, sink: str, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        rows = await self._require_pool().fetch(CLAIM, sink, now, limit, owner, now + lease_seconds)
        rows = sorted(rows, key=lambda row: (row["next_attempt_at"], row["created_at"], row["id"]))
        return [ClaimedDelivery(*tuple(row)[:13]) for row in rows]

    async def renew_leases(self, ids: Iterable[str], owner: str, until: float) -> None:
        id_list = list(ids)
        if id_list:
            await self._require_pool().execute(RENEW, id_list, owner, until)

    async def finish(
        self,
        delivery_id: str,
        owner: str,
        attempt: AttemptRecord,
        *,
        next_attempt_at: float | None = None,
    ) -> bool:
        """As in `Store.finish`; the store numbers the attempt itself (attempts so far + 1)."""
        state = StateAfterAttempt.of(attempt, next_attempt_at)
        number = await self._require_pool().fetchval(
            FINISH,
            delivery_id,
            owner,
            state.status,
            state.next_attempt_at,
            state.last_error,
            state.delivered_at,
            attempt.started_at + attempt.duration,
            attempt.started_at,
            attempt.duration,
            attempt.outcome,
            attempt.status_code,
            attempt.error,
            attempt.detail,
        )
        return number is not None

    async def defer(self, delivery_id: str, owner: str, next_attempt_at: float) -> None:
        await self._require_pool().execute(DEFER, delivery_id, owner, next_attempt_at, time.time())

    async def kill(self, delivery_id: str, owner: str | None, reason: str) -> None:
        """As in `Store.kill`; only a pending delivery dies, and with `owner` only while
        that owner holds its lease."""
        await self._require_pool().execute(KILL, delivery_id, owner, reason, time.time())

    async def _write_and_announce(self, query: str, *args: Any) -> int:
        """Run an UPDATE; if it changed rows, NOTIFY in the same transaction."""
        async with self._require_pool().acquire() as connection, connection.transaction():
            status = await connection.execute(query, *args)
            changed = int(status.rsplit(" ", 1)[-1])
            if changed:
                await connection.execute("SELECT pg_notify($1, $2)", self.channel, self._token)
        if changed:
            self._notify()
        return changed

    async def replay(self, delivery_id: str, now: float) -> bool:
        return await self._write_and_announce(REPLAY, now, delivery_id) > 0

    async def replay_dead(self, sink: str | None, now: float) -> int:
        return await self._write_and_announce(REPLAY_DEAD, now, sink)

    async def purge(self, received_before: float) -> int:
        status = await self._require_pool().execute(
            PURGE, received_before, timeout=LONG_STATEMENT_TIMEOUT
        )
        return int(status.rsplit(" ", 1)[-1])

    async def digest_calls(self, delivery_id: str) -> list[bytes]:
        rows = await self._require_pool().fetch(DIGEST_CALLS, delivery_id)
        return [bytes(row[0]) for row in rows]

    async def open_groups(self, now: float) -> dict[str, int]:
        rows = await self._require_pool().fetch(OPEN_GROUPS, now)
        return {sink: count for sink, count in rows}

    # --- reads ---

    async def next_due_at(self, sink: str) -> float | None:
        """As in `Store.next_due_at`, but a leased delivery counts as due when its lease ends."""
        return await self._require_pool().fetchval(NEXT_DUE, sink)

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        sink: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        filters = {"status": status, "sink": sink}
        given = tuple(name for name, value in filters.items() if value is not None)
        rows = await self._require_pool().fetch(
            LIST_DELIVERIES[given], *(filters[name] for name in given), limit, offset
        )
        return [DeliveryView(*row) for row in rows]

    async def get_delivery(self, delivery_id: str) -> DeliveryView | None:
        row = await self._require_pool().fetchrow(
            f"{SELECT_DELIVERY_VIEWS} WHERE id = $1", delivery_id
        )
        return None if row is None else DeliveryView(*row)

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        rows = await self._require_pool().fetch(
            "SELECT number, started_at, duration, outcome, status_code, error, detail"
            " FROM attempts WHERE delivery_id = $1 ORDER BY number",
            delivery_id,
        )
        return [AttemptRecord(*row) for row in rows]

    async def pending_sinks(self) -> set[str]:
        rows = await self._require_pool().fetch(
            "SELECT DISTINCT sink FROM deliveries WHERE status = 'pending'"
        )
        return {row[0] for row in rows}

    async def backlog(self) -> dict[str, SinkBacklog]:
        """As in `Store.backlog`; a sink with nothing pending or dead is absent."""
        rows = await self._require_pool().fetch(BACKLOG)
        counts: dict[str, dict[str, tuple[int, float]]] = {}
        for sink, status, count, oldest in rows:
            counts.setdefault(sink, {})[status] = (count, oldest)
        backlog: dict[str, SinkBacklog] = {}
        for sink, by_status in counts.items():
            pending_count, oldest = by_status.get("pending", (0, None))
            dead_count, _ = by_status.get("dead", (0, None))
            backlog[sink] = SinkBacklog(pending_count, dead_count, oldest)
        return backlog

    # --- replicas ---

    async def live_workers(self, owner: str, now: float) -> int:
        """Record `owner`'s heartbeat at `now`; count the workers seen within
        `WORKER_LIVE_SECONDS` (this one included)."""
        async with self._require_pool().acquire() as connection, connection.transaction():
            await connection.execute(HEARTBEAT, owner, now)
            await connection.execute(
                "DELETE FROM replicas WHERE last_seen < $1", now - FORGET_WORKER_AFTER
            )
            live = await connection.fetchval(
                "SELECT COUNT(*) FROM replicas WHERE last_seen >= $1",
                now - WORKER_LIVE_SECONDS,
            )
        return max(int(live), 1)

    async def retire_worker(self, owner: str) -> None:
        """Forget `owner` at once (a clean shutdown), so the others' share grows now."""
        await self._require_pool().execute("DELETE FROM replicas WHERE owner = $1", owner)
