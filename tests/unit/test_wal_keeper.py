"""When the SQLite writer checkpoints its WAL besides SQLite's own trigger by size
(router.store.checkpoints): pure decisions on times and sizes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.store.checkpoints import NEVER, Checkpoint, CheckpointPolicy, WalKeeper

POLICY = CheckpointPolicy(idle_after=0.5, every=1.0)
MB = 1 << 20


def test_nothing_written_nothing_owed() -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    assert keeper.patience(100.0) is None  # the writer waits for work as long as it likes
    assert keeper.when_idle(100.0) is None
    assert keeper.after_batch(100.0, wal_bytes=0, free_bytes=0) is None


def test_a_write_then_silence_gets_a_truncating_checkpoint() -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    keeper.committed(10.0)
    assert abs((keeper.patience(10.2) or 0) - 0.3) < 1e-9
    assert keeper.when_idle(10.2) is None
    assert keeper.when_idle(10.5) is Checkpoint.TRUNCATE
    keeper.checkpointed(10.5, complete=True)
    assert keeper.patience(11.0) is None


def test_a_checkpoint_held_back_by_a_reader_is_owed_again() -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    keeper.committed(10.0)
    keeper.checkpointed(10.5, complete=False)
    assert keeper.patience(10.5) == 0.5  # not at once again: a reader may hold it long
    assert keeper.when_idle(10.9) is None
    assert keeper.when_idle(11.0) is Checkpoint.TRUNCATE


def test_writes_without_a_pause_get_a_passive_checkpoint_every_second() -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    due = []
    now = 0.0
    while now < 3.0:
        now = round(now + 0.01, 2)  # a batch every 10 ms: never idle
        keeper.committed(now)
        mode = keeper.after_batch(now, wal_bytes=MB, free_bytes=100 * MB)
        if mode is not None:
            due.append((now, mode))
            keeper.checkpointed(now, complete=True)
    assert due == [(1.0, Checkpoint.PASSIVE), (2.0, Checkpoint.PASSIVE), (3.0, Checkpoint.PASSIVE)]


def test_a_wal_that_could_not_double_on_the_volume_is_truncated_at_once() -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    keeper.committed(0.1)
    assert keeper.after_batch(0.1, wal_bytes=3 * MB, free_bytes=4 * MB) is None
    assert keeper.after_batch(0.1, wal_bytes=3 * MB, free_bytes=2 * MB) is Checkpoint.TRUNCATE
    assert keeper.after_batch(0.1, wal_bytes=3 * MB, free_bytes=None) is None  # unknown


def test_never_leaves_every_checkpoint_to_sqlite() -> None:
    keeper = WalKeeper(NEVER, now=0.0)
    keeper.committed(1.0)
    assert keeper.patience(1.0) is None
    assert keeper.after_batch(1e9, wal_bytes=10 * MB, free_bytes=0) is None


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=2.0),
            st.integers(min_value=0, max_value=64 * MB),
            st.integers(min_value=0, max_value=64 * MB),
        ),
        max_size=100,
    )
)
def test_a_checkpoint_is_only_ever_due_after_a_write(
    batches: list[tuple[float, int, int]],
) -> None:
    keeper = WalKeeper(POLICY, now=0.0)
    now = 0.0
    for pause, wal, free in batches:
        now += pause
        assert keeper.when_idle(now) is None and keeper.after_batch(now, wal, free) is None
        keeper.committed(now)
        mode = keeper.after_batch(now, wal, free)
        if mode is Checkpoint.TRUNCATE:
            assert free < wal
        keeper.checkpointed(now, complete=True)
