"""rules.yaml `when:` blocks through `parse_config`: compiled at load, errors located."""

from __future__ import annotations

import pytest

from router.config.schema import ConfigError, parse_config
from router.rules.matching import route

HEAD = """version: 1
sinks:
  console: {type: log}
rules:
"""


def config_errors(rules_text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + rules_text, "rules.yaml", environ={})
    return [str(error) for error in caught.value.errors]


def test_bad_operator_is_reported_at_its_line_and_column() -> None:
    errors = config_errors(
        """  - name: failed
    when:
      status: {equals: FAILED}
    to: [console]
"""
    )
    assert len(errors) == 1
    assert errors[0].startswith("rules.yaml:7:16: rule 'failed': status: unknown operator 'equals'")
    assert "did you mean 'eq'" in errors[0]


def test_invalid_regex_is_reported_at_the_pattern() -> None:
    errors = config_errors(
        """  - name: voicemail
    when:
      hangupCause:
        regex: "VOICE(MAIL"
    to: [console]
"""
    )
    assert len(errors) == 1
    assert errors[0].startswith(
        "rules.yaml:8:16: rule 'voicemail': hangupCause: invalid regex 'VOICE(MAIL'"
    )


def test_every_when_error_of_every_rule_is_reported_in_file_order() -> None:
    errors = config_errors(
        """  - name: first
    when:
      any:
        - status: FAILED
        - summary: {regex: "[a-"}
      durationSeconds: {lt: [10]}
    to: [console]
  - name: second
    when: {not: {direction: {in: INBOUND}}, variables.tier: {exists: maybe}}
    to: [console]
"""
    )
    assert [error.split(": ", 1)[0] for error in errors] == [
        "rules.yaml:9:28",
        "rules.yaml:10:29",
        "rules.yaml:13:34",
        "rules.yaml:13:70",
    ]
    assert "rule 'first': summary: invalid regex" in errors[0]
    assert "rule 'first': durationSeconds: lt needs a number or a string" in errors[1]
    assert "rule 'second': direction: in needs a list" in errors[2]
    assert "rule 'second': variables.tier: exists needs true or false" in errors[3]


def test_a_valid_when_is_compiled_and_routes() -> None:
    config = parse_config(
        HEAD
        + """  - name: short-inbound
    when:
      direction: INBOUND
      durationSeconds: {lt: 10}
    to: [console]
  - name: everything
    to: console
""",
        "rules.yaml",
        environ={},
    )
    short = {"direction": "INBOUND", "durationSeconds": 4}
    assert [rule.name for rule in route(config.rules, short).matched] == [
        "short-inbound",
        "everything",
    ]
    long = {"direction": "INBOUND", "durationSeconds": 40}
    assert [rule.name for rule in route(config.rules, long).matched] == ["everything"]
