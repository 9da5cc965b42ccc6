"""The muting decision: time intervals per rule, a sink sent while any rule to it is live,
silences on top; at fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.rules.matching import CompiledRule, compile_when, route
from router.rules.muting import (
    Silence,
    SinkDecision,
    apply_silences,
    decide,
    mute_decisions,
    rule_mute_reason,
    silence_for,
)
from router.rules.time_intervals import compile_time_intervals

INTERVALS = compile_time_intervals(
    {
        "business-hours": [
            {
                "weekdays": ["monday:friday"],
                "times": [{"start_time": "09:00", "end_time": "17:30"}],
                "location": "Europe/London",
            }
        ],
        "christmas": [{"months": ["december"], "days_of_month": ["24:26"]}],
        "weekend": [{"weekdays": ["saturday", "sunday"]}],
        "night": [
            {
                "times": [
                    {"start_time": "00:00", "end_time": "07:00"},
                    {"start_time": "22:00", "end_time": "24:00"},
                ]
            }
        ],
    }
)

TUESDAY_OFFICE = datetime(2026, 12, 22, 10, 0, tzinfo=UTC)
TUESDAY_EVENING = datetime(2026, 12, 22, 19, 0, tzinfo=UTC)
CHRISTMAS_EVE_OFFICE = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)  # a Thursday
SATURDAY_NOON = datetime(2026, 12, 19, 12, 0, tzinfo=UTC)

FAILED = {"id": "call-1", "status": "FAILED", "direction": "OUTBOUND", "sipTrunkId": "trunk-a"}


def rule(
    name: str,
    to: list[str],
    when: dict[str, Any] | None = None,
    *,
    active: tuple[str, ...] = (),
    muted: tuple[str, ...] = (),
    stop: bool = False,
) -> CompiledRule:
    return CompiledRule(
        name, compile_when(when), tuple(to), stop, active_during=active, muted_during=muted
    )


def outcome(decisions: dict[str, SinkDecision]) -> dict[str, tuple[str, str | None]]:
    return {sink: (d.rule.name, d.muted_reason) for sink, d in decisions.items()}


def decide_at(rules: list[CompiledRule], instant: datetime) -> dict[str, tuple[str, str | None]]:
    return outcome(decide(route(tuple(rules), FAILED), INTERVALS, instant))


# -- one rule -------------------------------------------------------------------------------


def test_a_rule_without_intervals_is_never_muted() -> None:
    rules = [rule("all", ["console"])]
    assert decide_at(rules, SATURDAY_NOON) == {"console": ("all", None)}


def test_active_during_mutes_outside_and_sends_inside() -> None:
    rules = [rule("office", ["slack"], active=("business-hours",))]
    assert decide_at(rules, TUESDAY_OFFICE) == {"slack": ("office", None)}
    assert decide_at(rules, TUESDAY_EVENING) == {
        "slack": ("office", "time_interval:business-hours")
    }


def test_muted_during_mutes_inside_only() -> None:
    rules = [rule("quiet-xmas", ["slack"], muted=("christmas",))]
    assert decide_at(rules, CHRISTMAS_EVE_OFFICE) == {
        "slack": ("quiet-xmas", "time_interval:christmas")
    }
    assert decide_at(rules, TUESDAY_OFFICE) == {"slack": ("quiet-xmas", None)}


def test_active_during_and_muted_during_together() -> None:
    rules = [rule("office", ["slack"], active=("business-hours",), muted=("christmas",))]
    assert decide_at(rules, TUESDAY_OFFICE) == {"slack": ("office", None)}
    # Inside business hours but on Christmas Eve: muted by christmas.
    christmas = {"slack": ("office", "time_interval:christmas")}
    assert decide_at(rules, CHRISTMAS_EVE_OFFICE) == christmas
    # Outside business hours and on Christmas Day: muted_during is named first.
    christmas_night = datetime(2026, 12, 25, 23, 0, tzinfo=UTC)
    assert decide_at(rules, christmas_night) == {"slack": ("office", "time_interval:christmas")}
    assert decide_at(rules, TUESDAY_EVENING) == {
        "slack": ("office", "time_interval:business-hours")
    }


def test_several_active_intervals_any_one_keeps_the_rule_live_the_first_names_the_mute() -> None:
    rules = [rule("watch", ["pager"], active=("night", "weekend"))]
    assert decide_at(rules, SATURDAY_NOON) == {"pager": ("watch", None)}
    assert decide_at(rules, datetime(2026, 12, 22, 23, 0, tzinfo=UTC)) == {"pager": ("watch", None)}
    assert decide_at(rules, TUESDAY_OFFICE) == {"pager": ("watch", "time_interval:night")}


def test_several_muted_intervals_the_first_that_holds_names_the_mute() -> None:
    rules = [rule("quiet", ["pager"], muted=("night", "weekend", "christmas"))]
    saturday_night = datetime(2026, 12, 19, 23, 0, tzinfo=UTC)
    assert decide_at(rules, saturday_night) == {"pager": ("quiet", "time_interval:night")}
    assert decide_at(rules, SATURDAY_NOON) == {"pager": ("quiet", "time_interval:weekend")}
    assert decide_at(rules, CHRISTMAS_EVE_OFFICE) == {"pager": ("quiet", "time_interval:christmas")}


# -- several rules to one sink ----------------------------------------------------------------


def test_a_sink_is_still_sent_through_another_unmuted_rule_which_is_recorded() -> None:
    rules = [
        rule("office", ["slack", "crm"], {"status": "FAILED"}, active=("business-hours",)),
        rule("all-to-slack", ["slack"]),
    ]
    assert decide_at(rules, TUESDAY_EVENING) == {
        "slack": ("all-to-slack", None),
        "crm": ("office", "time_interval:business-hours"),
    }
    assert decide_at(rules, TUESDAY_OFFICE) == {"slack": ("office", None), "crm": ("office", None)}


def test_when_every_rule_to_a_sink_is_muted_the_first_rules_reason_is_recorded() -> None:
    rules = [
        rule("office", ["slack"], active=("business-hours",)),
        rule("not-at-christmas", ["slack"], muted=("christmas",)),
    ]
    christmas_evening = datetime(2026, 12, 24, 20, 0, tzinfo=UTC)
    assert decide_at(rules, christmas_evening) == {
        "slack": ("office", "time_interval:business-hours")
    }


def test_a_rule_that_does_not_match_cannot_unmute_a_sink() -> None:
    rules = [
        rule("office", ["slack"], active=("business-hours",)),
        rule("completed", ["slack"], {"status": "COMPLETED"}),
    ]
    assert decide_at(rules, TUESDAY_EVENING) == {
        "slack": ("office", "time_interval:business-hours")
    }


def test_stop_ends_the_rules_that_can_unmute_a_sink() -> None:
    rules = [
        rule("office-only", ["slack"], active=("business-hours",), stop=True),
        rule("all", ["slack", "console"]),
    ]
    assert decide_at(rules, TUESDAY_EVENING) == {
        "slack": ("office-only", "time_interval:business-hours")
    }
    assert decide_at(rules, TUESDAY_OFFICE) == {"slack": ("office-only", None)}


def test_the_order_of_sinks_follows_routing() -> None:
    rules = [rule("a", ["x", "y"], active=("night",)), rule("b", ["z", "x"])]
    decisions = decide(route(tuple(rules), FAILED), INTERVALS, TUESDAY_OFFICE)
    assert list(decisions) == ["x", "y", "z"]
    assert outcome(decisions) == {
        "x": ("b", None),
        "y": ("a", "time_interval:night"),
        "z": ("b", None),
    }


def test_no_matching_rule_decides_nothing() -> None:
    rules = [rule("completed", ["slack"], {"status": "COMPLETED"}, active=("night",))]
    assert decide_at(rules, TUESDAY_OFFICE) == {}


def test_an_instant_without_a_zone_is_refused() -> None:
    rules = (rule("office", ["slack"], active=("business-hours",)),)
    with pytest.raises(ValueError, match="time zone"):
        decide(route(rules, FAILED), INTERVALS, datetime(2026, 12, 22, 10))


def test_rule_mute_reason_for_one_rule() -> None:
    office = rule("office", ["slack"], active=("business-hours",))
    assert rule_mute_reason(office, INTERVALS, TUESDAY_OFFICE) is None
    assert rule_mute_reason(office, INTERVALS, SATURDAY_NOON) == "time_interval:business-hours"


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
            st.sampled_from([(), ("night",), ("weekend",), ("business-hours",)]),
            st.sampled_from([(), ("night",), ("christmas",)]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
)
def test_a_sink_is_muted_exactly_when_every_rule_routing_to_it_is_muted(
    specs: list[tuple[list[str], tuple[str, ...], tuple[str, ...]]], instant: datetime
) -> None:
    rules = [
        rule(f"r{index}", sinks, active=active, muted=muted)
        for index, (sinks, active, muted) in enumerate(specs)
    ]
    decisions = decide(route(tuple(rules), FAILED), INTERVALS, instant)
    for sink, decision in decisions.items():
        to_sink = [r for r in rules if sink in r.to]
        live = [r for r in to_sink if rule_mute_reason(r, INTERVALS, instant) is None]
        if live:
            assert decision == SinkDecision(sink, live[0])
        else:
            reason = rule_mute_reason(to_sink[0], INTERVALS, instant)
            assert decision == SinkDecision(sink, to_sink[0], reason)
    assert set(decisions) == {sink for r in rules for sink in r.to}


# -- silences ---------------------------------------------------------------------------------

START = datetime(2026, 12, 22, 9, 0, tzinfo=UTC)


def silence(
    silence_id: str,
    when: dict[str, Any] | None,
    sinks: set[str] | None = None,
    *,
    hours: int = 2,
) -> Silence:
    sink_set = frozenset(sinks) if sinks is not None else None
    return Silence(silence_id, compile_when(when), sink_set, START, START + timedelta(hours=hours))


def sent_everywhere() -> dict[str, SinkDecision]:
    rules = (rule("failed", ["slack", "crm"], {"status": "FAILED"}),)
    return decide(route(rules, FAILED), INTERVALS, TUESDAY_OFFICE)


def test_a_silence_mutes_matching_calls_on_every_sink_when_none_listed() -> None:
    trunk = silence("sil-1", {"status": "FAILED", "sipTrunkId": "trunk-a"})
    decided = apply_silences(sent_everywhere(), [trunk], FAILED, TUESDAY_OFFICE)
    assert outcome(decided) == {
        "slack": ("failed", "silence:sil-1"),
        "crm": ("failed", "silence:sil-1"),
    }


def test_a_silence_on_listed_sinks_leaves_the_others() -> None:
    only_slack = silence("sil-2", {"status": "FAILED"}, {"slack"})
    decided = apply_silences(sent_everywhere(), [only_slack], FAILED, TUESDAY_OFFICE)
    assert outcome(decided) == {"slack": ("failed", "silence:sil-2"), "crm": ("failed", None)}


def test_a_silence_whose_condition_does_not_hold_mutes_nothing() -> None:
    other_trunk = silence("sil-3", {"sipTrunkId": "trunk-b"})
    decided = apply_silences(sent_everywhere(), [other_trunk], FAILED, TUESDAY_OFFICE)
    assert outcome(decided) == {"slack": ("failed", None), "crm": ("failed", None)}


def test_a_silence_holds_from_its_start_until_before_its_end() -> None:
    window = silence("sil-4", None, hours=1)
    assert not window.active_at(START - timedelta(microseconds=1))
    assert window.active_at(START)
    assert window.active_at(START + timedelta(minutes=59, seconds=59))
    assert not window.active_at(START + timedelta(hours=1))
    before = apply_silences(sent_everywhere(), [window], FAILED, START - timedelta(seconds=1))
    assert outcome(before) == {"slack": ("failed", None), "crm": ("failed", None)}


def test_the_first_active_matching_silence_names_the_mute() -> None:
    expired = Silence("old", compile_when(None), None, START - timedelta(days=1), START)
    not_slack = silence("crm-only", None, {"crm"})
    everything = silence("all", None)
    silences = [expired, not_slack, everything]
    assert silence_for(silences, FAILED, "slack", TUESDAY_OFFICE) is everything
    assert silence_for(silences, FAILED, "crm", TUESDAY_OFFICE) is not_slack
    assert silence_for(silences, FAILED, "crm", START - timedelta(hours=1)) is expired
    assert silence_for([], FAILED, "crm", TUESDAY_OFFICE) is None


def test_a_delivery_muted_by_a_time_interval_keeps_that_reason() -> None:
    rules = (rule("office", ["slack"], active=("business-hours",)), rule("all", ["console"]))
    decided = mute_decisions(
        route(rules, FAILED), INTERVALS, TUESDAY_EVENING, FAILED, [silence("sil-5", None, hours=12)]
    )
    assert outcome(decided) == {
        "slack": ("office", "time_interval:business-hours"),
        "console": ("all", "silence:sil-5"),
    }


def test_without_silences_mute_decisions_is_the_time_interval_decision() -> None:
    rules = (rule("office", ["slack"], active=("business-hours",)),)
    routed = route(rules, FAILED)
    assert mute_decisions(routed, INTERVALS, TUESDAY_EVENING, FAILED) == decide(
        routed, INTERVALS, TUESDAY_EVENING
    )


def test_a_silence_without_time_zones_is_refused() -> None:
    with pytest.raises(ValueError, match="sil-6: starts_at and ends_at need a time zone"):
        Silence("sil-6", compile_when(None), None, datetime(2026, 1, 1), START)
