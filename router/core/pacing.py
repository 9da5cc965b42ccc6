"""Per-sink pacing, pure: a token bucket for `rate_limit` and a breaker that pauses a
sink that keeps failing. Both take the time as an argument, so tests drive the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.core.units import Rate

_TOKEN_SLACK = 1e-9  # float noise in refills must not leave a token at 0.9999999999999998


class TokenBucket:
    """`rate` sends per second on average, at most `burst` at once (default 1: evenly spaced)."""

    def __init__(self, rate: Rate, now: float, burst: float = 1.0) -> None:
        self.interval = 1.0 / rate.per_second
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(self.burst, self._tokens + elapsed / self.interval)
        self._updated = now

    def delay_until_available(self, now: float) -> float:
        """Seconds until one token is available (0 if one is now)."""
        self._refill(now)
        if self._tokens >= 1.0 - _TOKEN_SLACK:
            return 0.0
        return (1.0 - self._tokens) * self.interval

    def take(self, now: float) -> bool:
        """Take a token if one is available."""
        self._refill(now)
        if self._tokens >= 1.0 - _TOKEN_SLACK:
            self._tokens = max(self._tokens - 1.0, 0.0)
            return True
        return False


@dataclass
class PauseSettings:
    failures_to_pause: int = 5
    first_pause: float = 5.0
    max_pause: float = 300.0


class SinkBreaker:
    """Pauses a sink after `failures_to_pause` consecutive retryable failures.

    States: closed (sending), open (paused until `paused_until`), half-open (the pause
    ended: one probe delivery goes out; success closes, failure reopens with the pause
    doubled, up to `max_pause`). Permanent failures do not count: they say nothing
    about the destination's health.
    """

    def __init__(self, settings: PauseSettings | None = None) -> None:
        self.settings = settings or PauseSettings()
        self.consecutive_failures = 0
        self.paused_until: float | None = None
        self.next_pause = self.settings.first_pause

    def is_paused(self, now: float) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def allowed_in_flight(self, now: float, concurrency: int) -> int:
        """How many sends may be in flight now: 0 while paused, 1 while probing."""
        if self.is_paused(now):
            return 0
        if self.paused_until is not None:
            return 1
        return concurrency

    def on_success(self) -> None:
        self.consecutive_failures = 0
        self.paused_until = None
        self.next_pause = self.settings.first_pause

    def on_retryable_failure(self, now: float) -> bool:
        """Count a failure; return True when it (re)opens the pause."""
        self.consecutive_failures += 1
        if self.is_paused(now):
            return False  # a send that started before the pause
        probe_failed = self.paused_until is not None
        if probe_failed or self.consecutive_failures >= self.settings.failures_to_pause:
            self.paused_until = now + self.next_pause
            self.next_pause = min(self.next_pause * 2, self.settings.max_pause)
            return True
        return False

    def hold_until(self, until: float) -> None:
        """The destination asked to wait (Retry-After): send nothing before `until`,
        then probe with one delivery."""
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
