"""`escalate: {after, to}` in rules.yaml (DESIGN.md section 16): compiled onto the rule;
`check` errors, at FILE:LINE:COL, on an escalation to an undefined sink, on a cycle (a
sink the rule already routes to) and on a bad `after`."""

from __future__ import annotations

import pytest

from router.config.schema import ConfigError, parse_config
from router.rules import EscalateSpec

HEAD = """version: 1
sinks:
  ops: {type: log, path: /dev/null}
  oncall: {type: log, path: /dev/null}
rules:
"""


def errors_of(rules: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + rules, "rules.yaml", environ={})
    return [str(error) for error in caught.value.errors]


def test_an_escalation_is_compiled_onto_its_rule() -> None:
    config = parse_config(
        HEAD
        + """  - name: failed
    to: ops
    escalate: {after: 15m, to: oncall}
  - name: quiet
    to: ops
""",
        "rules.yaml",
        environ={},
    )
    failed, quiet = config.rules
    assert failed.escalate == EscalateSpec(900.0, ("oncall",))
    assert quiet.escalate is None


def test_an_escalation_to_an_undefined_sink_is_an_error_at_its_place() -> None:
    assert errors_of(
        """  - name: failed
    to: [ops]
    escalate:
      after: 15m
      to: [oncall, pager]
"""
    ) == [
        "rules.yaml:10:20: rule 'failed' escalates to undefined sink 'pager' (sinks: ops, oncall)"
    ]


def test_escalating_to_a_sink_the_rule_routes_to_is_a_cycle() -> None:
    assert errors_of(
        """  - name: failed
    to: [ops, oncall]
    escalate: {after: 15m, to: [ops]}
"""
    ) == [
        "rules.yaml:8:33: rule 'failed': escalation cycle: it escalates to 'ops', which it"
        " already routes to (escalate to a sink outside the rule's `to`)"
    ]


@pytest.mark.parametrize(
    ("escalate", "expected"),
    [
        ("{after: 0s, to: [oncall]}", "after must be longer than 0s"),
        ("{after: soon, to: [oncall]}", "escalate.after"),
        ("{to: [oncall]}", "escalate.after: required setting is missing"),
        ("{after: 5m, to: []}", "escalate.to"),
        ("{after: 5m, to: [oncall], then: ops}", "unknown key 'then'"),
    ],
)
def test_a_bad_escalation_is_an_error(escalate: str, expected: str) -> None:
    found = errors_of(f"  - name: failed\n    to: [ops]\n    escalate: {escalate}\n")
    assert len(found) == 1 and found[0].startswith("rules.yaml:8:"), found
    assert expected in found[0]
