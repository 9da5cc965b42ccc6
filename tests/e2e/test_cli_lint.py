"""`check` as a linter and `route --explain` / `--json` / `--render`, as a new user runs
them: a typo in a rule is a warning with a suggestion, `--strict` fails on it (CI), a
comparison that cannot hold is an error, and `route` says why a rule did not match."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli_rules import ROOT, SAMPLES, run

TYPO = """\
version: 1
sinks:
  console: {type: log}
  crm:
    type: http
    url: https://crm.example.com/calls
    body: '{"tier": {{ variables.customer_tier }}, "label": "{{ variables.customer_tier }}"}'
rules:
  - name: failed
    when: {staus: FAILED}
    to: [console]
  - name: voicemail
    when: {hangupCause: VOICEMAIL_DETECTED}
    to: [console]
  - name: everything
    to: [crm]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_a_typo_is_a_warning_with_a_suggestion_and_strict_fails_on_it(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO)
    result = run("check", "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"{path}:10:12: warning: rule 'failed': 'staus' is not a field of RevRing's"
        " post-call event (did you mean 'status'?)"
    ) in result.stdout.splitlines()
    assert (
        f"{path}:7:11: warning: sink 'crm': body: variables.customer_tier is missing from"
        " sample minimal-canceled and a sparse call (only the required fields)"
    ) in result.stdout
    assert result.stdout.rstrip().endswith("OK (3 rules, 2 sinks)")

    strict = run("check", "--strict", "--config", str(path))
    assert strict.returncode == 1
    assert strict.stdout.splitlines() == result.stdout.splitlines()[:-1]
    assert "2 warnings (--strict: they count as errors)" in strict.stderr


def test_a_comparison_that_cannot_hold_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO.replace("{staus: FAILED}", "{durationSeconds: {lt: ten}}"))
    result = run("check", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:10:34: error: rule 'failed': durationSeconds is a whole number, so lt 'ten'"
        " (a string) never holds"
    ]


def test_the_shipped_rules_pass_strict_once_configured() -> None:
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T/B/XYZ",
        "SMTP_HOST": "smtp.example.com",
        "CRM_URL": "https://crm.example.com/api/calls",
        "PAGERDUTY_ROUTING_KEY": "pd-routing-key-value",
        "TEAMS_WEBHOOK_URL": "https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=x",
    }
    result = run("check", "--strict", "--config", str(ROOT / "rules.yaml"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_route_explain_says_why_each_rule_did_not_match(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO)
    result = run(
        "route", str(SAMPLES / "completed-inbound.json"), "--explain", "--config", str(path)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("rules that did not match:")
    assert lines[start + 1 : start + 3] == [
        "  failed: staus is missing, wanted 'FAILED'",
        "  voicemail: hangupCause is 'USER_ENDED', wanted 'VOICEMAIL_DETECTED'",
    ]


def test_route_json_is_one_document_of_rules_and_sinks(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO)
    result = run("route", str(SAMPLES / "voicemail-outbound.json"), "--json", "--config", str(path))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["rules"] == [
        {"name": "failed", "matched": False, "failed": "staus is missing, wanted 'FAILED'"},
        {"name": "voicemail", "matched": True, "failed": None},
        {"name": "everything", "matched": True, "failed": None},
    ]
    assert [(s["name"], s["outcome"], s["muted_reason"]) for s in document["sinks"]] == [
        ("console", "send", None),
        ("crm", "send", None),
    ]


def test_route_render_shows_a_call_lacking_a_value_as_sent_with_it_empty(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO)
    result = run("route", str(SAMPLES / "minimal-canceled.json"), "--render", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "  crm (type http, rule everything): send" in result.stdout
    assert "cannot render" not in result.stdout
    assert '"tier": null' in result.stdout and '"label": ""' in result.stdout
    assert "(this call lacks variables.customer_tier: rendered empty)" in result.stdout
    assert "warning: rule 'failed': 'staus' is not a field" in result.stdout


def test_route_render_names_a_sink_that_cannot_render_once(tmp_path: Path) -> None:
    path = write(tmp_path, TYPO.replace("{{ variables.customer_tier }},", "{{ status + 1 }},"))
    result = run(
        "route", str(SAMPLES / "completed-inbound.json"), "--render", "--config", str(path)
    )
    assert result.returncode == 0, result.stderr
    [listed] = [line for line in result.stdout.splitlines() if line.startswith("  crm ")]
    assert listed == (
        "  crm (type http, rule everything): cannot render: it would go dead on its first"
        " attempt (see below)"
    )
    assert ": send" not in listed
    assert "cannot render: body: template failed: TypeError" in result.stdout


def test_route_json_says_which_rules_a_stop_kept_from_being_tried(tmp_path: Path) -> None:
    stopping = TYPO.replace(
        "  - name: voicemail\n    when: {hangupCause: VOICEMAIL_DETECTED}\n",
        "  - name: voicemail\n    when: {hangupCause: VOICEMAIL_DETECTED}\n    stop: true\n",
    )
    path = write(tmp_path, stopping)
    result = run("route", str(SAMPLES / "voicemail-outbound.json"), "--json", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rules"][2] == {
        "name": "everything",
        "matched": False,
        "failed": "not tried: rule 'voicemail' matched first and has stop: true",
    }
