"""Retry decisions (router/core/retry.py): backoff, Retry-After, giving up."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.retry import (
    RetryPolicy,
    RetrySettings,
    backoff_delay,
    decide_after_failure,
    parse_retry_after,
)

ACCEPTED_AT = 1_000_000.0


def test_backoff_stays_between_half_and_all_of_a_doubling_ceiling() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=10_000.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = 2.0 ** (attempt - 1)
        delays = [backoff_delay(policy, attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempt


def test_backoff_grows_with_attempts() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=10_000.0)
    rng = random.Random(1)
    for attempt in range(1, 12):
        worst_now = max(backoff_delay(policy, attempt, rng) for _ in range(20))
        best_next = min(backoff_delay(policy, attempt + 1, rng) for _ in range(20))
        assert best_next >= worst_now * 0.5
        assert best_next >= 2.0 ** (attempt - 1)


def test_max_delay_caps_the_backoff_even_after_many_attempts() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=600.0)
    rng = random.Random(3)
    for attempt in (10, 11, 50, 500, 10_000):
        delay = backoff_delay(policy, attempt, rng)
        assert 300.0 <= delay <= 600.0


def test_jitter_varies_with_the_random_source() -> None:
    policy = RetryPolicy(initial_delay=10.0, max_delay=600.0)
    delays = {backoff_delay(policy, 3, random.Random(seed)) for seed in range(20)}
    assert len(delays) > 10
    same_seed = {backoff_delay(policy, 3, random.Random(42)) for _ in range(5)}
    assert len(same_seed) == 1


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0)
    decision = decide_after_failure(
        policy,
        retryable=True,
        reason="HTTP 429",
        attempts_made=1,
        accepted_at=ACCEPTED_AT,
        now=ACCEPTED_AT + 10,
        retry_after=120.0,
        rng=random.Random(0),
    )
    assert decision.action == "retry"
    assert decision.next_attempt_at == ACCEPTED_AT + 10 + 120.0
    assert decision.reason == "HTTP 429"


def test_a_negative_retry_after_means_now_not_the_past() -> None:
    decision = decide_after_failure(
        RetryPolicy(),
        retryable=True,
        reason="503",
        attempts_made=1,
        accepted_at=ACCEPTED_AT,
        now=ACCEPTED_AT + 5,
        retry_after=-30.0,
    )
    assert decision.next_attempt_at == ACCEPTED_AT + 5


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("120", now=0.0) == 120.0
    assert parse_retry_after(" 0 ", now=0.0) == 0.0
    assert parse_retry_after(None, now=0.0) is None


@pytest.mark.parametrize("bad", ["", "soon", "-5", "1.5", "²", "٣", "12 s"])
def test_parse_retry_after_ignores_what_it_cannot_read(bad: str) -> None:
    assert parse_retry_after(bad, now=0.0) is None


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Fri, 20 Nov 2026 15:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Fri, 20 Nov 2026 14:00:00 GMT", now=now) == 0.0


def test_parse_retry_after_http_date_round_trips_format_datetime() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    header = format_datetime(when, usegmt=True)
    assert parse_retry_after(header, now=when.timestamp() - 42) == 42.0


@pytest.mark.parametrize("zone", ["", " -0000"])
def test_parse_retry_after_reads_a_zoneless_date_as_gmt_whatever_the_local_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC).timestamp()
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert parse_retry_after(f"Fri, 20 Nov 2026 15:01:00{zone}", now=now) == 60.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_max_attempts_makes_the_delivery_dead() -> None:
    policy = RetryPolicy(max_attempts=3)
    common = {"retryable": True, "reason": "HTTP 503", "accepted_at": ACCEPTED_AT}
    assert decide_after_failure(policy, attempts_made=2, now=ACCEPTED_AT, **common).action == (
        "retry"
    )
    decision = decide_after_failure(policy, attempts_made=3, now=ACCEPTED_AT, **common)
    assert decision.action == "dead"
    assert decision.reason == "gave up after 3 attempts: HTTP 503"
    assert decision.next_attempt_at is None


def test_max_age_makes_the_delivery_dead() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=60.0, max_delay=60.0, max_age=3600.0)
    decision = decide_after_failure(
        policy,
        retryable=True,
        reason="timeout",
        attempts_made=5,
        accepted_at=ACCEPTED_AT,
        now=ACCEPTED_AT + 3590,
        rng=random.Random(0),
    )
    assert decision.action == "dead"
    assert "max_age 1h" in decision.reason
    assert decision.reason.endswith("timeout")


def test_a_retry_after_beyond_max_age_makes_the_delivery_dead() -> None:
    policy = RetryPolicy(max_age=3600.0)
    decision = decide_after_failure(
        policy,
        retryable=True,
        reason="HTTP 429",
        attempts_made=1,
        accepted_at=ACCEPTED_AT,
        now=ACCEPTED_AT,
        retry_after=7200.0,
    )
    assert decision.action == "dead"


def test_a_permanent_failure_is_dead_at_once() -> None:
    decision = decide_after_failure(
        RetryPolicy(),
        retryable=False,
        reason="HTTP 404",
        attempts_made=1,
        accepted_at=ACCEPTED_AT,
        now=ACCEPTED_AT,
    )
    assert decision.action == "dead"
    assert decision.reason == "HTTP 404"


def test_resolve_layers_defaults_then_sink_overrides() -> None:
    defaults = RetrySettings.model_validate({"max_attempts": 10, "max_delay": "10m"})
    sink = RetrySettings.model_validate({"max_attempts": 20, "initial_delay": "500ms"})
    policy = RetryPolicy.resolve(defaults, sink)
    assert policy == RetryPolicy(
        max_attempts=20, initial_delay=0.5, max_delay=600.0, max_age=86400.0
    )


def test_resolve_without_layers_is_the_builtin_policy() -> None:
    assert RetryPolicy.resolve() == RetryPolicy()
    assert RetryPolicy.resolve(None, None) == RetryPolicy()


def test_a_later_layer_that_omits_a_key_keeps_the_earlier_value() -> None:
    defaults = RetrySettings.model_validate({"max_age": "1h"})
    sink = RetrySettings.model_validate({})
    assert RetryPolicy.resolve(defaults, sink).max_age == 3600.0


@pytest.mark.parametrize(
    "bad", [{"max_attempts": 0}, {"initial_delay": "soon"}, {"max_age": "-1s"}, {"tries": 3}]
)
def test_retry_settings_reject_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetrySettings.model_validate(bad)


policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(min_value=1, max_value=50),
    initial_delay=st.floats(min_value=0.001, max_value=600),
    max_delay=st.floats(min_value=0.001, max_value=3600),
    max_age=st.floats(min_value=1, max_value=7 * 86400),
)


@given(
    policy=policies,
    attempts_made=st.integers(min_value=1, max_value=60),
    elapsed=st.floats(min_value=0, max_value=8 * 86400),
    retry_after=st.none() | st.floats(min_value=-100, max_value=10 * 86400),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_retry_is_never_in_the_past_nor_beyond_max_age(
    policy: RetryPolicy,
    attempts_made: int,
    elapsed: float,
    retry_after: float | None,
    seed: int,
) -> None:
    now = ACCEPTED_AT + elapsed
    decision = decide_after_failure(
        policy,
        retryable=True,
        reason="r",
        attempts_made=attempts_made,
        accepted_at=ACCEPTED_AT,
        now=now,
        retry_after=retry_after,
        rng=random.Random(seed),
    )
    if decision.action == "retry":
        assert decision.next_attempt_at is not None
        assert now <= decision.next_attempt_at <= ACCEPTED_AT + policy.max_age
        if retry_after is not None:
            assert decision.next_attempt_at >= now + retry_after
    else:
        assert decision.next_attempt_at is None
