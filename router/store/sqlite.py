"""The embedded store: one SQLite file in WAL mode, owned by one process; and the
in-memory store for tests (`memory://`), the same code on a SQLite memory database.

The event loop never touches the disk. Every write runs on one writer thread
holding one connection: it takes everything queued (up to `max_batch`
operations), runs it in one `BEGIN IMMEDIATE … COMMIT`, and only then answers the
callers, with one wake-up of the event loop per batch. So concurrent ingests share
one fsync (group commit, `synchronous=FULL`). If an operation fails, the batch is
rolled back and rerun without it, so one failure costs only its own caller.
Reads run on a second thread with its own connection (WAL lets them proceed while
the writer commits). Between batches the writer also checkpoints the WAL when it is
idle, every second while writes go on, and when the volume runs short of space; a
write refused for lack of space gets one TRUNCATE checkpoint and a second try
(`router.store.checkpoints`). An operation is a script of the queue (`router.store.queue`)
driven on the thread with that thread's connection.

The file holds phone numbers and transcripts: the store creates its directory 0700
and the file 0600 (SQLite gives `-wal` and `-shm` the file's mode), and tightens an
existing file that others can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from router.store.checkpoints import Checkpoint, CheckpointPolicy, WalKeeper
from router.store.connector import (
    ANNOUNCE,
    CallMany,
    CommitCounts,
    Connector,
    Rows,
    Script,
    Step,
    run_script,
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

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

URL_PREFIX = "sqlite:///"
MEMORY_URL_PREFIX = "memory://"
DEFAULT_MAX_BATCH = 256
BUSY_TIMEOUT_SECONDS = 10.0
# The WAL is copied back into the database file (a checkpoint, on the committing
# thread) once it holds this many pages (40 MB; SQLite's default is 1,000): under load
# the same hot index pages are copied once per 40 MB, not every few dozen calls
# (bench/README.md, "WAL checkpoints every 10,000 pages"). At low rates the writer
# checkpoints sooner, when idle, by time and when space runs low (router.store.checkpoints).
WAL_CHECKPOINT_PAGES = 10_000
# After a checkpoint the WAL file is cut back to this size, so it does not keep its
# peak size on disk.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
SQLITE_FULL = 13  # primary result codes (sqlite3.h)
SQLITE_READONLY = 8
# A write refused for lack of space waits this long for readers to let a TRUNCATE
# checkpoint through before it is tried again (other checkpoints never wait).
RECLAIM_WAIT_SECONDS = 1.0
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700

# Named memory databases outlive a closed store within the process (`memory://name`),
# so a test can close and reopen one, as with a file.
_MEMORY_DATABASES: dict[str, bytes] = {}


@dataclass
class _Job:
    operation: Operation[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()
_IDLE = object()  # no operation came within the WAL's patience


class _WalUpkeep:
    """The writer's checkpoints besides SQLite's own (`router.store.checkpoints`): the
    keeper decides, this runs them on the writer's connection between batches."""

    def __init__(self, path: Path, policy: CheckpointPolicy) -> None:
        self.wal = Path(f"{path}-wal")
        self.directory = path.parent
        self.keeper = WalKeeper(policy, time.monotonic())
        self.done = {"idle": 0, "time": 0, "low space": 0, "refused write": 0}

    def patience(self) -> float | None:
        return self.keeper.patience(time.monotonic())

    def idle(self, connection: sqlite3.Connection) -> None:
        mode = self.keeper.when_idle(time.monotonic())
        if mode is not None:
            self._run(connection, mode, "idle")

    def after_batch(self, connection: sqlite3.Connection, committed: bool) -> None:
        now = time.monotonic()
        if committed:
            self.keeper.committed(now)
        if not self.keeper.owed:
            return
        free = None
        wal_bytes = 0
        if self.keeper.policy.low_space:
            with contextlib.suppress(OSError):
                wal_bytes = self.wal.stat().st_size
                volume = os.statvfs(self.directory)
                free = volume.f_bavail * volume.f_frsize
        mode = self.keeper.after_batch(now, wal_bytes, free)
        if mode is not None:
            self._run(connection, mode, "low space" if mode is Checkpoint.TRUNCATE else "time")

    def reclaim(self, connection: sqlite3.Connection) -> bool:
        """A write was refused for lack of space: copy the WAL back and cut it. True when
        the checkpoint ran (the write is worth a second try)."""
        return self._run(connection, Checkpoint.TRUNCATE, "refused write", RECLAIM_WAIT_SECONDS)

    def _run(
        self, connection: sqlite3.Connection, mode: Checkpoint, why: str, wait: float = 0.0
    ) -> bool:
        if connection.in_transaction:
            return False
        try:
            if mode is Checkpoint.TRUNCATE:
                connection.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            try:
                row = connection.execute(f"PRAGMA wal_checkpoint({mode.value})").fetchone()
            finally:
                if mode is Checkpoint.TRUNCATE:
                    connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        except sqlite3.Error as error:  # a full disk may not let the database file grow
            log.debug("WAL checkpoint (%s, %s) failed: %s", mode.value, why, error)
            self.keeper.checkpointed(time.monotonic(), complete=False)
            return False
        busy, frames, copied = row if row is not None else (1, -1, -1)
        self.keeper.checkpointed(time.monotonic(), complete=not busy and frames == copied)
        self.done[why] += 1
        return True


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
        self,
        name: str,
        connection: sqlite3.Connection,
        *,
        transactional: bool,
        max_batch: int,
        counts: CommitCounts,
        before_close: Callable[[sqlite3.Connection], None] | None = None,
        upkeep: _WalUpkeep | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._connection = connection
        self.upkeep = upkeep  # the writer of a file: its WAL's checkpoints
        self._before_close = before_close
        self._transactional = transactional
        self._max_batch = max_batch if transactional else 1
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._stopping = False
        self.counts = counts

    async def run_operation(self, operation: Operation[T]) -> T:
        if self._stopping:
            raise StoreClosed("the store is closed")
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
                    commits = self.counts.commits
                    self._execute(batch)
                    if self.upkeep is not None:
                        self.upkeep.after_batch(self._connection, self.counts.commits > commits)
        finally:
            if self._before_close is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._before_close(self._connection)
            self._connection.close()
            self._fail_leftovers()

    def _take_batch(self) -> tuple[list[_Job], bool]:
        first = self._next()
        if first is _IDLE:
            assert self.upkeep is not None
            self.upkeep.idle(self._connection)
            return [], False
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

    def _next(self) -> _Job | object:
        """The next item queued; `_IDLE` when none came before the WAL is owed its idle
        checkpoint."""
        patience = self.upkeep.patience() if self.upkeep is not None else None
        if patience is None:
            return self._queue.get()
        try:
            return self._queue.get(timeout=patience)
        except queue.Empty:
            return _IDLE

    def _reclaim(self, error: BaseException, reclaimed: bool) -> bool:
        """Whether to try the batch again: once, after a TRUNCATE checkpoint, when the
        disk was full (the WAL may hold most of what the volume has)."""
        full = isinstance(error, sqlite3.Error) and _refusal(error) == NO_SPACE
        if reclaimed or self.upkeep is None or not full:
            return False
        return self.upkeep.reclaim(self._connection)

    def _execute(self, batch: list[_Job]) -> None:
        if not self._transactional:
            self._answer(batch, [self._run_alone(job) for job in batch])
            return
        outcomes: dict[int, tuple[bool, Any]] = {}
        remaining = list(range(len(batch)))
        reclaimed = False
        while remaining:
            try:
                values = self._run_in_one_transaction([batch[i] for i in remaining])
            except _OperationFailed as failure:
                # Roll back and run the batch again without the operation that failed:
                # the others still share one commit, the failure costs only its caller.
                self._rollback()
                if self._reclaim(failure.error, reclaimed):
                    reclaimed = True
                    continue
                outcomes[remaining.pop(failure.position)] = (False, failure.error)
                continue
            except Exception as error:
                # BEGIN or COMMIT itself failed: give each operation its own transaction.
                self._rollback()
                if self._reclaim(error, reclaimed):
                    reclaimed = True
                    continue
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
        self.counts.committed(len(batch))
        return values

    def _run_in_own_transaction(self, job: _Job) -> tuple[bool, Any]:
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            value = job.operation(self._connection)
            self._connection.execute("COMMIT")
        except Exception as error:
            self._rollback()
            return False, error
        self.counts.committed(1)
        return True, value

    def _run_alone(self, job: _Job) -> tuple[bool, Any]:
        try:
            return True, job.operation(self._connection)
        except Exception as error:
            return False, error

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
                self._answer([item], [(False, StoreClosed("the store is closed"))])


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
        connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    except BaseException:
        connection.close()
        raise
    return connection


def _connect_memory(name: str | None) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    saved = _MEMORY_DATABASES.get(name) if name else None
    if saved is not None:
        connection.deserialize(saved)
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def _make_private_directories(directory: Path) -> None:
    """Create the missing directories down to `directory`, each 0700 (existing ones are
    the operator's and stay as they are)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        created.mkdir(mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)
        created.chmod(PRIVATE_DIRECTORY_MODE)


def _prepare_private_files(path: Path) -> None:
    """Make the database's directory and file before SQLite does, readable by the owner
    alone; take away other users' access to existing files (once, with a warning)."""
    _make_private_directories(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(descriptor)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & ~0o077)
                log.warning(
                    "%s was readable by other users (mode %04o); it holds personal data,"
                    " made it %04o",
                    file,
                    mode,
                    mode & ~0o077,
                )


def _result_rows(cursor: sqlite3.Cursor) -> Rows:
    return Rows([column[0] for column in cursor.description or ()], cursor.fetchall())


def _execute(connection: sqlite3.Connection, step: Step) -> Any:
    """Answer one step of a script on this connection."""
    if step is ANNOUNCE:  # one process: the store announces to its own listeners
        return None
    if isinstance(step, CallMany):
        connection.executemany(step.query.compiled("sqlite").text, step.parameter_sets)
        return None
    cursor = connection.execute(step.query.compiled("sqlite").text, step.parameters)
    if step.shape == "count":
        return cursor.rowcount
    found = _result_rows(cursor)
    if step.shape == "rows":
        return found
    if not found.values:
        return None
    first = found.values[0]
    return dict(zip(found.columns, first, strict=True)) if step.shape == "row" else first[0]


def _operation(script: Callable[[], Script[T]]) -> Operation[T]:
    return lambda connection: run_script(script(), lambda step: _execute(connection, step))


def _refusal(error: BaseException) -> str | None:
    """Why SQLite or the OS refused to write, when it did: no space, or read-only."""
    if isinstance(error, sqlite3.Error):
        primary = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
        return {SQLITE_FULL: NO_SPACE, SQLITE_READONLY: READ_ONLY}.get(primary)
    if isinstance(error, OSError):
        return {errno.ENOSPC: NO_SPACE, errno.EDQUOT: NO_SPACE, errno.EROFS: READ_ONLY}.get(
            error.errno or 0
        )
    return None


def _translated(error: BaseException, where: str) -> BaseException:
    """A sqlite3 or OS error as a `StoreError` naming the store (other errors unchanged):
    the one mapping of this driver's errors."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, sqlite3.IntegrityError):
        return StoreConflict(f"{where}: {error}")
    refused = _refusal(error)
    if refused is not None:
        return StoreRefusedWrite(f"{where}: {error}", refused)
    if isinstance(error, sqlite3.Error | OSError):
        return StoreUnavailable(f"{where}: {error}")
    return error


class SQLiteConnector(Connector):
    """One SQLite file (or memory database) behind a writer and a reader thread."""

    dialect = "sqlite"
    shared = False

    def __init__(
        self,
        path: Path | None,
        *,
        memory_name: str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        checkpoints: CheckpointPolicy | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.memory_name = memory_name
        self.max_batch = max_batch
        self.checkpoints = checkpoints or CheckpointPolicy()
        self._writer: _ConnectionThread | None = None
        self._reader: _ConnectionThread | None = None

    def describe(self) -> str:
        if self.path is None:
            return f"{MEMORY_URL_PREFIX}{self.memory_name or ''}"
        return str(self.path)

    @property
    def _where(self) -> str:
        return f"the SQLite store {self.describe()}"

    @property
    def checkpoints_done(self) -> dict[str, int]:
        """Checkpoints the writer ran besides SQLite's own, by reason."""
        upkeep = self._writer.upkeep if self._writer else None
        return dict(upkeep.done) if upkeep is not None else {}

    async def open(self, migrate: Callable[[], Script[None]], *, create: bool = True) -> None:
        if self._writer is not None:
            return
        if not create and self.path is not None and not self.path.is_file():
            raise StoreMissing(f"no store at {self.describe()}: the file does not exist")
        try:
            writer = await asyncio.to_thread(self._connect)
            self._writer = self._start("writer", writer, transactional=True)
            await self.write(migrate)
            if self.path is not None:  # a memory database has one connection
                reader = await asyncio.to_thread(_connect, self.path)
                self._reader = self._start("reader", reader, transactional=False)
        except Exception as error:
            await self.close()
            raise _translated(error, self._where) from error

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            return _connect_memory(self.memory_name)
        _prepare_private_files(self.path)
        return _connect(self.path)

    def _start(
        self, role: str, connection: sqlite3.Connection, *, transactional: bool
    ) -> _ConnectionThread:
        thread = _ConnectionThread(
            f"sqlite-{role}:{self.describe()}",
            connection,
            transactional=transactional,
            max_batch=self.max_batch,
            counts=self.counts,
            before_close=self._save_memory if transactional and self.memory_name else None,
            upkeep=(
                _WalUpkeep(self.path, self.checkpoints)
                if transactional and self.path is not None
                else None
            ),
        )
        thread.start()
        return thread

    def _save_memory(self, connection: sqlite3.Connection) -> None:
        if self.memory_name:
            _MEMORY_DATABASES[self.memory_name] = connection.serialize()

    async def close(self) -> None:
        threads = [thread for thread in (self._writer, self._reader) if thread is not None]
        self._writer = self._reader = None
        for thread in threads:  # one after the other, so the last one checkpoints the WAL
            thread.stop()
            await asyncio.to_thread(thread.join)

    async def run_on_writer(self, operation: Operation[T]) -> T:
        """Run a function of the writer's connection inside a write batch."""
        if self._writer is None:
            raise StoreClosed(f"{self._where} is not open")
        try:
            return await self._writer.run_operation(operation)
        except Exception as error:
            raise _translated(error, self._where) from error

    async def write(
        self,
        script: Callable[[], Script[T]],
        *,
        group: bool = False,
        locks: Sequence[int] = (),
        order: str = "",
        one_statement: bool = False,
    ) -> T:
        """Every write is group-committed here: the one writer batches whatever is queued."""
        return await self.run_on_writer(_operation(script))

    async def read(self, script: Callable[[], Script[T]]) -> T:
        thread = self._reader or self._writer
        if thread is None or self._writer is None or not self._writer.is_alive():
            raise StoreClosed(f"{self._where} is not open")
        try:
            return await thread.run_operation(_operation(script))
        except Exception as error:
            raise _translated(error, self._where) from error


class SQLiteStore(QueueStore):
    """The queue on one SQLite file (`path`), or on a memory database (`in_memory`)."""

    connector: SQLiteConnector

    def __init__(
        self,
        path: str | Path | None,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        owns_leases: bool = True,
        memory_name: str | None = None,
        checkpoints: CheckpointPolicy | None = None,
    ) -> None:
        location = None if path is None else Path(path).absolute()
        connector = SQLiteConnector(
            location, memory_name=memory_name, max_batch=max_batch, checkpoints=checkpoints
        )
        super().__init__(connector, owns_leases=owns_leases)

    @classmethod
    def from_url(cls, url: str, *, owns_leases: bool = True) -> SQLiteStore:
        """`sqlite:///relative/path.db` (from the current directory) or `sqlite:////abs.db`."""
        if not url.startswith(URL_PREFIX) or len(url) == len(URL_PREFIX):
            raise ValueError(
                f"bad SQLite store URL {url!r}: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return cls(Path(url[len(URL_PREFIX) :]), owns_leases=owns_leases)

    @classmethod
    def in_memory(cls, name: str | None = None) -> SQLiteStore:
        """A store in memory, for tests: nothing is durable. Named, its data outlives a
        close within this process (`memory://name`); unnamed, each store starts empty."""
        return cls(None, memory_name=name or None)

    @property
    def path(self) -> Path | None:
        return self.connector.path

    async def _write(self, operation: Operation[T]) -> T:
        """Run a function of the writer's connection in a write batch (for tests)."""
        return await self.connector.run_on_writer(operation)
