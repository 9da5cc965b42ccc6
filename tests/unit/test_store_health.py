"""The store's record (router.engine.health), on an injected clock: an outage is logged once
when it starts and once when the store has answered steadily again, however the
successes and failures of its end interleave; a write refused for space or a
read-only store keeps /readyz at 503 for a while, whatever the probe says."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.engine.health import HealthPolicy, StoreHealth, StoreRecord
from router.store.errors import NO_SPACE, READ_ONLY, StoreRefusedWrite, StoreUnavailable
from router.store.postgres import FailureReport


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "router.store" and "store" in record.getMessage()
    ]


def _starts(lines: list[str]) -> int:
    return sum(line.startswith("store unavailable") for line in lines)


def _ends(lines: list[str]) -> int:
    return sum(line.startswith("store available again") for line in lines)


def test_a_freeze_whose_queued_calls_time_out_among_successes_is_one_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's recovery: 20 s of failures, then 0.9 s in which calls queued during the
    freeze time out between others that succeed, then steady successes."""
    caplog.set_level(logging.INFO, logger="router.store")
    clock = Clock()
    health = StoreHealth(clock=clock)
    for _ in range(200):  # 20 s frozen, 10 failures a second
        health.failed(TimeoutError("the store did not answer within 5 s"))
        clock.now += 0.1
    for _ in range(11):  # 0.9 s: a success, then a call that was queued times out
        health.succeeded()
        clock.now += 0.04
        health.failed(TimeoutError("the store did not answer within 5 s"))
        clock.now += 0.04
    while clock.now < 1040:  # 50 calls a second that go through
        health.succeeded()
        clock.now += 0.02
    lines = _lines(caplog)
    assert (_starts(lines), _ends(lines)) == (1, 1), lines
    assert "211 operations failed" in lines[-1]
    assert not health.down


def test_a_first_success_does_not_end_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="router.store")
    clock = Clock()
    health = StoreHealth(clock=clock)
    health.failed(StoreUnavailable("connection refused"))
    clock.now += 10
    health.succeeded()
    assert health.down and _ends(_lines(caplog)) == 0


def test_an_outage_ends_after_steady_successes_and_says_how_long_it_lasted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="router.store")
    clock = Clock()
    policy = HealthPolicy(settle_seconds=2.0, settle_successes=3)
    health = StoreHealth(clock=clock, policy=policy)
    health.failed(StoreUnavailable("connection refused"))
    clock.now += 4.0
    health.failed(StoreUnavailable("connection refused"))
    clock.now += 1.0  # the store answers again 5 s after the outage began
    health.succeeded()
    health.succeeded()
    assert health.down  # two successes within 1 s of the last failure: not yet
    clock.now += 1.0
    health.succeeded()
    assert not health.down
    lines = _lines(caplog)
    assert lines[-1] == (
        "store available again after 5.0 s; 2 operations failed meanwhile"
        " (last: StoreUnavailable: connection refused)"
    )


events = st.lists(st.tuples(st.floats(min_value=0.0, max_value=3.0), st.booleans()), max_size=200)


@given(events)
def test_an_outage_never_ends_within_the_settle_time_of_a_failure(
    steps: list[tuple[float, bool]],
) -> None:
    policy = HealthPolicy(settle_seconds=1.0, settle_successes=3)
    record = StoreRecord(policy)
    now = 0.0
    outages = 0
    last_failure: float | None = None
    successes_since_failure = 0
    for pause, succeeded in steps:
        now += pause
        if succeeded:
            successes_since_failure += 1
            ended = record.success(now)
            if ended is not None:
                assert last_failure is not None
                assert now - last_failure >= policy.settle_seconds
                assert successes_since_failure >= policy.settle_successes
                outages -= 1
        else:
            if record.failure(now, "StoreUnavailable: down"):
                outages += 1
            last_failure, successes_since_failure = now, 0
        assert outages == (1 if record.down else 0)


def test_a_write_refused_for_space_keeps_readiness_off_for_a_while() -> None:
    clock = Clock()
    health = StoreHealth(clock=clock, policy=HealthPolicy(refusal_memory=30.0))
    assert health.refusal() is None
    health.failed(StoreRefusedWrite("the SQLite store x.db: database or disk is full", NO_SPACE))
    clock.now += 12
    health.succeeded()  # the probe's one-row write goes through: it proves nothing
    assert health.refusal() == "the store refused a write 12 s ago (no space left)"
    clock.now += 18
    assert health.refusal() is None  # 30 s without a refused write: ready again


def test_the_last_refusal_counts() -> None:
    clock = Clock()
    health = StoreHealth(clock=clock, policy=HealthPolicy(refusal_memory=10.0))
    health.failed(StoreRefusedWrite("x", NO_SPACE))
    clock.now += 8
    health.failed(StoreRefusedWrite("x", READ_ONLY))
    clock.now += 8
    assert health.refusal() == "the store refused a write 8 s ago (read-only)"


def test_failures_that_are_not_refusals_leave_readiness_to_the_probe() -> None:
    health = StoreHealth(clock=Clock())
    health.failed(StoreUnavailable("connection refused"))
    health.failed(TimeoutError("the store did not answer within 5 s"))
    assert health.refusal() is None


def test_a_repeating_group_commit_failure_is_reported_once_a_minute_with_its_count() -> None:
    report = FailureReport(interval=60.0)
    covered = [report.failed(now / 50) for now in range(50 * 130)]  # 50 a second, 130 s
    assert [(n / 50, count) for n, count in enumerate(covered) if count is not None] == [
        (0.0, 1),
        (60.0, 3000),
        (120.0, 3000),
    ]
