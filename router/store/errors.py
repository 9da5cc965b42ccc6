"""What a store raises, whichever database is behind it: one `StoreError` tree.

- `StoreUnavailable`: the store cannot be opened, reached, migrated or written
  (a missing directory, a file that is not a database, a server that is down, a full
  disk). `StoreOpenError` is the part of it raised by `Store.open`, `StoreMissing`
  the part where there is no store to open and `open(create=False)` made none;
  `StoreRefusedWrite` the part where the store answers but will not write (no space
  left, a read-only file or database): a small write may still pass where a call's
  does not, so /readyz remembers these (`router.engine.health`).
- `StoreClosed`: an operation was asked of a store that is not open (or is closing).
- `StoreConflict`: the data refused the operation (a delivery id already taken, a
  digest that could not be joined or opened); the call fails alone, others go on.

The connectors translate sqlite3, asyncpg and OS errors into these, keeping the
original as `__cause__`; a message names the store without its credentials.
"""

from __future__ import annotations


class StoreError(RuntimeError):
    """Anything that went wrong inside the store."""


class StoreUnavailable(StoreError):
    """The store cannot be opened, reached or written."""


class StoreOpenError(StoreUnavailable):
    """`Store.open` failed: the database cannot be created, opened or migrated."""


class StoreMissing(StoreOpenError):
    """`Store.open(create=False)` found no store: no SQLite file, or a database without
    the router's tables. Nothing was created."""


class StoreRefusedWrite(StoreUnavailable):
    """The store answered but refused to write: `reason` is "no space left" or
    "read-only"."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


NO_SPACE = "no space left"
READ_ONLY = "read-only"


class StoreClosed(StoreError):
    """An operation was asked of a store that is not open."""


class StoreConflict(StoreError):
    """The data refused this one operation (a constraint, a lost race)."""
