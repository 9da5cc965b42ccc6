"""Deciding, per sink, whether a routed call is sent or muted. Pure: no I/O.

Two steps, following DESIGN.md sections 6 and 9:

1. `decide` (time intervals). A rule is muted for a call received at an instant inside
   one of its `muted_during` intervals, or outside all of its `active_during` ones.
   A sink is sent the call when any matching rule routing to it is unmuted; the first
   such rule is recorded. When every rule routing to it is muted, the delivery is muted
   with the reason of the first rule routing to it: `time_interval:NAME`, NAME being the
   first `muted_during` interval containing the instant, else (outside every
   `active_during` interval) the first `active_during` name. `muted_during` is looked at
   first, the way Alertmanager applies mute before active intervals.
2. `apply_silences` (silences). A delivery still to be sent is muted with the reason
   `silence:ID` by the first active silence (in the order given) whose condition holds
   on the call and which covers the sink (no sinks listed: every sink). A delivery
   already muted by a time interval keeps that reason. `silence_for` answers the same
   question for one delivery, for the check made again just before a send.

The rules considered are `Route.matched`, so a `stop: true` rule ends them as it ends
routing: a later rule cannot unmute a sink.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from router.rules.matching import CompiledRule, Condition, Route
from router.rules.time_intervals import TimeInterval

TIME_INTERVAL_REASON = "time_interval:"
SILENCE_REASON = "silence:"


@dataclass(frozen=True)
class SinkDecision:
    """What happens to one sink's delivery of a call: sent, or recorded as muted.

    `rule` is the rule recorded on the delivery: the first unmuted matching rule
    routing to the sink, or, when all are muted, the first matching rule routing to it.
    """

    sink: str
    rule: CompiledRule
    muted_reason: str | None = None

    @property
    def muted(self) -> bool:
        return self.muted_reason is not None


@dataclass(frozen=True)
class Silence:
    """An operator's silence: mutes calls matching `condition` between `starts_at`
    (included) and `ends_at` (excluded), for the listed sinks or, None, for all."""

    id: str
    condition: Condition
    sinks: frozenset[str] | None
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError(f"silence {self.id}: starts_at and ends_at need a time zone")

    def active_at(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at

    def covers(self, sink: str) -> bool:
        return self.sinks is None or sink in self.sinks

    @property
    def reason(self) -> str:
        return f"{SILENCE_REASON}{self.id}"


class _IntervalClock:
    """Whether each named interval contains one instant, each looked up at most once."""

    def __init__(self, intervals: Mapping[str, TimeInterval], instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("an instant needs a time zone")
        self.intervals = intervals
        self.instant = instant
        self.seen: dict[str, bool] = {}

    def contains(self, name: str) -> bool:
        inside = self.seen.get(name)
        if inside is None:
            # A name the config does not define (check refuses it) contains nothing.
            interval = self.intervals.get(name)
            inside = interval is not None and interval.contains(self.instant)
            self.seen[name] = inside
        return inside


def _rule_mute_reason(rule: CompiledRule, clock: _IntervalClock) -> str | None:
    for name in rule.muted_during:
        if clock.contains(name):
            return f"{TIME_INTERVAL_REASON}{name}"
    if rule.active_during and not any(clock.contains(name) for name in rule.active_during):
        return f"{TIME_INTERVAL_REASON}{rule.active_during[0]}"
    return None


def rule_mute_reason(
    rule: CompiledRule, intervals: Mapping[str, TimeInterval], instant: datetime
) -> str | None:
    """Why `rule` is muted at `instant` (`time_interval:NAME`), or None when it is live."""
    return _rule_mute_reason(rule, _IntervalClock(intervals, instant))


def decide(
    routed: Route, intervals: Mapping[str, TimeInterval], instant: datetime
) -> dict[str, SinkDecision]:
    """Per sink of `routed.deliveries` (same order), send or muted by a time interval."""
    if not any(rule.active_during or rule.muted_during for rule in routed.matched):
        return {sink: SinkDecision(sink, rule) for sink, rule in routed.deliveries.items()}
    clock = _IntervalClock(intervals, instant)
    reasons = {id(rule): _rule_mute_reason(rule, clock) for rule in routed.matched}
    decisions = {}
    for sink, first_rule in routed.deliveries.items():
        if reasons[id(first_rule)] is None:
            decisions[sink] = SinkDecision(sink, first_rule)
            continue
        live = next(
            (rule for rule in _rules_to(routed.matched, sink) if reasons[id(rule)] is None),
            None,
        )
        if live is not None:
            decisions[sink] = SinkDecision(sink, live)
        else:
            decisions[sink] = SinkDecision(sink, first_rule, reasons[id(first_rule)])
    return decisions


def _rules_to(rules: Sequence[CompiledRule], sink: str) -> Iterable[CompiledRule]:
    return (rule for rule in rules if sink in rule.to)


def silence_for(
    silences: Iterable[Silence], event: Mapping[str, Any], sink: str, instant: datetime
) -> Silence | None:
    """The first of `silences` active at `instant` that covers `sink` and matches `event`."""
    for silence in silences:
        if silence.active_at(instant) and silence.covers(sink) and silence.condition(event):
            return silence
    return None


def apply_silences(
    decisions: Mapping[str, SinkDecision],
    silences: Sequence[Silence],
    event: Mapping[str, Any],
    instant: datetime,
) -> dict[str, SinkDecision]:
    """`decisions` with each delivery still to be sent muted by the first silence on it."""
    if not silences:
        return dict(decisions)
    result = {}
    for sink, decision in decisions.items():
        if not decision.muted:
            silence = silence_for(silences, event, sink, instant)
            if silence is not None:
                decision = replace(decision, muted_reason=silence.reason)
        result[sink] = decision
    return result


def mute_decisions(
    routed: Route,
    intervals: Mapping[str, TimeInterval],
    instant: datetime,
    event: Mapping[str, Any],
    silences: Sequence[Silence] = (),
) -> dict[str, SinkDecision]:
    """Both steps: time intervals, then silences."""
    return apply_silences(decide(routed, intervals, instant), silences, event, instant)
