"""Matching calls against rules, pure: conditions compiled once (`compile_when`) and
checked against the call's schema (`lint_when`), the index of what each rule needs, RE2
regexes, time intervals, and the muting decisions."""

from __future__ import annotations

from router.rules.lint import WhenFinding, lint_when
from router.rules.matching import (
    MAX_WHEN_DEPTH,
    CompiledRule,
    Condition,
    ConditionErrors,
    EscalateSpec,
    GroupSpec,
    compile_when,
    explain,
    group_key,
    group_key_json,
    route,
)
from router.rules.muting import Silence, mute_decisions, rule_mute_reason
from router.rules.time_intervals import IntervalErrors, TimeInterval, compile_time_intervals

__all__ = [
    "MAX_WHEN_DEPTH",
    "CompiledRule",
    "Condition",
    "ConditionErrors",
    "EscalateSpec",
    "GroupSpec",
    "IntervalErrors",
    "Silence",
    "TimeInterval",
    "WhenFinding",
    "compile_time_intervals",
    "compile_when",
    "explain",
    "group_key",
    "group_key_json",
    "lint_when",
    "mute_decisions",
    "route",
    "rule_mute_reason",
]
