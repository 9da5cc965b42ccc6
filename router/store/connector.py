"""What the queue needs from a database, and how it talks to it: scripts of named queries.

An operation of the queue (`router.store.queue`) is a *script*: a generator that
yields `Step`s (run this named query with these parameters and give me rows / one
row / one value / the number of rows changed; or `ANNOUNCE`: tell the other
processes that new deliveries are due) and receives each step's result. A script
holds no connection and never awaits, so the same script runs:

- synchronously, on SQLite's writer thread, inside the batch's one transaction
  (`run_script`), and
- asynchronously, on an asyncpg connection (`run_script_async`).

Results: `rows` gives `Rows` (read by column name), `row` a dict or None, `value`
the first column of the first row or None, `count` the number of rows changed.

A `Connector` is the backend: it opens and migrates the database, runs a script as
a write (one transaction, group-committed where `group=True`) or as a read, counts its
commits (`CommitCounts`), and translates its driver's errors into the
`router.store.errors` tree (one mapping per driver, in its module).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from operator import itemgetter
from typing import Any, Literal, NamedTuple, TypeVar, cast

from router.store.queries import Dialect, Query

T = TypeVar("T")
Shape = Literal["rows", "row", "value", "count"]
Row = Mapping[str, Any]


class Call(NamedTuple):  # a tuple: made for every statement, so made cheaply
    """Run `query` once; the result has the given shape."""

    query: Query
    parameters: Mapping[str, Any]
    shape: Shape


class CallMany(NamedTuple):
    """Run `query` once per parameter set (no result)."""

    query: Query
    parameter_sets: Sequence[Mapping[str, Any]]


class Announce(Enum):
    ANNOUNCE = "ANNOUNCE"

    def __repr__(self) -> str:
        return self.value


ANNOUNCE = Announce.ANNOUNCE
"""A step: once this transaction commits, other processes sharing the store should look
for new deliveries (PostgreSQL NOTIFY; nothing to do for a store owned by one process)."""

Step = Call | CallMany | Announce
Script = Generator[Step, Any, T]


def rows(query: Query, **parameters: Any) -> Call:
    return Call(query, parameters, "rows")


def row(query: Query, **parameters: Any) -> Call:
    return Call(query, parameters, "row")


def value(query: Query, **parameters: Any) -> Call:
    return Call(query, parameters, "value")


def count(query: Query, **parameters: Any) -> Call:
    return Call(query, parameters, "count")


def run_script(script: Script[T], execute: Callable[[Step], Any]) -> T:
    """Drive a script to its end, each step answered by `execute` (blocking)."""
    result: Any = None
    while True:
        try:
            step = script.send(result)
        except StopIteration as done:
            return cast(T, done.value)
        result = execute(step)


async def run_script_async(script: Script[T], execute: Callable[[Step], Awaitable[Any]]) -> T:
    """Drive a script to its end, each step answered by awaiting `execute`."""
    result: Any = None
    while True:
        try:
            step = script.send(result)
        except StopIteration as done:
            return cast(T, done.value)
        result = await execute(step)


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """A dataclass's field names, in order (looked up once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in fields(cls))
    return names


def from_row(cls: type[T], found: Row) -> T:
    """A dataclass from a row, by column name (columns it lacks keep their defaults)."""
    return cls(**{name: found[name] for name in _field_names(cls) if name in found})


class Rows:
    """A result set: its column names once, then each row as a sequence (a tuple from
    sqlite3, an asyncpg Record). Read by column name, never by position."""

    __slots__ = ("columns", "values")

    def __init__(self, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
        self.columns = tuple(columns)
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> list[Any]:
        if not self.values:  # asyncpg names no columns for an empty result
            return []
        position = self.columns.index(name)
        return [found[position] for found in self.values]

    def sorted_by(self, *names: str) -> Rows:
        if not self.values:
            return self
        key = itemgetter(*(self.columns.index(name) for name in names))
        return Rows(self.columns, sorted(self.values, key=key))

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, found, strict=True)) for found in self.values]

    def to(self, cls: type[T]) -> list[T]:
        """Each row as a `cls` dataclass, its fields matched to columns by name (fields
        with no column keep their defaults). The matching is done once per result set."""
        if not self.values:
            return []
        names = [name for name in _field_names(cls) if name in self.columns]
        take = itemgetter(*(self.columns.index(name) for name in names))
        if len(names) == 1:
            return [cls(**{names[0]: take(found)}) for found in self.values]
        if tuple(names) == _field_names(cls)[: len(names)]:  # the leading fields: by position
            return [cls(*take(found)) for found in self.values]
        return [cls(**dict(zip(names, take(found), strict=True))) for found in self.values]


@dataclass
class CommitCounts:
    """A connector's write transactions committed since it was made, the operations they
    held in all, and the most in one: the evidence of group commit (tests, benchmarks)."""

    commits: int = 0
    committed_operations: int = 0
    largest_batch: int = 0

    def committed(self, operations: int) -> None:
        """One transaction holding `operations` writes committed."""
        self.commits += 1
        self.committed_operations += operations
        self.largest_batch = max(self.largest_batch, operations)


class Connector(ABC):
    """One database behind the queue (see the module docstring)."""

    dialect: Dialect
    shared: bool
    """Whether several processes use the database at once (then leases may belong to
    other live processes, and workers count each other)."""

    def __init__(self) -> None:
        self.counts = CommitCounts()

    @abstractmethod
    async def open(self, migrate: Callable[[], Script[None]], *, create: bool = True) -> None:
        """Connect and run the `migrate` script as one write transaction, serialised with
        every other process migrating the same database. Raise `StoreOpenError`;
        `create=False`: `StoreMissing`, creating nothing, when there is no database."""

    @abstractmethod
    async def close(self) -> None:
        """Finish the writes already queued, then disconnect."""

    @abstractmethod
    async def write(
        self,
        script: Callable[[], Script[T]],
        *,
        group: bool = False,
        locks: Sequence[int] = (),
        order: str = "",
        one_statement: bool = False,
    ) -> T:
        """Run `script()` in one durable write transaction and return its value.

        `one_statement=True`: the script runs a single statement (which is atomic on its
        own), so a connector may spare the explicit transaction around it.

        `group=True`: the script may share its transaction with others queued at the
        same time (group commit); its failure costs only its own caller; members of a
        group run sorted by `order` (the same on every process, so two processes'
        groups writing the same rows cannot deadlock). `locks`:
        advisory lock keys the transaction must hold before it runs, for a store shared
        by several processes (taken in ascending order, so transactions never wait on
        each other in a cycle). A script may be run more than once (batches are rerun
        without a failing member), hence a factory, not a generator."""

    @abstractmethod
    async def read(self, script: Callable[[], Script[T]]) -> T:
        """Run `script()` for reading (no transaction needed)."""

    @abstractmethod
    def describe(self) -> str:
        """The database for messages: a path or host/database, never credentials."""
