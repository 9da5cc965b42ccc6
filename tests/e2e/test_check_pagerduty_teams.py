"""`revring-router check` on pagerduty and teams sinks, as a user runs it: a severity
PagerDuty does not know and a card that does not render an Adaptive Card are refused,
naming the sink, the template's line and the problem; good ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_rules import run

HEAD = "version: 1\nsinks:\n"
ROUTE_ALL = "rules: [{name: all, to: [%s]}]\n"
OK = ": OK (1 rules, 1 sinks)"


def check(tmp_path: Path, sink: str, name: str) -> tuple[int, list[str]]:
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + sink + ROUTE_ALL % name)
    result = run("check", "--config", str(path))
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(path))]
    return result.returncode, [line.removeprefix(str(path)) for line in lines]


PAGERDUTY = """\
  oncall:
    type: pagerduty
    routing_key: R0UTINGKEYsecret0123456789abcdef
    severity: %s
"""


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info", "Critical"])
def test_the_four_pagerduty_severities_pass(tmp_path: Path, severity: str) -> None:
    code, lines = check(tmp_path, PAGERDUTY % severity, "oncall")
    assert (code, lines) == (0, [OK])


def test_an_unknown_severity_is_refused_at_its_line(tmp_path: Path) -> None:
    code, [line] = check(tmp_path, PAGERDUTY % "fatal", "oncall")
    assert code == 1
    assert line == (
        ":6:15: error: sinks.oncall.severity: 'fatal' is not a PagerDuty severity "
        "(critical, error, warning or info)"
    )


def test_a_severity_template_rendering_an_unknown_value_is_refused(tmp_path: Path) -> None:
    sink = PAGERDUTY % '"{{ variables.customer_tier }}"'
    code, [line, *warnings] = check(tmp_path, sink, "oncall")
    assert code == 1
    assert line == (
        ":6:15: error: sink 'oncall': severity: 'gold' is not a PagerDuty severity "
        "(critical, error, warning or info) (rendered with the sample call 'completed-inbound')"
    )
    assert warnings == [], "a template that cannot render is not tried again"


def test_a_severity_template_rendering_a_known_value_passes(tmp_path: Path) -> None:
    sink = PAGERDUTY % "\"{{ 'critical' if status == 'FAILED' else 'info' }}\""
    assert check(tmp_path, sink, "oncall") == (0, [OK])


TEAMS = """\
  ops-teams:
    type: teams
    webhook_url: https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=SECRETSIG
    card: '%s'
"""


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        ('{"type": "AdaptiveCard", "body": [{{ summary }}]', "did not render valid JSON"),
        ("[{{ summary }}]", 'must render a JSON object with "type": "AdaptiveCard"'),
    ],
)
def test_a_card_that_does_not_render_a_card_is_refused(
    tmp_path: Path, card: str, problem: str
) -> None:
    code, [line] = check(tmp_path, TEAMS % card, "ops-teams")
    assert code == 1
    assert line.startswith(":6:11: error: sink 'ops-teams': card: ")  # at the template
    assert problem in line and line.endswith("(rendered with the sample call 'completed-inbound')")
    assert "SECRETSIG" not in line


def test_a_card_template_that_renders_a_card_passes(tmp_path: Path) -> None:
    card = (
        '{"type": "AdaptiveCard", "version": "1.4",'
        ' "body": [{"type": "TextBlock", "text": {{ summary }}}]}'
    )
    assert check(tmp_path, TEAMS % card, "ops-teams") == (0, [OK])


def test_a_card_is_checked_as_each_rule_routing_to_it_renders_it(tmp_path: Path) -> None:
    card = '{"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "{{ calls[0].id }}"}]}'
    grouped = "  - {name: by-trunk, to: [ops-teams], group: {by: [sipTrunkId], window: 1m}}\n"
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + TEAMS % card + "rules:\n" + grouped)
    digest_only = run("check", "--config", str(path))
    assert digest_only.returncode == 0, digest_only.stdout

    path.write_text(
        HEAD + TEAMS % card + "rules:\n" + grouped + "  - {name: one, to: [ops-teams]}\n"
    )
    both = run("check", "--config", str(path))
    assert both.returncode == 0, "a value missing renders empty: a warning"
    assert (
        "warning: sink 'ops-teams': card: calls.0.id is given to a digest only (a grouped"
        " rule's delivery), and rule 'one' sends single calls here: it renders empty there"
    ) in both.stdout


def test_a_card_naming_a_field_the_call_lacks_is_a_warning(tmp_path: Path) -> None:
    card = '{"type": "AdaptiveCard", "body": [{{ nosuchfield.x }}]}'
    code, lines = check(tmp_path, TEAMS % card, "ops-teams")
    assert code == 0
    assert lines == [
        ":6:11: warning: sink 'ops-teams': card: 'nosuchfield' is not a field of RevRing's"
        " post-call event",
        OK,
    ]
