"""The time interval example of the rules page stays true: it loads, and mutes what it says."""

from __future__ import annotations

from datetime import UTC, datetime

from router.config.schema import parse_config
from router.rules.matching import route
from router.rules.muting import decide
from tests.docs import blocks, section

FAILED = {"id": "call-1", "status": "FAILED", "direction": "OUTBOUND"}


def example() -> str:
    [block] = blocks(section("rules.md", "Office hours and quiet periods"), "yaml")
    return block


def decisions_at(instant: datetime) -> dict[str, str | None]:
    sinks = "sinks:\n  ops-slack: {type: log}\n  crm: {type: log}\n"
    config = parse_config("version: 1\n" + sinks + example(), "rules.yaml", environ={})
    decided = decide(route(config.rules, FAILED), config.time_intervals, instant)
    return {sink: decision.muted_reason for sink, decision in decided.items()}


def test_in_office_hours_both_sinks_get_failed_calls() -> None:
    # A Tuesday, 10:00 in London.
    assert decisions_at(datetime(2026, 12, 15, 10, 0, tzinfo=UTC)) == {
        "ops-slack": None,
        "crm": None,
    }


def test_on_christmas_eve_slack_is_muted_and_the_crm_still_gets_them() -> None:
    assert decisions_at(datetime(2026, 12, 24, 10, 0, tzinfo=UTC)) == {
        "ops-slack": "time_interval:christmas",
        "crm": None,
    }


def test_after_hours_slack_is_muted_by_business_hours() -> None:
    # 09:30 UTC on a summer Tuesday is 10:30 in London; 17:00 UTC is 18:00, after hours.
    assert decisions_at(datetime(2026, 7, 14, 9, 30, tzinfo=UTC))["ops-slack"] is None
    assert decisions_at(datetime(2026, 7, 14, 17, 0, tzinfo=UTC)) == {
        "ops-slack": "time_interval:business-hours",
        "crm": None,
    }
