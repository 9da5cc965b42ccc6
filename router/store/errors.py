"""What a store raises, whichever database is behind it: one `StoreError` tree.

- `StoreUnavailable`: the store cannot be opened, reached, migrated or written
  (a missing directory, a file that is not a database, a server that is down, a full
  disk). `StoreOpenError` is the part of it raised by `Store.open`.
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


class StoreClosed(StoreError):
    """An operation was asked of a store that is not open."""


class StoreConflict(StoreError):
    """The data refused this one operation (a constraint, a lost race)."""


StoreClosedError = StoreClosed
"""The former name of `StoreClosed`."""
