"""The embedded store: one SQLite file in WAL mode, owned by one process.

The event loop never touches the disk. Every write runs on one writer thread
holding one connection: it takes everything queued (up to `max_batch`
operations), runs it in one `BEGIN IMMEDIATE … COMMIT`, and only then answers the
callers, with one wake-up of the event loop per batch. So concurrent ingests share
one fsync (group commit). If an operation fails, the batch is rolled back and each
operation rerun in its own transaction, so one failure costs only its own caller.
Reads run on a second thread with its own connection (WAL lets them
proceed while the writer commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from router.store.base import (
    PROBE_WRITE,
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

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

URL_PREFIX = "sqlite:///"
DEFAULT_MAX_BATCH = 256
BUSY_TIMEOUT_SECONDS = 10.0

SELECT_DELIVERY_VIEWS = (
    "SELECT id, event_id, sink, rule, status, attempts, last_error, next_attempt_at,"
    " created_at, updated_at, delivered_at, kind,"
    " CASE WHEN kind = 'digest' THEN member_count ELSE 1 END FROM deliveries"
)


class StoreOpenError(RuntimeError):
    """The SQLite file cannot be created, opened, migrated or written."""


class StoreClosedError(RuntimeError):
    """An operation was asked of a store that is not open."""


@dataclass
class _Job:
    operation: Operation[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class _OperationFailed(Exception):
    """One operation of a batch raised; the batch is rerun without it."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


def _settle_all(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, succeeded, value in results:
        if future.cancelled():
            continue
        if succeeded:
            future.set_result(value)
        else:
            future.set_exception(value)


class _ConnectionThread(threading.Thread):
    """One connection, used only by this thread, fed by a queue of operations.

    A transactional thread runs each batch in one transaction (group commit);
    otherwise each operation runs on its own in autocommit mode (reads).
    """

    def __init__(
        self, name: str, connection: sqlite3.Connection, *, transactional: bool, max_batch: int
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._connection = connection
        self._transactional = transactional
        self._max_batch = max_batch if transactional else 1
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._stopping = False
        self.commits = 0
        self.committed_operations = 0
        self.largest_batch = 0

    async def run_operation(self, operation: Operation[T]) -> T:
        if self._stopping:
            raise StoreClosedError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(operation, future, loop))
        return await future

    def stop(self) -> None:
        """Finish every operation already queued, then close the connection."""
        if not self._stopping:
            self._stopping = True
            self._queue.put(_STOP)

    def run(self) -> None:
        try:
            stopped = False
            while not stopped:
                batch, stopped = self._take_batch()
                if batch:
                    self._execute(batch)
        finally:
            self._connection.close()
            self._fail_leftovers()

    def _take_batch(self) -> tuple[list[_Job], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        assert isinstance(first, _Job)
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Job)
            batch.append(item)
        return batch, False

    def _execute(self, batch: list[_Job]) -> None:
        if not self._transactional:
            self._answer(batch, [self._run_alone(job) for job in batch])
            return
        outcomes: dict[int, tuple[bool, Any]] = {}
        remaining = list(range(len(batch)))
        while remaining:
            try:
                values = self._run_in_one_transaction([batch[i] for i in remaining])
            except _OperationFailed as failure:
                # Roll back and run the batch again without the operation that failed:
                # the others still share one commit, the failure costs only its caller.
                self._rollback()
                outcomes[remaining.pop(failure.position)] = (False, failure.error)
                continue
            except Exception:
                # BEGIN or COMMIT itself failed: give each operation its own transaction.
                self._rollback()
                for index in remaining:
                    outcomes[index] = self._run_in_own_transaction(batch[index])
                break
            outcomes.update(
                (index, (True, value)) for index, value in zip(remaining, values, strict=True)
            )
            break
        self._answer(batch, [outcomes[index] for index in range(len(batch))])

    def _run_in_one_transaction(self, batch: list[_Job]) -> list[Any]:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        values = []
        for position, job in enumerate(batch):
            try:
                values.append(job.operation(connection))
            except Exception as error:
                raise _OperationFailed(position, error) from error
            if not connection.in_transaction:
                ended = sqlite3.OperationalError("the operation ended the batch's transaction")
                raise _OperationFailed(position, ended)
        connection.execute("COMMIT")
        self._count_commit(len(batch))
        return values

    def _run_in_own_transaction(self, job: _Job) -> tuple[bool, Any]:
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            value = job.operation(self._connection)
            self._connection.execute("COMMIT")
        except Exception as error:
            self._rollback()
            return False, error
        self._count_commit(1)
        return True, value

    def _run_alone(self, job: _Job) -> tuple[bool, Any]:
        try:
            return True, job.operation(self._connection)
        except Exception as error:
            return False, error

    def _count_commit(self, operations: int) -> None:
        self.commits += 1
        self.committed_operations += operations
        self.largest_batch = max(self.largest_batch, operations)

    def _rollback(self) -> None:
        if self._connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")

    @staticmethod
    def _answer(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Hand every result back with one wake-up per event loop, not one per operation."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, (succeeded, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, succeeded, value))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle_all, results)

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Job):
                self._answer([item], [(False, StoreClosedError("the store is closed"))])


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    try:
        (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(SCHEMA_VERSION_DDL)
        (current,) = connection.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version"
        ).fetchone()
        for migration in pending(current):
            for statement in statements_for(migration, "sqlite"):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _delivery_view(row: sqlite3.Row | tuple[Any, ...]) -> DeliveryView:
    return DeliveryView(*row)


def _attempt_record(row: sqlite3.Row | tuple[Any, ...]) -> AttemptRecord:
    return AttemptRecord(*row)


# --- operations: each runs on a store thread with that thread's connection -------------


def _ingest(record: IngestRecord, connection: sqlite3.Connection) -> IngestResult:
    inserted = connection.execute(
        "INSERT INTO events (id, payload, received_at, status, direction)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (record.event_id, record.payload, record.received_at, record.status, record.direction),
    )
    if inserted.rowcount == 0:
        return IngestResult("duplicate", 0)
    written = 0
    for delivery in record.deliveries:
        if delivery.group is not None:
            written += _join_digest(record, delivery, delivery.group, connection)
            continue
        cursor = connection.execute(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " next_attempt_at, created_at, updated_at, lease_owner, lease_until)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id, sink) DO NOTHING",
            (
                delivery.id,
                record.event_id,
                delivery.sink,
                delivery.rule,
                record.received_at,
                record.received_at,
                record.received_at,
                record.received_at,
                delivery.lease_owner,
                delivery.lease_until,
            ),
        )
        written += cursor.rowcount
    return IngestResult("accepted", written)


def _join_digest(
    record: IngestRecord,
    delivery: NewDelivery,
    group: GroupJoin,
    connection: sqlite3.Connection,
) -> int:
    """Add the event to the open digest of (rule, sink, key), or open one; 1 if done."""
    now = record.received_at
    row = connection.execute(
        "SELECT id, member_count FROM deliveries"
        " WHERE rule = ? AND sink = ? AND open_group = ? AND status = 'pending'"
        " AND attempts = 0 AND closes_at > ? AND (? IS NULL OR member_count < ?)",
        (delivery.rule, delivery.sink, group.key, now, group.max, group.max),
    ).fetchone()
    if row is not None:
        digest_id, position = row
        if group.max is not None and position + 1 >= group.max:
            connection.execute(
                "UPDATE deliveries SET member_count = member_count + 1, open_group = NULL,"
                " closes_at = ?, next_attempt_at = MIN(next_attempt_at, ?), updated_at = ?"
                " WHERE id = ?",
                (now, now, now, digest_id),
            )
        else:
            connection.execute(
                "UPDATE deliveries SET member_count = member_count + 1, updated_at = ?"
                " WHERE id = ?",
                (now, digest_id),
            )
    else:
        # Whatever still holds the key cannot take calls any more: close it first.
        connection.execute(
            "UPDATE deliveries SET open_group = NULL"
            " WHERE rule = ? AND sink = ? AND open_group = ?",
            (delivery.rule, delivery.sink, group.key),
        )
        full = group.max is not None and group.max <= 1
        closes_at = now if full else now + group.window
        cursor = connection.execute(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " next_attempt_at, created_at, updated_at, kind, group_key, open_group,"
            " window_start, closes_at, member_count)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, 'digest', ?, ?, ?, ?, 1)"
            " ON CONFLICT (event_id, sink) DO NOTHING",
            (
                delivery.id,
                record.event_id,
                delivery.sink,
                delivery.rule,
                now,
                closes_at,
                now,
                now,
                group.key,
                None if full else group.key,
                now,
                closes_at,
            ),
        )
        if cursor.rowcount == 0:
            return 0
        digest_id, position = delivery.id, 0
    connection.execute(
        "INSERT INTO digest_members (delivery_id, event_id, position) VALUES (?, ?, ?)",
        (digest_id, record.event_id, position),
    )
    return 1


def _claim(
    sink: str,
    limit: int,
    owner: str,
    lease_until: float,
    now: float,
    connection: sqlite3.Connection,
) -> list[ClaimedDelivery]:
    rows = connection.execute(
        "SELECT d.id, d.event_id, d.sink, d.rule, e.payload, d.attempts, d.retry_attempts,"
        " d.retry_started_at, d.created_at, d.kind, d.group_key, d.window_start, d.closes_at"
        " FROM deliveries d JOIN events e ON e.id = d.event_id"
        " WHERE d.sink = ? AND d.status = 'pending' AND d.next_attempt_at <= ?"
        " AND (d.lease_until IS NULL OR d.lease_until < ?)"
        " ORDER BY d.next_attempt_at, d.created_at, d.id LIMIT ?",
        (sink, now, now, limit),
    ).fetchall()
    connection.executemany(
        "UPDATE deliveries SET lease_owner = ?, lease_until = ?, open_group = NULL WHERE id = ?",
        [(owner, lease_until, row[0]) for row in rows],
    )
    return [ClaimedDelivery(*row) for row in rows]


def _renew_leases(
    ids: Sequence[str], owner: str, until: float, connection: sqlite3.Connection
) -> None:
    connection.executemany(
        "UPDATE deliveries SET lease_until = ?"
        " WHERE id = ? AND lease_owner = ? AND status = 'pending'",
        [(until, delivery_id, owner) for delivery_id in ids],
    )


def _finish(
    delivery_id: str,
    owner: str,
    attempt: AttemptRecord,
    state: StateAfterAttempt,
    connection: sqlite3.Connection,
) -> bool:
    row = connection.execute(
        "UPDATE deliveries SET attempts = attempts + 1, retry_attempts = retry_attempts + 1,"
        " status = ?, next_attempt_at = ?, last_error = ?, delivered_at = ?, updated_at = ?,"
        " lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ? AND status = 'pending' RETURNING attempts",
        (
            state.status,
            state.next_attempt_at,
            state.last_error,
            state.delivered_at,
            attempt.started_at + attempt.duration,
            delivery_id,
            owner,
        ),
    ).fetchone()
    if row is None:
        return False
    connection.execute(
        "INSERT INTO attempts (delivery_id, number, started_at, duration, outcome, status_code,"
        " error, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            delivery_id,
            row[0],
            attempt.started_at,
            attempt.duration,
            attempt.outcome,
            attempt.status_code,
            attempt.error,
            attempt.detail,
        ),
    )
    return True


def _defer(
    delivery_id: str, owner: str, next_attempt_at: float, connection: sqlite3.Connection
) -> None:
    connection.execute(
        "UPDATE deliveries SET next_attempt_at = ?, updated_at = ?,"
        " lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ? AND status = 'pending'",
        (next_attempt_at, time.time(), delivery_id, owner),
    )


def _kill(delivery_id: str, owner: str | None, reason: str, connection: sqlite3.Connection) -> None:
    connection.execute(
        "UPDATE deliveries SET status = 'dead', last_error = ?, next_attempt_at = NULL,"
        " updated_at = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND status = 'pending' AND (? IS NULL OR lease_owner = ?)",
        (reason, time.time(), delivery_id, owner, owner),
    )


REPLAY_SET = (
    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, retry_attempts = 0,"
    " retry_started_at = ?, delivered_at = NULL, updated_at = ?,"
    " lease_owner = NULL, lease_until = NULL"
)


def _replay(delivery_id: str, now: float, connection: sqlite3.Connection) -> bool:
    # A delivery in flight (pending under a live lease) is not replayed: it would go out twice.
    cursor = connection.execute(
        f"{REPLAY_SET} WHERE id = ?"
        " AND NOT (status = 'pending' AND lease_until IS NOT NULL AND lease_until >= ?)",
        (now, now, now, delivery_id, now),
    )
    return cursor.rowcount > 0


def _replay_dead(sink: str | None, now: float, connection: sqlite3.Connection) -> int:
    cursor = connection.execute(
        f"{REPLAY_SET} WHERE status = 'dead' AND (? IS NULL OR sink = ?)",
        (now, now, now, sink, sink),
    )
    return cursor.rowcount


def _purge(received_before: float, connection: sqlite3.Connection) -> int:
    cursor = connection.execute(
        "DELETE FROM events WHERE received_at < ? AND NOT EXISTS ("
        " SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status <> 'delivered')"
        " AND NOT EXISTS ("
        " SELECT 1 FROM digest_members m JOIN deliveries d ON d.id = m.delivery_id"
        " WHERE m.event_id = events.id AND d.status <> 'delivered')",
        (received_before,),
    )
    return cursor.rowcount


def _digest_calls(delivery_id: str, connection: sqlite3.Connection) -> list[bytes]:
    rows = connection.execute(
        "SELECT e.payload FROM digest_members m JOIN events e ON e.id = m.event_id"
        " WHERE m.delivery_id = ? ORDER BY m.position",
        (delivery_id,),
    ).fetchall()
    return [bytes(payload) for (payload,) in rows]


def _open_groups(now: float, connection: sqlite3.Connection) -> dict[str, int]:
    rows = connection.execute(
        "SELECT sink, COUNT(*) FROM deliveries"
        " WHERE open_group IS NOT NULL AND status = 'pending' AND closes_at > ? GROUP BY sink",
        (now,),
    ).fetchall()
    return {sink: count for sink, count in rows}


def _release_all_leases(connection: sqlite3.Connection) -> None:
    connection.execute(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
        " WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL"
    )


def _next_due_at(sink: str, connection: sqlite3.Connection) -> float | None:
    # A leased delivery cannot be claimed before its lease runs out.
    (due,) = connection.execute(
        "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at"
        " THEN lease_until ELSE next_attempt_at END)"
        " FROM deliveries WHERE sink = ? AND status = 'pending'",
        (sink,),
    ).fetchone()
    return due


NEWEST_FIRST_PAGE = " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
# One literal query per filter combination, so each can use its own index.
LIST_DELIVERIES: dict[tuple[str, ...], str] = {
    (): SELECT_DELIVERY_VIEWS + NEWEST_FIRST_PAGE,
    ("status",): SELECT_DELIVERY_VIEWS + " WHERE status = ?" + NEWEST_FIRST_PAGE,
    ("sink",): SELECT_DELIVERY_VIEWS + " WHERE sink = ?" + NEWEST_FIRST_PAGE,
    ("status", "sink"): SELECT_DELIVERY_VIEWS
    + " WHERE status = ? AND sink = ?"
    + NEWEST_FIRST_PAGE,
}


def _list_deliveries(
    status: DeliveryStatus | None,
    sink: str | None,
    limit: int,
    offset: int,
    connection: sqlite3.Connection,
) -> list[DeliveryView]:
    filters = {"status": status, "sink": sink}
    given = tuple(name for name, value in filters.items() if value is not None)
    rows = connection.execute(
        LIST_DELIVERIES[given], (*(filters[name] for name in given), limit, offset)
    ).fetchall()
    return [_delivery_view(row) for row in rows]


def _get_delivery(delivery_id: str, connection: sqlite3.Connection) -> DeliveryView | None:
    row = connection.execute(f"{SELECT_DELIVERY_VIEWS} WHERE id = ?", (delivery_id,)).fetchone()
    return None if row is None else _delivery_view(row)


def _list_attempts(delivery_id: str, connection: sqlite3.Connection) -> list[AttemptRecord]:
    rows = connection.execute(
        "SELECT number, started_at, duration, outcome, status_code, error, detail"
        " FROM attempts WHERE delivery_id = ? ORDER BY number",
        (delivery_id,),
    ).fetchall()
    return [_attempt_record(row) for row in rows]


def _pending_sinks(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT DISTINCT sink FROM deliveries WHERE status = 'pending'")
    return {sink for (sink,) in rows}


def _backlog(connection: sqlite3.Connection) -> dict[str, SinkBacklog]:
    rows = connection.execute(
        "SELECT sink, status, COUNT(*), MIN(created_at) FROM deliveries"
        " WHERE status IN ('pending', 'dead') GROUP BY sink, status"
    ).fetchall()
    counts: dict[str, dict[str, tuple[int, float]]] = {}
    for sink, status, count, oldest in rows:
        counts.setdefault(sink, {})[status] = (count, oldest)
    backlog: dict[str, SinkBacklog] = {}
    for sink, by_status in counts.items():
        pending_count, oldest = by_status.get("pending", (0, None))
        dead_count, _ = by_status.get("dead", (0, None))
        backlog[sink] = SinkBacklog(pending_count, dead_count, oldest)
    return backlog


def _probe_write(connection: sqlite3.Connection) -> None:
    connection.execute(PROBE_WRITE.format(at="?"), (time.time(),))


def _ping(connection: sqlite3.Connection) -> None:
    connection.execute("SELECT 1").fetchone()


# --- the store ---------------------------------------------------------------------------


class SQLiteStore(Store):
    """`Store` on one SQLite file; see the module docstring for the threading model."""

    def __init__(
        self, path: str | Path, *, max_batch: int = DEFAULT_MAX_BATCH, owns_leases: bool = True
    ) -> None:
        self.path = Path(path).absolute()
        self.max_batch = max_batch
        # The serving process owns every lease and releases them on open; a CLI command
        # opening the same file next to a running server must leave them alone.
        self.owns_leases = owns_leases
        self._writer: _ConnectionThread | None = None
        self._reader: _ConnectionThread | None = None

    @classmethod
    def from_url(cls, url: str, *, owns_leases: bool = True) -> SQLiteStore:
        """`sqlite:///relative/path.db` (from the current directory) or `sqlite:////abs.db`."""
        if not url.startswith(URL_PREFIX) or len(url) == len(URL_PREFIX):
            raise ValueError(
                f"bad SQLite store URL {url!r}: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return cls(Path(url[len(URL_PREFIX) :]), owns_leases=owns_leases)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # --- counters (group commit evidence, metrics) ---

    @property
    def commits(self) -> int:
        """Write transactions committed since `open`."""
        return self._writer.commits if self._writer else 0

    @property
    def committed_operations(self) -> int:
        return self._writer.committed_operations if self._writer else 0

    @property
    def largest_batch(self) -> int:
        return self._writer.largest_batch if self._writer else 0

    # --- lifecycle ---

    async def open(self) -> None:
        if self._writer is not None:
            return
        writer_connection, reader_connection = await asyncio.to_thread(self._open_connections)
        self._writer = _ConnectionThread(
            f"sqlite-writer:{self.path.name}",
            writer_connection,
            transactional=True,
            max_batch=self.max_batch,
        )
        self._reader = _ConnectionThread(
            f"sqlite-reader:{self.path.name}", reader_connection, transactional=False, max_batch=1
        )
        self._writer.start()
        self._reader.start()

    def _open_connections(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        opened: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            opened.append(_connect(self.path))
            _migrate(opened[0])
            if self.owns_leases:
                _release_all_leases(opened[0])
            opened.append(_connect(self.path))
        except (OSError, sqlite3.Error, RuntimeError) as error:
            for connection in opened:
                connection.close()
            raise StoreOpenError(f"cannot open the SQLite store {self.path}: {error}") from error
        return opened[0], opened[1]

    async def close(self) -> None:
        threads = [thread for thread in (self._writer, self._reader) if thread is not None]
        self._writer = self._reader = None
        for thread in threads:  # one after the other, so the last one checkpoints the WAL
            thread.stop()
            await asyncio.to_thread(thread.join)

    async def _write(self, operation: Operation[T]) -> T:
        if self._writer is None:
            raise StoreClosedError(f"the SQLite store {self.path} is not open")
        return await self._writer.run_operation(operation)

    async def _read(self, operation: Operation[T]) -> T:
        if self._reader is None:
            raise StoreClosedError(f"the SQLite store {self.path} is not open")
        return await self._reader.run_operation(operation)

    async def ping(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            raise StoreClosedError(f"the SQLite store {self.path} is not open")
        await self._read(_ping)

    # --- writes ---

    async def probe_write(self) -> None:
        await self._write(_probe_write)

    async def ingest(self, record: IngestRecord) -> IngestResult:
        result = await self._write(partial(_ingest, record))
        if result.deliveries > 0:
            self._notify()
        return result

    async def claim(
        self, sink: str, limit: int, owner: str, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]:
        if limit <= 0:
            return []
        return await self._write(partial(_claim, sink, limit, owner, now + lease_seconds, now))

    async def renew_leases(self, ids: Iterable[str], owner: str, until: float) -> None:
        id_list = list(ids)
        if id_list:
            await self._write(partial(_renew_leases, id_list, owner, until))

    async def finish(
        self,
        delivery_id: str,
        owner: str,
        attempt: AttemptRecord,
        *,
        next_attempt_at: float | None = None,
    ) -> bool:
        """As in `Store.finish`; the store numbers the attempt itself (attempts so far + 1)."""
        state = StateAfterAttempt.of(attempt, next_attempt_at)  # a bad outcome fails here
        return await self._write(partial(_finish, delivery_id, owner, attempt, state))

    async def defer(self, delivery_id: str, owner: str, next_attempt_at: float) -> None:
        await self._write(partial(_defer, delivery_id, owner, next_attempt_at))

    async def kill(self, delivery_id: str, owner: str | None, reason: str) -> None:
        """As in `Store.kill`; only a pending delivery dies, and with `owner` only while
        that owner holds its lease."""
        await self._write(partial(_kill, delivery_id, owner, reason))

    async def replay(self, delivery_id: str, now: float) -> bool:
        replayed = await self._write(partial(_replay, delivery_id, now))
        if replayed:
            self._notify()
        return replayed

    async def replay_dead(self, sink: str | None, now: float) -> int:
        replayed = await self._write(partial(_replay_dead, sink, now))
        if replayed:
            self._notify()
        return replayed

    async def purge(self, received_before: float) -> int:
        return await self._write(partial(_purge, received_before))

    async def digest_calls(self, delivery_id: str) -> list[bytes]:
        return await self._read(partial(_digest_calls, delivery_id))

    async def open_groups(self, now: float) -> dict[str, int]:
        return await self._read(partial(_open_groups, now))

    # --- reads ---

    async def next_due_at(self, sink: str) -> float | None:
        """As in `Store.next_due_at`, but a leased delivery counts as due when its lease ends."""
        return await self._read(partial(_next_due_at, sink))

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        sink: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        return await self._read(partial(_list_deliveries, status, sink, limit, offset))

    async def get_delivery(self, delivery_id: str) -> DeliveryView | None:
        return await self._read(partial(_get_delivery, delivery_id))

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        return await self._read(partial(_list_attempts, delivery_id))

    async def pending_sinks(self) -> set[str]:
        return await self._read(_pending_sinks)

    async def backlog(self) -> dict[str, SinkBacklog]:
        """As in `Store.backlog`; a sink with nothing pending or dead is absent."""
        return await self._read(_backlog)
