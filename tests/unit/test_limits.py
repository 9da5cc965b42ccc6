"""Per-sink pacing (router/core/pacing.py), driven by a clock the test owns."""

from __future__ import annotations

import itertools

import pytest

from router.core.pacing import PauseSettings, SinkBreaker, TokenBucket
from router.core.units import Rate, parse_rate


def test_five_per_second_gives_a_token_every_fifth_of_a_second() -> None:
    bucket = TokenBucket(parse_rate("5/s"), now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert not bucket.take(0.1)
    assert bucket.delay_until_available(0.1) == pytest.approx(0.1)
    assert bucket.take(0.2)
    assert not bucket.take(0.3)
    assert bucket.take(0.4)


def test_burst_of_one_does_not_bank_idle_time() -> None:
    bucket = TokenBucket(parse_rate("5/s"), now=0.0)
    assert bucket.take(100.0)
    assert not bucket.take(100.0)


def test_a_larger_burst_allows_that_many_at_once() -> None:
    bucket = TokenBucket(parse_rate("1/s"), now=0.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_a_sender_that_waits_as_told_sends_evenly_spaced() -> None:
    bucket = TokenBucket(parse_rate("5/s"), now=0.0)
    now = 0.0
    sent_at = []
    for _ in range(50):
        now += bucket.delay_until_available(now)
        assert bucket.take(now), f"told to wait until {now}, then refused"
        sent_at.append(now)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert gaps == pytest.approx([0.2] * 49)


def test_thirty_per_minute_spaces_two_seconds() -> None:
    bucket = TokenBucket(parse_rate("30/m"), now=0.0)
    assert bucket.take(0.0)
    assert bucket.delay_until_available(0.5) == pytest.approx(1.5)


def trip(breaker: SinkBreaker, now: float, failures: int = 5) -> None:
    for _ in range(failures):
        breaker.on_retryable_failure(now)


def test_breaker_pauses_after_five_consecutive_failures() -> None:
    breaker = SinkBreaker()
    opened = [breaker.on_retryable_failure(10.0) for _ in range(5)]
    assert opened == [False, False, False, False, True]
    assert breaker.is_paused(10.0)
    assert breaker.allowed_in_flight(10.0, concurrency=4) == 0
    assert breaker.paused_until == 15.0


def test_a_success_between_failures_resets_the_count() -> None:
    breaker = SinkBreaker()
    trip(breaker, 0.0, failures=4)
    breaker.on_success()
    trip(breaker, 0.0, failures=4)
    assert not breaker.is_paused(0.0)
    assert breaker.allowed_in_flight(0.0, concurrency=4) == 4


def test_half_open_allows_exactly_one_in_flight() -> None:
    breaker = SinkBreaker()
    trip(breaker, 0.0)
    assert breaker.allowed_in_flight(4.999, concurrency=8) == 0
    assert breaker.allowed_in_flight(5.0, concurrency=8) == 1
    assert breaker.allowed_in_flight(500.0, concurrency=8) == 1


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = SinkBreaker()
    trip(breaker, 0.0)
    breaker.on_success()
    assert breaker.allowed_in_flight(5.0, concurrency=8) == 8
    assert breaker.paused_until is None
    trip(breaker, 100.0)
    assert breaker.paused_until == 105.0  # the pause starts short again


def test_the_pause_doubles_on_each_failed_probe_up_to_five_minutes() -> None:
    breaker = SinkBreaker()
    now = 0.0
    trip(breaker, now)
    pauses = []
    for _ in range(9):
        assert breaker.paused_until is not None
        pauses.append(breaker.paused_until - now)
        now = breaker.paused_until
        assert breaker.allowed_in_flight(now, concurrency=8) == 1
        assert breaker.on_retryable_failure(now)  # the probe failed
    assert pauses == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_failure_during_the_pause_does_not_extend_it() -> None:
    breaker = SinkBreaker()
    trip(breaker, 0.0)
    assert not breaker.on_retryable_failure(3.0)  # a send that started before the pause
    assert breaker.paused_until == 5.0
    assert breaker.allowed_in_flight(5.0, concurrency=2) == 1


def test_custom_pause_settings() -> None:
    breaker = SinkBreaker(PauseSettings(failures_to_pause=2, first_pause=1.0, max_pause=3.0))
    trip(breaker, 0.0, failures=2)
    assert breaker.paused_until == 1.0
    breaker.on_retryable_failure(1.0)
    assert breaker.paused_until == 3.0
    breaker.on_retryable_failure(3.0)
    assert breaker.paused_until == 6.0


def test_hold_until_pauses_a_closed_breaker_then_probes() -> None:
    breaker = SinkBreaker()
    breaker.hold_until(30.0)
    assert breaker.allowed_in_flight(29.0, concurrency=4) == 0
    assert breaker.allowed_in_flight(30.0, concurrency=4) == 1
    breaker.on_success()
    assert breaker.allowed_in_flight(30.0, concurrency=4) == 4


def test_hold_until_extends_but_never_shortens_a_pause() -> None:
    breaker = SinkBreaker()
    trip(breaker, 0.0)
    breaker.hold_until(2.0)
    assert breaker.paused_until == 5.0
    breaker.hold_until(60.0)
    assert breaker.paused_until == 60.0
    assert breaker.is_paused(59.0)


def test_a_rate_limit_is_shared_among_the_live_workers():
    from router.engine.delivery import _share

    assert _share(Rate(6, 1), 1) == Rate(6, 1)
    assert _share(Rate(6, 1), 3).per_second == 2
    assert _share(None, 3) is None
