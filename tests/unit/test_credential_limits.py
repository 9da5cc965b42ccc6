"""The limit on failed credentials per client address (router/web/credential_limits.py),
driven by a clock the test owns."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from router.web.credential_limits import CredentialLimiter, record_failure


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_five_failures_a_minute_then_the_address_waits() -> None:
    clock = Clock()
    limit = CredentialLimiter(allowed=5, window=60, clock=clock)
    for _ in range(5):
        assert limit.wait("10.0.0.1") is None
        limit.failed("10.0.0.1", "bearer token")
        clock.now += 1
    assert limit.wait("10.0.0.1") == 55
    assert limit.wait("10.0.0.2") is None, "other addresses are not held"
    clock.now += 55
    assert limit.wait("10.0.0.1") is None, "the oldest failure aged out"


def test_every_kind_of_credential_counts_in_the_same_limit() -> None:
    clock = Clock()
    limit = CredentialLimiter(allowed=5, window=60, clock=clock)
    for kind in ("console sign-in", "bearer token", "console sign-in", "bearer token"):
        limit.failed("10.0.0.1", kind)
    lockout = limit.failed("10.0.0.1", "bearer token")
    assert lockout is not None
    assert lockout.kinds == {"console sign-in": 2, "bearer token": 3}
    assert lockout.seconds == 60
    assert limit.wait("10.0.0.1") == 60


def test_a_burst_is_reported_once_however_long_it_goes_on() -> None:
    clock = Clock()
    limit = CredentialLimiter(allowed=5, window=60, clock=clock)
    lockouts = []
    for _ in range(600):  # ten minutes of an attempt every second
        if limit.wait("10.0.0.1") is None:
            lockouts.append(limit.failed("10.0.0.1", "bearer token"))
        clock.now += 1
    reported = [lockout for lockout in lockouts if lockout is not None]
    assert len(reported) == 1
    assert len(lockouts) <= 5 * 10, "at most five tries a minute got through"


def test_a_new_burst_after_a_quiet_window_is_reported_again() -> None:
    clock = Clock()
    limit = CredentialLimiter(allowed=2, window=60, clock=clock)
    assert limit.failed("a", "bearer token") is None
    assert limit.failed("a", "bearer token") is not None
    clock.now += 59
    assert limit.wait("a") is not None  # refused: the burst goes on
    clock.now += 60
    assert limit.wait("a") is None
    assert limit.failed("a", "bearer token") is None
    assert limit.failed("a", "bearer token") is not None


def test_the_failure_table_stays_bounded() -> None:
    limit = CredentialLimiter(allowed=5, window=60, clock=Clock(), max_addresses=10)
    for number in range(100):
        limit.failed(f"10.0.0.{number}", "bearer token")
    assert limit.remembered <= 10


def test_a_lockout_is_logged_once_with_what_was_tried(caplog) -> None:
    limit = CredentialLimiter(allowed=3, window=60, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="router.credentials"):
        for _ in range(3):
            record_failure(limit, "10.0.0.9", "bearer token")
        for _ in range(20):
            limit.wait("10.0.0.9")
            record_failure(limit, "10.0.0.9", "bearer token")
    (line,) = [record.getMessage() for record in caplog.records]
    assert "10.0.0.9" in line and "bearer token x3" in line and "429" in line


@given(
    st.lists(st.tuples(st.floats(0, 200, allow_nan=False), st.sampled_from("ab")), max_size=40),
    st.floats(0, 400, allow_nan=False),
)
def test_an_address_waits_exactly_when_it_failed_enough_within_the_window(
    failures: list[tuple[float, str]], later: float
) -> None:
    clock = Clock(0.0)
    limit = CredentialLimiter(allowed=3, window=60, clock=clock)
    times: dict[str, list[float]] = {"a": [], "b": []}
    for at, address in sorted(failures):
        clock.now = at
        if limit.wait(address) is None:  # callers check an attempt only when not held
            limit.failed(address, "x")
            times[address].append(at)
    clock.now = max([at for at, _ in failures], default=0.0) + later
    for address, seen in times.items():
        recent = [at for at in seen if at > clock.now - 60]
        wait = limit.wait(address)
        assert len(recent) <= 3, "an address that waits gets no more tries"
        if len(recent) == 3:
            assert wait == min(recent) + 60 - clock.now
        else:
            assert wait is None
