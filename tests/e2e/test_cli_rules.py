"""`revring-router check` and `route` as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import fresh_event

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    prefixes = ("SLACK_", "SMTP_", "CRM_", "PAGERDUTY_", "TEAMS_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_accepts_the_shipped_rules_and_warns_about_unconfigured_sinks():
    result = run("check", "--config", str(ROOT / "rules.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (4 rules, 6 sinks)" in result.stdout
    assert "warning: sink 'ops-slack' is not configured" in result.stdout
    assert "warning: sink 'oncall' is not configured (routing_key is empty)" in result.stdout
    assert "warning: sink 'ops-teams' is not configured (webhook_url is empty)" in result.stdout


def test_check_is_quiet_about_sinks_once_their_variables_are_set():
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T/B/XYZ",
        "SMTP_HOST": "smtp.example.com",
        "CRM_URL": "https://crm.example.com/api/calls",
        "CRM_TOKEN": "crm-token-value",
        "PAGERDUTY_ROUTING_KEY": "pd-routing-key-value",
        "TEAMS_WEBHOOK_URL": "https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=x",
    }
    result = run("check", "--config", str(ROOT / "rules.yaml"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout
    assert "crm-token-value" not in result.stdout + result.stderr
    assert "pd-routing-key-value" not in result.stdout + result.stderr


BROKEN = """\
version: 1
sinks:
  slack:
    type: slack
    webhook_url: ${UNSET_WEBHOOK_VARIABLE}
    colour: red
  mail:
    type: email
    to: [a@example.com]
    port: many
rules:
  - name: failed
    when: {status: {equals: FAILED}}
    to: [slack]
  - name: failed
    when: {summary: {regex: "(unclosed"}}
    to: [nowhere]
  - name: templated
    to: [slack]
    stop: maybe
"""


def test_check_reports_every_problem_at_its_line(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BROKEN)
    result = run("check", "--config", str(path))
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(path))]
    located = {int(line.split(":")[1]): line for line in lines}
    assert "UNSET_WEBHOOK_VARIABLE" in located[5]
    assert "colour" in located[6]
    assert "from" in located[7]
    assert "port" in located[10]
    assert "equals" in located[13] and ":13:21:" in located[13]
    assert "duplicate rule name 'failed'" in located[15]
    assert "regex" in located[16] or "(unclosed" in located[16]
    assert "nowhere" in located[17]
    assert "stop" in located[20]


def test_route_names_matching_rules_and_sinks():
    result = run(
        "route", str(SAMPLES / "failed-outbound.json"), "--config", str(ROOT / "rules.yaml")
    )
    assert result.returncode == 0, result.stderr
    assert "failed-calls -> ops-slack, support-email" in result.stdout
    assert "everything-to-console -> console" in result.stdout
    assert "voicemail" not in result.stdout


def test_route_render_shows_each_message(tmp_path):
    result = run(
        "route",
        str(SAMPLES / "voicemail-outbound.json"),
        "--render",
        "--config",
        str(ROOT / "rules.yaml"),
        env={"CRM_URL": "https://crm.example.com/api/calls?key=secret-in-query"},
    )
    assert result.returncode == 0, result.stderr
    assert "--- crm (http) ---" in result.stdout
    assert "--- console (log) ---" in result.stdout
    assert "secret-in-query" not in result.stdout


SIGNED_RULES = """version: 1
sinks:
  crm:
    type: http
    url: https://crm.example.com/hook
    headers: {X-Api-Key: "${CRM_API_KEY}"}
    signing_secret: ${CRM_SIGNING_SECRET}
  oncall: {type: pagerduty, routing_key: "${PAGERDUTY_ROUTING_KEY}"}
rules:
  - name: everything
    to: [crm, oncall]
"""


def test_route_render_shows_no_usable_signature_or_key(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(SIGNED_RULES)
    secrets = {
        "CRM_API_KEY": "crm-key-0a1b2c3d4e5f",
        "CRM_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "PAGERDUTY_ROUTING_KEY": "R0123456789abcdef0123456789abcde",
    }
    event = SAMPLES / "failed-outbound.json"
    result = run("route", str(event), "--render", "--config", str(rules), env=secrets)
    assert result.returncode == 0, result.stderr
    assert '"webhook-signature": "v1,***"' in result.stdout
    assert '"X-Api-Key": "***"' in result.stdout and '"routing_key": "***"' in result.stdout
    for secret in (*secrets.values(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"):
        assert secret not in result.stdout + result.stderr


def test_route_rejects_an_invalid_event(tmp_path):
    event = tmp_path / "event.json"
    event.write_text('{"id": "x"}')
    result = run("route", str(event), "--config", str(ROOT / "rules.yaml"))
    assert result.returncode == 1
    assert "status" in result.stderr and "direction" in result.stderr


def test_route_refuses_an_event_nested_deeper_than_a_call_may(tmp_path):
    event = tmp_path / "event.json"
    deep = "[" * 1000 + "]" * 1000
    body = json.dumps(fresh_event("failed-outbound")).replace('"metrics": {}', f'"metrics": {deep}')
    event.write_text(body)
    result = run("route", str(event), "--config", str(ROOT / "rules.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{event}: invalid event: metrics: nested deeper than 64 levels"


GROUPED_RULES = """version: 1
sinks:
  crm: {type: http, url: "https://crm.example.com/hook"}
rules:
  - name: trunk-outage
    when: {status: FAILED}
    to: [crm]
    group: {by: [sipTrunkId], window: 2m, max: 100}
"""


def test_route_render_previews_a_grouped_rule_as_a_digest_of_this_call(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(GROUPED_RULES)
    event = SAMPLES / "failed-outbound.json"
    result = run("route", str(event), "--render", "--config", str(rules))
    assert result.returncode == 0, result.stderr
    assert "(grouped by sipTrunkId='trunk-main'; window 120s)" in result.stdout
    assert "--- crm (http, digest of rule trunk-outage with this call alone) ---" in result.stdout
    body = result.stdout.split('"body": ')[1]
    assert '"count": 1' in body and '"sipTrunkId": "trunk-main"' in body


def test_check_renders_templates_against_a_sample_call(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\n"
        "sinks:\n"
        "  crm:\n"
        "    type: http\n"
        "    url: https://crm.example.com/calls\n"
        "    body: '{\"summary\": {{ summary }}'\n"  # unclosed: never JSON
        "rules: [{name: all, to: [crm]}]\n"
    )
    result = run("check", "--config", str(path))
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith(str(path))]
    assert line.startswith(f"{path}:6:11: error: sink 'crm': body: ")  # at the template
    assert "JSON" in line and "sample call" in line


STEPS_RULES = """version: 1
sinks:
  crm:
    type: http
    headers: {Authorization: "Bearer ${CRM_TOKEN}"}
    steps:
      - name: find
        method: GET
        url: https://crm.example/search?phone={{ fromNumber | urlencode }}&api_key=${CRM_KEY}
        capture: {contact: "results[0].id"}
      - name: log
        url: https://crm.example/contacts/{{ steps.find.contact }}/calls
        body: '{"contact": "{{ steps.find.contact }}"}'
rules:
  - name: everything
    to: [crm]
"""


def test_route_render_shows_every_step_with_earlier_answers_unknown(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(STEPS_RULES)
    secrets = {"CRM_TOKEN": "tok-5e6f7a8b9c", "CRM_KEY": "key-0a1b2c3d4e"}
    result = run(
        "route",
        str(SAMPLES / "voicemail-outbound.json"),
        "--render",
        "--config",
        str(rules),
        env=secrets,
    )
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout.split("--- crm (http) ---", 1)[1])
    find, log = rendered["steps"]
    assert (find["name"], find["method"], find["body"]) == ("find", "GET", None)
    assert find["url"] == "https://crm.example/search?phone=%2B14155550199&api_key=***"
    assert log["body"] == {"contact": "⟨steps.find.contact: known once sent⟩"}
    assert log["headers"]["Idempotency-Key"] == "preview:log"
    assert all(secret not in result.stdout for secret in secrets.values())


def test_check_refuses_a_step_reference_at_file_line_column(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(STEPS_RULES.replace("steps.find.contact }}/calls", "steps.find.id }}/calls"))
    result = run("check", "--config", str(rules), env={"CRM_TOKEN": "t", "CRM_KEY": "k"})
    assert result.returncode != 0
    assert (
        f"{rules}:12:14: error: sinks.crm.steps.1.url: steps.find.id: step 'find' captures no 'id'"
        " (its captures: contact)"
    ) in result.stdout + result.stderr
