"""Matching calls against rules, pure: conditions compiled once (`compile_when`), the
index of what each rule needs, RE2 regexes, time intervals, and the muting decisions."""

from __future__ import annotations

from router.rules.matching import (
    MAX_WHEN_DEPTH,
    CompiledRule,
    Condition,
    ConditionErrors,
    GroupSpec,
    compile_when,
    group_key,
    group_key_json,
    route,
)
from router.rules.muting import Silence, mute_decisions
from router.rules.time_intervals import IntervalErrors, TimeInterval, compile_time_intervals

__all__ = [
    "MAX_WHEN_DEPTH",
    "CompiledRule",
    "Condition",
    "ConditionErrors",
    "GroupSpec",
    "IntervalErrors",
    "Silence",
    "TimeInterval",
    "compile_time_intervals",
    "compile_when",
    "group_key",
    "group_key_json",
    "mute_decisions",
    "route",
]
