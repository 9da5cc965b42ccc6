"""`revring-router check` and `route --at` with time intervals, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_rules import SAMPLES, run

RULES = """\
version: 1
time_intervals:
  business-hours:
    - weekdays: ['monday:friday']
      times: [{start_time: 09:00, end_time: 17:30}]
      location: Europe/London
  christmas:
    - months: ['december']
      days_of_month: ['24:26']
sinks:
  console: {type: log}
  crm: {type: http, url: "https://crm.example.com/hook"}
rules:
  - name: failed-in-office-hours
    when: {status: FAILED}
    to: [console, crm]
    active_during: [business-hours]
    muted_during: [christmas]
  - name: everything
    to: [console]
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def route_at(rules: Path, at: str) -> list[str]:
    result = run("route", str(SAMPLES / "failed-outbound.json"), "--config", str(rules), "--at", at)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("deliveries at ")[1].splitlines()


def test_check_accepts_intervals(rules: Path) -> None:
    result = run("check", "--config", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (2 rules, 2 sinks)" in result.stdout


def test_route_at_office_hours_sends_everywhere(rules: Path) -> None:
    # 2026-07-14 is a Tuesday; 08:30 UTC is 09:30 in London (BST).
    assert route_at(rules, "2026-07-14T08:30:00Z") == [
        "2026-07-14T08:30:00+00:00:",
        "  console (type log, rule failed-in-office-hours): send",
        "  crm (type http, rule failed-in-office-hours): send",
    ]


def test_route_at_christmas_mutes_the_crm_and_keeps_the_console_through_another_rule(
    rules: Path,
) -> None:
    assert route_at(rules, "2026-12-24T10:00:00Z") == [
        "2026-12-24T10:00:00+00:00:",
        "  console (type log, rule everything): send",
        "  crm (type http, rule failed-in-office-hours): muted (time_interval:christmas): not sent",
    ]


def test_route_at_an_offset_time_outside_office_hours(rules: Path) -> None:
    # 08:30 in London in summer written as 07:30Z: before the office opens.
    lines = route_at(rules, "2026-07-14T03:30:00-04:00")
    assert lines[2] == (
        "  crm (type http, rule failed-in-office-hours): "
        "muted (time_interval:business-hours): not sent"
    )


def test_route_render_shows_only_what_would_be_sent(rules: Path) -> None:
    result = run(
        "route",
        str(SAMPLES / "failed-outbound.json"),
        "--config",
        str(rules),
        "--at",
        "2026-12-24T10:00:00Z",
        "--render",
    )
    assert result.returncode == 0, result.stderr
    assert "--- console (log) ---" in result.stdout
    assert "--- crm" not in result.stdout


def test_route_without_at_judges_now(rules: Path) -> None:
    result = run("route", str(SAMPLES / "failed-outbound.json"), "--config", str(rules))
    assert result.returncode == 0, result.stderr
    assert "console (type log, rule " in result.stdout


@pytest.mark.parametrize(
    ("at", "fragment"),
    [("2026-12-24T10:00:00", "needs a time zone"), ("christmas", "must be an ISO 8601 time")],
)
def test_route_refuses_an_unusable_at(rules: Path, at: str, fragment: str) -> None:
    result = run("route", str(SAMPLES / "failed-outbound.json"), "--config", str(rules), "--at", at)
    assert result.returncode == 2
    assert fragment in result.stderr


def test_check_reports_interval_problems_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        RULES.replace("'monday:friday'", "'friday:monday'")
        .replace("Europe/London", "Europe/Londn")
        .replace("muted_during: [christmas]", "muted_during: [xmas]")
    )
    result = run("check", "--config", str(path))
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(path))]
    assert [line[len(str(path)) :].split(" ", 1)[0] for line in lines] == [
        ":4:18:",
        ":6:17:",
        ":18:20:",
    ]
    assert "weekdays 'friday:monday': the start comes after the end" in lines[0]
    assert "unknown time zone 'Europe/Londn'" in lines[1]
    assert "muted_during names undefined time interval 'xmas'" in lines[2]
