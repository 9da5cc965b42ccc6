"""Retry policy: when to try a failed delivery again, and when to give up. Pure logic.

Backoff is exponential with "equal jitter": attempt n waits between half and all
of min(max_delay, initial_delay * 2**(n-1)), so retries from one outage spread
out instead of arriving together. A destination's `Retry-After` replaces the
backoff (never sooner than it asks). A delivery goes dead when the failure is
permanent, when `max_attempts` attempts have been made, or when the next try
would fall after `max_age` from the moment the event was accepted.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.core.units import Duration, format_duration


class RetrySettings(BaseModel):
    """The `retry:` block of rules.yaml; keys not given come from the level above."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    initial_delay: Duration | None = None
    max_delay: Duration | None = None
    max_age: Duration | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    initial_delay: float = 1.0
    max_delay: float = 600.0
    max_age: float = 86400.0

    @classmethod
    def resolve(cls, *layers: RetrySettings | None) -> RetryPolicy:
        """Built-in defaults, overridden by each layer in turn (defaults.retry, then the sink's)."""
        values: dict[str, Any] = {
            "max_attempts": cls.max_attempts,
            "initial_delay": cls.initial_delay,
            "max_delay": cls.max_delay,
            "max_age": cls.max_age,
        }
        for layer in layers:
            if layer is not None:
                values.update(layer.model_dump(exclude_none=True))
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    """What the engine does with a delivery after a failed attempt."""

    action: Literal["retry", "dead"]
    reason: str
    next_attempt_at: float | None = None


def backoff_delay(policy: RetryPolicy, attempts_made: int, rng: random.Random) -> float:
    """Seconds to wait after the `attempts_made`-th failure (1-based)."""
    exponent = min(max(attempts_made - 1, 0), 60)
    ceiling = min(policy.max_delay, policy.initial_delay * (2.0**exponent))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def decide_after_failure(
    policy: RetryPolicy,
    *,
    retryable: bool,
    reason: str,
    attempts_made: int,
    accepted_at: float,
    now: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Retry or give up, given the failure and the delivery's history."""
    if not retryable:
        return Decision("dead", reason)
    if attempts_made >= policy.max_attempts:
        return Decision("dead", f"gave up after {attempts_made} attempts: {reason}")
    if retry_after is not None:
        delay = max(retry_after, 0.0)
    else:
        delay = backoff_delay(policy, attempts_made, rng or random.Random())
    next_attempt_at = now + delay
    if next_attempt_at > accepted_at + policy.max_age:
        return Decision(
            "dead", f"gave up: max_age {format_duration(policy.max_age)} reached: {reason}"
        )
    return Decision("retry", reason, next_attempt_at)


_DELAY_SECONDS = re.compile(r"[0-9]+")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are always GMT; `-0000` or no zone parse as naive
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


__all__ = [
    "Decision",
    "RetryPolicy",
    "RetrySettings",
    "backoff_delay",
    "decide_after_failure",
    "parse_retry_after",
]
