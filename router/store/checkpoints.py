"""When the SQLite writer copies its WAL back into the database file (a checkpoint),
besides SQLite's own trigger by size: pure decisions, on times and sizes the writer
thread gives (`router.store.sqlite` acts on them).

SQLite checkpoints inside the commit that takes the WAL past `wal_autocheckpoint`
pages (10,000, 40 MB, for throughput under load). A call written on its own rewrites
every index page it touches, ~100 KB of WAL for a small call, so at a few calls a
second the WAL would grow for minutes before that and fill a small volume. Hence:

- **idle**: once no write has come for `idle_after` seconds, a TRUNCATE checkpoint
  (copy everything, cut the WAL file to zero bytes), without waiting for readers: if
  one holds an old snapshot, it does what it can, as PASSIVE, and is owed again;
- **by time**: a PASSIVE checkpoint (never waits) after a batch when the last one is
  `every` seconds old and something was written since: the WAL then restarts from its
  beginning instead of growing;
- **low space**: a TRUNCATE checkpoint after a batch when the free space on the
  store's volume is less than the WAL's size (the WAL could not double), so it is
  copied back while there is still room to grow the database file;
- **refused for space**: when a write fails because the disk is full, one TRUNCATE
  checkpoint and the write again (decided by the writer, not here).

Under load, batches follow each other within milliseconds: the idle checkpoint never
comes, and the one by time comes less often than SQLite's by size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Checkpoint(Enum):
    PASSIVE = "PASSIVE"  # copies what it can, never waits, leaves the file's size
    TRUNCATE = "TRUNCATE"  # copies everything and cuts the WAL file to zero bytes


@dataclass(frozen=True)
class CheckpointPolicy:
    idle_after: float = 0.5  # seconds without a write
    every: float = 1.0  # seconds between checkpoints while writes go on
    low_space: bool = True  # checkpoint when the WAL could not double on the volume


NEVER = CheckpointPolicy(idle_after=float("inf"), every=float("inf"), low_space=False)
"""Only SQLite's own checkpoints (by size), as before: for the benchmark's comparison."""


class WalKeeper:
    """What the writer owes its WAL: told of commits and checkpoints, asked when to
    checkpoint and how."""

    def __init__(self, policy: CheckpointPolicy, now: float) -> None:
        self.policy = policy
        self.owed = False  # something was committed since the last complete checkpoint
        self.last_write = now
        self.last_checkpoint = now

    def committed(self, now: float) -> None:
        self.owed = True
        self.last_write = now

    def checkpointed(self, now: float, *, complete: bool) -> None:
        """A checkpoint ran; `complete`: every frame was copied (none is owed)."""
        self.last_checkpoint = now
        if complete:
            self.owed = False

    def patience(self, now: float) -> float | None:
        """How long the writer may wait for its next batch before the idle checkpoint is
        due (None: as long as it likes). Counted from the last write, or from the last
        checkpoint when a reader held that one back: it is tried again as often as the
        idle one, not in a loop."""
        if not self.owed or self.policy.idle_after == float("inf"):
            return None
        since = max(self.last_write, self.last_checkpoint)
        return max(since + self.policy.idle_after - now, 0.0)

    def when_idle(self, now: float) -> Checkpoint | None:
        """The checkpoint due when no batch came within `patience`."""
        patience = self.patience(now)
        return Checkpoint.TRUNCATE if patience is not None and patience <= 0 else None

    def after_batch(self, now: float, wal_bytes: int, free_bytes: int | None) -> Checkpoint | None:
        """The checkpoint due after a batch, given the WAL file's size and the volume's
        free space (None: unknown)."""
        if not self.owed:
            return None
        if self.policy.low_space and free_bytes is not None and free_bytes < wal_bytes:
            return Checkpoint.TRUNCATE
        if now - self.last_checkpoint >= self.policy.every:
            return Checkpoint.PASSIVE
        return None
