"""The rule index: which rules `route` evaluates for an event, per kind of test it groups.

Each test builds a few rules sharing one field and one operator (enough for the index to
group them), and checks that the candidates for an event are exactly the rules that can
hold there: none that holds is skipped, and the others are not evaluated at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import router.rules.index
from router.rules.matching import CompiledRule, _index_for, compile_when, route

SAMPLE = json.loads((Path(__file__).parents[2] / "samples" / "failed-outbound.json").read_text())


def rules_of(*whens: Any) -> tuple[CompiledRule, ...]:
    return tuple(
        CompiledRule(f"r{i}", compile_when(when), (f"s{i}",)) for i, when in enumerate(whens)
    )


def candidates(rules: tuple[CompiledRule, ...], event: dict[str, Any]) -> list[str]:
    return [rules[position].name for position in _index_for(rules).candidates(event)]


def matching(rules: tuple[CompiledRule, ...], event: dict[str, Any]) -> list[str]:
    assert [r.name for r in route(rules, event).matched] == [
        r.name for r in rules if r.condition(event)
    ]
    return [r.name for r in rules if r.condition(event)]


CASES: list[tuple[str, list[Any], list[tuple[Any, list[str]]]]] = [
    (
        "startswith",
        ["+44", "+4", "", "+441"],
        [("+4420", ["r0", "r1", "r2"]), ("+1", ["r2"]), ("", ["r2"]), (44, []), (None, [])],
    ),
    (
        "regex",
        ["^Agent1$", "gent", "(?i)AVA", ""],
        [("Agent1", ["r0", "r1", "r3"]), ("ava", ["r2", "r3"]), ("", ["r3"]), (["Ava"], [])],
    ),
    (
        "contains",
        ["SIP 5", "503", "SIP", "x"],
        [
            ("SIP 503 from carrier", ["r0", "r1", "r2"]),
            (["SIP", "503", 5], ["r1", "r2"]),
            ("sip", []),
            ({"SIP": 1}, []),
        ],
    ),
    ("lt", [1, 2, 2.0, 3], [(2, ["r3"]), (1.5, ["r1", "r2", "r3"]), (True, []), ("1", [])]),
    ("le", [1, 2, 2.0, 3], [(2, ["r1", "r2", "r3"]), (3.5, []), (float("nan"), [])]),
    ("gt", [1, 2, 2.0, 3], [(2, ["r0"]), (3.5, ["r0", "r1", "r2", "r3"]), (float("nan"), [])]),
    ("ge", [1, 2, 2.0, 3], [(2, ["r0", "r1", "r2"]), (0, []), (False, [])]),
    (
        "ge",
        ["2026-11-20", "2026-11-21", "b", "a"],
        [("2026-11-20T15", ["r0"]), ("b", ["r0", "r1", "r2", "r3"]), (2026, [])],
    ),
    (
        "exists",
        [True, True, True, False],
        [("x", ["r0", "r1", "r2"]), (None, ["r3"]), (0, ["r0", "r1", "r2"])],
    ),
    ("ne", ["a", "b", 1, True], [("a", ["r1", "r2", "r3"]), (1.0, ["r0", "r1", "r3"]), (None, [])]),
]


@pytest.mark.parametrize(("op", "operands", "events"), CASES)
@pytest.mark.parametrize("path", ["f", "n.f"])
def test_the_index_evaluates_only_the_rules_that_can_hold(
    op: str, operands: list[Any], events: list[tuple[Any, list[str]]], path: str
) -> None:
    rules = rules_of(*({path: {op: operand}} for operand in operands))
    for value, expected in events:
        event = {"f": value} if path == "f" else {"n": {"f": value}}
        assert matching(rules, event) == expected, value
        found = candidates(rules, event)
        if op == "ne":  # what the index knows of `ne` is that the field is present
            assert found == ([r.name for r in rules] if value is not None else [])
        else:  # `exists: false` needs nothing: always evaluated
            always = [r.name for r, o in zip(rules, operands, strict=True) if o is False]
            assert found == sorted({*expected, *always})


def test_the_global_bench_mix_evaluates_only_its_matching_rules() -> None:
    shapes = [
        "{{status: FAILED, sipTrunkId: trunk-{i}}}",
        "{{direction: INBOUND, durationSeconds: {{lt: {i}}}}}",
        "{{hangupCause: {{in: [VOICEMAIL_DETECTED, NO_ANSWER, BUSY_{i}]}}}}",
        "{{variables.customer_tier: {{in: [gold, platinum-{i}]}}, status: {{ne: CANCELED}}}}",
        "{{any: [{{status: CANCELED}}, {{errorMessage: {{contains: 'SIP {i}'}}}}]}}",
        "{{agentName: {{regex: '^Agent{i}$'}}}}",
        "{{not: {{organizationId: org_{i}}}, toNumber: {{startswith: '+44'}}}}",
        "{{metrics.latency.p50: {{gt: {i}}}, recordingUrl: {{exists: true}}}}",
    ]
    import yaml

    whens = [yaml.safe_load(shapes[i % 8].format(i=i)) for i in range(400)]
    rules = rules_of(*whens)
    expected = matching(rules, SAMPLE)
    assert len(expected) == 50
    assert candidates(rules, SAMPLE) == expected  # was 200: every rule without an equality
    other = {**SAMPLE, "agentName": "Agent5", "errorMessage": "SIP 12", "toNumber": "+1"}
    other |= {"metrics": {"latency": {"p50": 20}}}
    assert set(matching(rules, other)) <= set(candidates(rules, other))
    assert "r5" in matching(rules, other) and "r12" in matching(rules, other)


def test_when_re2_cannot_answer_every_rule_of_the_set_is_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        router.rules.index, "compile_search_set", lambda patterns, literal: lambda text: None
    )
    rules = rules_of(*({"f": {"regex": pattern}} for pattern in ["a", "b", "c", "d"]))
    assert candidates(rules, {"f": "b"}) == ["r0", "r1", "r2", "r3"]
    assert matching(rules, {"f": "b"}) == ["r1"]


def test_a_group_of_two_is_not_worth_a_probe() -> None:
    rules = rules_of({"f": {"regex": "a"}}, {"f": {"regex": "b"}})
    assert candidates(rules, {"f": "c"}) == ["r0", "r1"]


def test_a_rule_is_skipped_only_when_every_alternative_is_covered() -> None:
    only_regex = [{"g": {"regex": p}} for p in "abc"]
    # The second branch's group (one regex on k) is not probed: the rule is always evaluated.
    either = {"any": [{"g": {"regex": "x"}}, {"k": {"regex": "y"}}]}
    rules = rules_of(*only_regex, either, {"any": [{"g": {"regex": "x"}}, {"not": {"h": 1}}]})
    assert candidates(rules, {"g": "z", "k": "y"}) == ["r3", "r4"]
    assert matching(rules, {"g": "z", "k": "y"}) == ["r3", "r4"]
