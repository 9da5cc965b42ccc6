"""The shared store's connector: PostgreSQL through asyncpg, for several router replicas.

Same schema, migrations and queue as every store (`router.store.queue`), with what
running side by side needs:

- claims take rows with `FOR UPDATE SKIP LOCKED`, so two replicas never lease the
  same delivery, and a crashed replica's leases simply expire for another to take;
- migrations run under a transaction-level advisory lock, so replicas starting
  together migrate once;
- concurrent `ingest` calls of one process are group-committed: what is queued in
  one loop tick (up to `max_batch`) shares one transaction, each call in its own
  savepoint; a duplicate call id is an `INSERT … ON CONFLICT DO NOTHING` that
  changes nothing, on this replica or any other;
- a transaction that writes new deliveries sends one NOTIFY; every replica LISTENs
  on a dedicated connection and wakes its workers. If that connection drops, the
  store logs it and reconnects with backoff; the workers poll meanwhile;
- before anything else, an ingest transaction takes a transaction-level advisory
  lock per (rule, sink, group key) it joins, in one global order (by lock key):
  every replica's batch then waits for a group before it holds any row, so joins
  never deadlock, and one group is one digest however many replicas take its calls;
- every statement has a deadline (`command_timeout`, 5 s by default): a frozen
  server fails the caller with `StoreUnavailable` instead of hanging it.

Unlike the SQLite store, `open()` releases no lease: they may belong to live replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from router.store.connector import (
    ANNOUNCE,
    CallMany,
    Connector,
    Rows,
    Script,
    Step,
    run_script_async,
)
from router.store.errors import (
    NO_SPACE,
    READ_ONLY,
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreMissing,
    StoreRefusedWrite,
    StoreUnavailable,
)
from router.store.queue import QueueStore

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A connection of its own (LISTEN) or one lent by the pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger(__name__)

T = TypeVar("T")

URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_MAX_BATCH = 256
DEFAULT_POOL_MIN = 2
DEFAULT_POOL_MAX = 10
DEFAULT_COMMAND_TIMEOUT = 5.0
MAINTENANCE_TIMEOUT = 3600.0  # migrations and the purge (`Query.maintenance`)
CHANNEL = "revring_router_deliveries"
LISTENER_APPLICATION_NAME = "revring-router-listener"
# Any fixed 64-bit number: replicas migrating at once queue on it.
MIGRATION_LOCK_KEY = 0x7265_7672_696E_6701
LISTEN_BACKOFF_MIN = 0.5
LISTEN_BACKOFF_MAX = 30.0
GROUP_FAILURE_REPORT_SECONDS = 60.0

NOTIFY = "SELECT pg_notify($1, $2)"
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock($1)"
DRIVER_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class FailureReport:
    """When to log a failure that repeats: the first at once, then at most one line per
    `interval` seconds, covering every failure since the last line. Pure: the caller
    gives the time and logs."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.reported_at: float | None = None
        self.unreported = 0

    def failed(self, now: float) -> int | None:
        """A failure: None when it is only counted, else how many the line covers."""
        self.unreported += 1
        if self.reported_at is not None and now - self.reported_at < self.interval:
            return None
        covered, self.unreported, self.reported_at = self.unreported, 0, now
        return covered


@dataclass
class _QueuedWrite:
    script: Callable[[], Script[Any]]
    locks: Sequence[int]
    order: str
    future: asyncio.Future[Any]


@dataclass
class _Transaction:
    announce: bool = False  # a script asked for a NOTIFY at commit


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


def _without_command_timeout(url: str) -> tuple[str, float | None]:
    """The URL for asyncpg, and its `command_timeout` query parameter if it has one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    timeouts = [value for name, value in query if name == "command_timeout"]
    if not timeouts:
        return url, None
    try:
        timeout = float(timeouts[-1])
    except ValueError:
        raise ValueError(
            f"command_timeout in the PostgreSQL store URL must be seconds, not {timeouts[-1]!r}"
        ) from None
    rest = urlencode([(name, value) for name, value in query if name != "command_timeout"])
    return urlunsplit(parts._replace(query=rest)), timeout


class PostgresConnector(Connector):
    """An asyncpg pool on the database every replica shares; see the module docstring."""

    dialect = "postgresql"
    shared = True

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        pool_min: int = DEFAULT_POOL_MIN,
        pool_max: int = DEFAULT_POOL_MAX,
        channel: str = CHANNEL,
        command_timeout: float | None = None,
        on_remote_deliveries: Callable[[], None] = lambda: None,
    ) -> None:
        if not url.startswith(URL_SCHEMES):
            raise ValueError("a PostgreSQL store URL starts with postgresql:// or postgres://")
        super().__init__()
        self._url, timeout_in_url = _without_command_timeout(url)
        self.command_timeout = command_timeout or timeout_in_url or DEFAULT_COMMAND_TIMEOUT
        self.max_batch = max_batch
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.channel = channel
        self._notify = on_remote_deliveries
        self._token = uuid.uuid4().hex  # marks our own NOTIFYs, already announced locally
        self._pool: asyncpg.Pool | None = None
        self._queue: list[_QueuedWrite] = []
        self._flusher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closing = False
        self._group_failures = FailureReport(GROUP_FAILURE_REPORT_SECONDS)

    def describe(self) -> str:
        return _safe_location(self._url)

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    # --- lifecycle ---

    async def open(self, migrate: Callable[[], Script[None]], *, create: bool = True) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=self.pool_min,
                max_size=self.pool_max,
                command_timeout=self.command_timeout,
            )
        except asyncpg.InvalidCatalogNameError as error:
            if create:
                raise self._translated(error) from error
            missing = f"no store at {self.describe()}: the database does not exist"
            raise StoreMissing(missing) from error
        except Exception as error:
            raise self._translated(error) from error
        try:
            async with pool.acquire() as connection:
                # Another replica may be migrating a big database: wait for it.
                await self._run_in_transaction(
                    connection, migrate, [MIGRATION_LOCK_KEY], MAINTENANCE_TIMEOUT
                )
        except Exception as error:
            await pool.close()
            raise self._translated(error) from error
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        first_attempt = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(
            self._listen_forever(first_attempt), name="postgres-listener"
        )
        await first_attempt

    async def close(self) -> None:
        """Commit the writes already queued, stop listening, close the pool."""
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
            raise StoreClosed(f"the PostgreSQL store {self.describe()} is not open")
        return self._pool

    def _translated(self, error: BaseException) -> BaseException:
        """An asyncpg, OS or timeout error as a `StoreError` naming the store (other errors
        unchanged): the one mapping of this driver's errors."""
        if isinstance(error, StoreError):
            return error
        where = f"the PostgreSQL store {self.describe()}"
        if isinstance(error, asyncpg.IntegrityConstraintViolationError):
            return StoreConflict(f"{where}: {error}")
        if isinstance(error, asyncio.TimeoutError):
            return StoreUnavailable(f"{where} did not answer within {self.command_timeout:g} s")
        if isinstance(error, asyncpg.DiskFullError):
            return StoreRefusedWrite(f"{where}: {error}", NO_SPACE)
        if isinstance(error, asyncpg.ReadOnlySQLTransactionError):
            return StoreRefusedWrite(f"{where}: {error}", READ_ONLY)
        if isinstance(error, DRIVER_ERRORS):
            return StoreUnavailable(f"{where}: {error}")
        return error

    # --- running scripts ---

    async def _execute(self, connection: Connection, step: Step, transaction: _Transaction) -> Any:
        if step is ANNOUNCE:  # one NOTIFY per transaction, sent just before it commits
            transaction.announce = True
            return None
        compiled = step.query.compiled("postgresql")
        if isinstance(step, CallMany):
            await connection.executemany(
                compiled.text, [compiled.positional(p) for p in step.parameter_sets]
            )
            return None
        arguments = compiled.positional(step.parameters)
        timeout = MAINTENANCE_TIMEOUT if step.query.maintenance else None
        if step.shape == "count":
            status = await connection.execute(compiled.text, *arguments, timeout=timeout)
            changed = status.rsplit(" ", 1)[-1]  # "UPDATE 3", "INSERT 0 1", "CREATE TABLE"
            return int(changed) if changed.isdigit() else 0
        if step.shape == "rows":
            records = await connection.fetch(compiled.text, *arguments, timeout=timeout)
            # A Record is read by position as a tuple is.
            values = cast("list[Sequence[Any]]", records)
            return Rows(list(records[0].keys()) if records else (), values)
        if step.shape == "row":
            record = await connection.fetchrow(compiled.text, *arguments)
            return None if record is None else dict(record.items())
        return await connection.fetchval(compiled.text, *arguments)

    async def _run(
        self,
        connection: Connection,
        script: Callable[[], Script[T]],
        transaction: _Transaction | None = None,
    ) -> T:
        transaction = transaction or _Transaction()
        return await run_script_async(
            script(), lambda step: self._execute(connection, step, transaction)
        )

    async def _run_in_transaction(
        self,
        connection: Connection,
        script: Callable[[], Script[T]],
        locks: Sequence[int],
        lock_timeout: float | None = None,
    ) -> T:
        transaction = _Transaction()
        async with connection.transaction():
            await self._lock(connection, locks, lock_timeout)
            result = await self._run(connection, script, transaction)
            await self._announce_if_asked(connection, transaction)
        return result

    async def _announce_if_asked(self, connection: Connection, transaction: _Transaction) -> None:
        if transaction.announce:
            await connection.execute(NOTIFY, self.channel, self._token)

    @staticmethod
    async def _lock(
        connection: Connection, locks: Sequence[int], wait_limit: float | None = None
    ) -> None:
        """Take the advisory locks lowest key first: with one global order and no row held
        yet, two transactions cannot wait on each other."""
        keys = sorted(set(locks))
        if keys:
            await connection.executemany(
                ADVISORY_LOCK, [(key,) for key in keys], timeout=wait_limit
            )

    async def read(self, script: Callable[[], Script[T]]) -> T:
        try:
            async with self._require_pool().acquire() as connection:
                return await self._run(connection, script)
        except Exception as error:
            raise self._translated(error) from error

    async def write(
        self,
        script: Callable[[], Script[T]],
        *,
        group: bool = False,
        locks: Sequence[int] = (),
        order: str = "",
        one_statement: bool = False,
    ) -> T:
        if group:
            return await self._write_in_group(script, locks, order)
        try:
            async with self._require_pool().acquire() as connection:
                if one_statement and not locks:  # atomic as it is: no BEGIN/COMMIT trips
                    return await self._run(connection, script)
                return await self._run_in_transaction(connection, script, locks)
        except Exception as error:
            raise self._translated(error) from error

    # --- group commit ---

    async def _write_in_group(
        self, script: Callable[[], Script[T]], locks: Sequence[int], order: str
    ) -> T:
        self._require_pool()
        if self._closing:
            raise StoreClosed(f"the PostgreSQL store {self.describe()} is closing")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_QueuedWrite(script, locks, order, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="postgres-group-commit")
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every write of this loop tick join the batch
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                outcomes = await self._commit_batch(batch)
            except Exception as error:
                outcomes = [(False, self._translated(error))] * len(batch)
            for queued, (succeeded, value) in zip(batch, outcomes, strict=True):
                _settle(queued.future, succeeded, value)

    async def _commit_batch(self, batch: list[_QueuedWrite]) -> list[tuple[bool, Any]]:
        pool = self._require_pool()
        # Every replica writes in the same order (by `order` key, e.g. the call id), so
        # two batches touching the same rows cannot deadlock.
        order = sorted(range(len(batch)), key=lambda index: batch[index].order)
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        transaction = _Transaction()
        try:
            async with pool.acquire() as connection, connection.transaction():
                await self._lock(connection, [key for queued in batch for key in queued.locks])
                for index in order:
                    try:
                        async with connection.transaction():  # a savepoint per call
                            result = await self._run(connection, batch[index].script, transaction)
                    except (asyncpg.PostgresError, StoreError) as error:
                        outcomes[index] = (False, self._translated(error))
                    else:
                        outcomes[index] = (True, result)
                await self._announce_if_asked(connection, transaction)
        except DRIVER_ERRORS as error:
            # The transaction as a whole failed (BEGIN, COMMIT, the connection): give each
            # call its own. If the COMMIT did land, a rerun reports a duplicate: still true.
            self._report_group_failure(len(batch), error)
            return [await self._write_alone(queued) for queued in batch]
        self.counts.committed(len(batch))
        return outcomes

    def _report_group_failure(self, writes: int, error: BaseException) -> None:
        """Logged at the first failure, then at most once a minute with a count: during an
        outage every call is a group of its own, and each fails (router.engine.health logs the
        outage itself once)."""
        covered = self._group_failures.failed(time.monotonic())
        if covered is None:
            return
        reason = f"{type(error).__name__}: {error}".strip().rstrip(":")[:300]
        if covered == 1:
            log.warning(
                "group commit of %d writes failed (%s); retrying each alone (further"
                " failures: one line a minute at most, with their count)",
                writes,
                reason,
            )
        else:
            log.warning(
                "%d group commits failed since the last report (last: %s); each write"
                " retried alone",
                covered,
                reason,
            )

    async def _write_alone(self, queued: _QueuedWrite) -> tuple[bool, Any]:
        try:
            async with self._require_pool().acquire() as connection:
                result = await self._run_in_transaction(connection, queued.script, queued.locks)
        except Exception as error:
            return False, self._translated(error)
        self.counts.committed(1)
        return True, result

    # --- LISTEN/NOTIFY ---

    def _on_notification(
        self, connection: Connection, pid: int, channel: str, payload: object
    ) -> None:
        if payload != self._token:
            self._notify()

    async def _listen_forever(self, first_attempt: asyncio.Future[None]) -> None:
        """Keep one connection LISTENing; on loss, reconnect with backoff, never give up."""
        backoff = LISTEN_BACKOFF_MIN
        reconnecting = False
        while True:
            connection: asyncpg.Connection[asyncpg.Record] | None = None
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


class PostgresStore(QueueStore):
    """The queue on a PostgreSQL database shared by every replica."""

    connector: PostgresConnector

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        pool_min: int = DEFAULT_POOL_MIN,
        pool_max: int = DEFAULT_POOL_MAX,
        channel: str = CHANNEL,
        command_timeout: float | None = None,
    ) -> None:
        connector = PostgresConnector(
            url,
            max_batch=max_batch,
            pool_min=pool_min,
            pool_max=pool_max,
            channel=channel,
            command_timeout=command_timeout,
            on_remote_deliveries=self._notify,
        )
        super().__init__(connector)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """`postgresql://user[:password]@host[:port]/database[?options=-csearch_path%3Dschema]`
        (`postgres://` too); `command_timeout=SECONDS` sets every statement's deadline
        (default 5), other query parameters are passed to asyncpg."""
        return cls(url)

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (otherwise the workers rely on polling)."""
        return self.connector.listening
