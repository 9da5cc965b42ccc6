"""Rejected webhooks in the log (router/web/rejections.py): per reason, the first at once
and then at most one line per interval with the count; nothing of what was sent."""

from __future__ import annotations

import asyncio
import logging

import pytest

from router.web.rejections import RejectionCounts, RejectionLog, Report


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_of_a_quiet_spell_is_reported_at_once_the_rest_counted() -> None:
    clock = Clock()
    counts = RejectionCounts(10.0, clock)
    assert counts.rejected(401, "unauthorized") == Report(401, "unauthorized", 1)
    for _ in range(37):
        clock.now += 0.1
        assert counts.rejected(401, "unauthorized") is None
    assert counts.due() == []
    clock.now = 1010.0
    assert counts.due() == [Report(401, "unauthorized", 37, 10.0)]
    assert counts.due() == []


def test_each_reason_has_its_own_spell() -> None:
    clock = Clock()
    counts = RejectionCounts(10.0, clock)
    assert counts.rejected(401, "unauthorized") is not None
    clock.now += 5
    assert counts.rejected(422, "invalid_event") is not None
    counts.rejected(422, "invalid_event")
    counts.rejected(401, "unauthorized")
    assert counts.next_due() == 1010.0
    clock.now = 1010.0
    assert counts.due() == [Report(401, "unauthorized", 1, 10.0)]
    assert counts.next_due() == 1015.0
    clock.now = 1015.0
    assert counts.due() == [Report(422, "invalid_event", 1, 10.0)]


def test_a_spell_without_more_rejections_ends_and_the_next_is_reported_at_once() -> None:
    clock = Clock()
    counts = RejectionCounts(10.0, clock)
    counts.rejected(401, "unauthorized")
    counts.rejected(401, "unauthorized")
    clock.now = 1010.0
    assert counts.due() == [Report(401, "unauthorized", 1, 10.0)]  # a new interval starts
    clock.now = 1020.0
    assert counts.due() == [], "nothing more came: the spell ends"
    assert counts.next_due() is None
    assert counts.rejected(401, "unauthorized") == Report(401, "unauthorized", 1)


def test_at_most_one_line_per_reason_per_interval_however_many_come() -> None:
    clock = Clock()
    counts = RejectionCounts(10.0, clock)
    lines: list[tuple[float, Report]] = []
    for step in range(1000):  # 100 rejections a second for 10 s, reports asked often
        clock.now = 1000.0 + step / 100
        report = counts.rejected(401, "unauthorized")
        lines += [(clock.now, report)] if report else []
        lines += [(clock.now, due) for due in counts.due()]
    clock.now = 1010.0
    lines += [(clock.now, due) for due in counts.due()]
    assert [(at, r.count) for at, r in lines] == [(1000.0, 1), (1010.0, 999)]


def test_the_lines_name_the_reason_and_status_only() -> None:
    assert Report(401, "unauthorized", 37, 10.0).line() == (
        "rejected 37 webhooks in the last 10 s: missing or wrong x-api-key header (401)"
    )
    assert Report(422, "invalid_event", 1).line() == (
        "rejected a webhook: not a valid post-call event (422)"
    )
    assert Report(400, "something_new", 1, 10.0).line() == (
        "rejected 1 webhook in the last 10 s: something_new (400)"
    )


def test_remaining_counts_are_reported_at_shutdown() -> None:
    clock = Clock()
    counts = RejectionCounts(10.0, clock)
    counts.rejected(415, "not_json")
    counts.rejected(415, "not_json")
    counts.rejected(400, "malformed_json")
    clock.now += 3
    assert counts.remaining() == [Report(415, "not_json", 1, 3.0)]
    assert counts.next_due() is None


async def test_the_log_wakes_itself_when_counts_are_due(caplog: pytest.LogCaptureFixture) -> None:
    rejections = RejectionLog(RejectionCounts(0.05))
    with caplog.at_level(logging.WARNING, logger="router.web.webhook"):
        for _ in range(5):
            rejections.rejected(401, "unauthorized")
        await asyncio.sleep(0.2)
        rejections.close()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "rejected a webhook: missing or wrong x-api-key header (401)"
    assert lines[1].startswith("rejected 4 webhooks in the last 0 s: missing or wrong x-api-key")
    assert len(lines) == 2
    assert caplog.records[1].count == 4  # type: ignore[attr-defined]
