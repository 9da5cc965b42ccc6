"""Rejected webhooks in the log: a RevRing key that is wrong, or bodies the router cannot
take, show there and not only in `events_rejected_total` (DESIGN.md section 4).

Each reason (401 missing or wrong key, 413, 415, 400, 422, ...) is logged at most once
per `interval`: its first rejection after a quiet spell at once, then those that follow
as one line with their count when the interval is over ("rejected 37 webhooks in the
last 10 s: missing or wrong x-api-key header (401)"). A line names the reason only:
never the key presented, the body or anything read from it.

`RejectionCounts` decides (pure, its clock injected); `RejectionLog` logs what it
decides and wakes itself when counts are due. An accepted call costs nothing here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("router.web.webhook")

REPORT_INTERVAL = 10.0
# What each reason means (the webhook's metric label), in words that hold nothing sent.
DESCRIPTIONS = {
    "unauthorized": "missing or wrong x-api-key header",
    "too_large": "body over the size limit",
    "body_timeout": "request body not received in time",
    "not_json": "Content-Type is not JSON",
    "unknown_charset": "the Content-Type names an unknown charset",
    "not_text": "the body is not text in its charset",
    "malformed_json": "malformed JSON",
    "invalid_event": "not a valid post-call event",
}


@dataclass(frozen=True)
class Report:
    """A line to log: `count` rejections of one reason; `seconds`: over how long (None:
    the first of a quiet spell, logged as it happens)."""

    status: int
    reason: str
    count: int
    seconds: float | None = None

    def line(self) -> str:
        what = f"{DESCRIPTIONS.get(self.reason, self.reason)} ({self.status})"
        if self.seconds is None:
            return f"rejected a webhook: {what}"
        plural = "webhook" if self.count == 1 else "webhooks"
        return f"rejected {self.count} {plural} in the last {self.seconds:.0f} s: {what}"


@dataclass
class _Spell:
    started: float
    count: int = 0  # rejections since `started`, not logged yet


class RejectionCounts:
    """At most one report per (status, reason) per `interval` seconds."""

    def __init__(
        self, interval: float = REPORT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._spells: dict[tuple[int, str], _Spell] = {}

    def rejected(self, status: int, reason: str) -> Report | None:
        """Count one rejection: the report to log now when it starts a spell, else None
        (it is in the next `due` report)."""
        key = (status, reason)
        spell = self._spells.get(key)
        if spell is None:
            self._spells[key] = _Spell(self.clock())
            return Report(status, reason, 1)
        spell.count += 1
        return None

    def due(self) -> list[Report]:
        """The counts of every spell whose interval is over. A spell with rejections
        counted starts a new interval; one with none ends (the next rejection of its
        reason is reported at once)."""
        now = self.clock()
        reports = []
        for key, spell in list(self._spells.items()):
            if now - spell.started < self.interval:
                continue
            if spell.count:
                reports.append(Report(*key, spell.count, now - spell.started))
                self._spells[key] = _Spell(now)
            else:
                del self._spells[key]
        return reports

    def remaining(self) -> list[Report]:
        """Every count not reported yet, whatever the time (at shutdown); all spells end."""
        now = self.clock()
        reports = [
            Report(*key, spell.count, now - spell.started)
            for key, spell in self._spells.items()
            if spell.count
        ]
        self._spells.clear()
        return reports

    def next_due(self) -> float | None:
        """When the earliest spell's interval is over, or None when there is none."""
        if not self._spells:
            return None
        return min(spell.started for spell in self._spells.values()) + self.interval


class RejectionLog:
    """Logs a `RejectionCounts`' reports, waking on the event loop when some are due."""

    def __init__(self, counts: RejectionCounts | None = None) -> None:
        self.counts = counts or RejectionCounts()
        self._timer: asyncio.TimerHandle | None = None

    def rejected(self, status: int, reason: str) -> None:
        report = self.counts.rejected(status, reason)
        if report is not None:
            self._log([report])
        if self._timer is None:
            self._wake_when_due()

    def _wake_when_due(self) -> None:
        due = self.counts.next_due()
        if due is None:
            self._timer = None
            return
        delay = max(due - self.counts.clock(), 0.0)
        self._timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._log(self.counts.due())
        self._wake_when_due()

    def close(self) -> None:
        """Log what is counted and not logged yet; stop waking."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._log(self.counts.remaining())

    @staticmethod
    def _log(reports: list[Report]) -> None:
        for report in reports:
            log.warning(
                report.line(),
                extra={"reason": report.reason, "status": report.status, "count": report.count},
            )
