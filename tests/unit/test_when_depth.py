"""A `when` (of a rule or a silence) nests at most 64 levels: compiling and matching
recurse once per level, so a deeper one is an error naming the problem, never a
RecursionError; rules.yaml nested too deep even to read is an error of its own."""

from __future__ import annotations

from typing import Any

import pytest

from router.config.schema import ConfigError, parse_config
from router.operators.silences import RequestInvalid, parse_silence_request
from router.rules.matching import ConditionErrors, compile_when

HEAD = """version: 1
sinks:
  console: {type: log}
rules:
"""


def nots(levels: int) -> dict[str, Any]:
    when: dict[str, Any] = {"status": "FAILED"}
    for _ in range(levels - 1):
        when = {"not": when}
    return when


def anys(levels: int) -> dict[str, Any]:
    """`levels` (odd) levels: each `any` adds a mapping and a list."""
    when: dict[str, Any] = {"status": "FAILED"}
    for _ in range((levels - 1) // 2):
        when = {"any": [when]}
    return when


@pytest.mark.parametrize(
    ("when", "failed_matches"), [(nots(64), False), (nots(63), True), (anys(63), True)]
)
def test_a_when_up_to_64_levels_deep_compiles_and_matches(
    when: dict[str, Any], failed_matches: bool
) -> None:
    condition = compile_when(when)
    assert condition({"status": "FAILED"}) is failed_matches
    assert condition({"status": "COMPLETED"}) is not failed_matches


@pytest.mark.parametrize("when", [nots(65), anys(65), nots(170), anys(401), nots(5000)])
def test_a_deeper_when_is_an_error_naming_the_problem(when: dict[str, Any]) -> None:
    with pytest.raises(ConditionErrors) as caught:
        compile_when(when)
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ((), "nested deeper than 64 levels")
    ]


def test_a_silence_whose_when_is_too_deep_is_refused_naming_it() -> None:
    body = {"when": nots(170), "for": "1h"}
    with pytest.raises(RequestInvalid) as caught:
        parse_silence_request(body, now=1_800_000_000.0, known_sinks=())
    assert caught.value.errors == ["when: nested deeper than 64 levels"]


def yaml_when(levels: int) -> str:
    text = "{status: FAILED}"
    for _ in range(levels - 1):
        text = "{not: " + text + "}"
    return f"  - name: deep\n    when: {text}\n    to: [console]\n"


def test_a_rule_whose_when_is_too_deep_is_a_located_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + yaml_when(400), "rules.yaml", environ={})
    assert [str(e) for e in caught.value.errors] == [
        "rules.yaml:6:11: rule 'deep': nested deeper than 64 levels"
    ]


def test_rules_yaml_nested_too_deep_to_read_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + yaml_when(5000), "rules.yaml", environ={})
    assert [str(e) for e in caught.value.errors] == [
        "rules.yaml:1:1: invalid YAML: nested too deep"
    ]
