"""What a process knows of its own leases (`router.store.leases.LeaseMemory`): a lease
check is answered without the store only while nothing can have taken the lease. Pure;
the clock is a number the test moves."""

from __future__ import annotations

from router.store.leases import MAX_REMEMBERED, REFRESH_SECONDS, TRUSTED_SECONDS, LeaseMemory


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def memory_with_claim(clock: Clock, mark: str | None = None) -> LeaseMemory:
    memory = LeaseMemory(clock)
    memory.claimed(["d1", "d2"], "w1", 30.0, memory.before(), mark)
    return memory


def test_a_fresh_claim_is_answered_once_and_only_for_its_owner() -> None:
    clock = Clock()
    memory = memory_with_claim(clock)
    assert memory.still_held("d1", "w1")
    assert not memory.still_held("d1", "w1"), "a second ask goes to the store"
    assert not memory.still_held("d2", "w2")
    assert not memory.still_held("unknown", "w1")


def test_an_erasure_in_this_process_sends_every_earlier_lease_to_the_store() -> None:
    clock = Clock()
    memory = memory_with_claim(clock)
    memory.erasing()
    assert not memory.still_held("d1", "w1")
    memory.erasing()  # it ended: leases taken before it still go to the store
    assert not memory.still_held("d2", "w1")
    memory.claimed(["d3"], "w1", 30.0, memory.before(), None)
    assert memory.still_held("d3", "w1")


def test_a_new_mark_read_later_sends_the_check_to_the_store() -> None:
    clock = Clock()
    memory = memory_with_claim(clock, mark="a")
    clock.now += 0.01
    memory.read_mark("b", clock.now)  # another process erased something
    assert not memory.still_held("d1", "w1")


def test_a_mark_read_before_a_newer_one_is_not_taken() -> None:
    clock = Clock()
    memory = memory_with_claim(clock, mark="a")
    memory.read_mark("b", clock.now + 0.01)
    memory.read_mark("a", clock.now)  # an older read answering late
    assert memory.mark == "b"


def test_a_mark_read_too_long_ago_is_not_trusted() -> None:
    clock = Clock()
    memory = memory_with_claim(clock)
    assert not memory.mark_due()
    clock.now += REFRESH_SECONDS + 0.001
    assert memory.mark_due()
    assert memory.still_held("d1", "w1")
    clock.now += TRUSTED_SECONDS
    assert not memory.still_held("d2", "w1")
    memory.read_mark(None, clock.now)
    memory.claimed(["d3"], "w1", 30.0, memory.before(), None)
    assert memory.still_held("d3", "w1")


def test_a_lease_past_half_its_length_goes_to_the_store() -> None:
    clock = Clock()
    memory = memory_with_claim(clock)
    clock.now += 15.0
    memory.read_mark(None, clock.now)  # the mark is fresh: only the lease's age counts
    assert not memory.still_held("d1", "w1")


def test_leases_written_before_any_mark_was_read_are_not_remembered() -> None:
    clock = Clock()
    memory = LeaseMemory(clock)
    memory.written([("d1", "w1", 30.0)], memory.before())
    memory.read_mark(None, clock.now)
    assert not memory.still_held("d1", "w1")
    memory.written([("d2", "w1", 30.0)], memory.before())
    assert memory.still_held("d2", "w1")


def test_a_written_lease_compares_the_mark_known_before_its_write() -> None:
    clock = Clock()
    memory = LeaseMemory(clock)
    memory.read_mark("a", clock.now)
    before = memory.before()
    memory.read_mark("b", clock.now + 0.001)  # read while the write was under way
    memory.written([("d1", "w1", 30.0)], before)
    assert not memory.still_held("d1", "w1")


def test_what_is_remembered_stays_bounded() -> None:
    clock = Clock()
    memory = LeaseMemory(clock)
    memory.claimed([f"d{n}" for n in range(MAX_REMEMBERED)], "w1", 30.0, memory.before(), None)
    memory.claimed(["last"], "w1", 30.0, memory.before(), None)
    assert memory.still_held("last", "w1")
    assert not memory.still_held("d0", "w1")
