"""Numeric settings from the environment: a bad value is a clear error of the command
that uses it (exit 2), never a traceback, and no error at all for a command that does not."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli_rules import ROOT, run

BAD_SETTINGS = [
    ("ROUTER_PORT", "eighty", "must be a port number (1-65535), got 'eighty'"),
    ("ROUTER_PORT", "70000", "must be a port number (1-65535), got '70000'"),
    ("ROUTER_RETENTION_DAYS", "a month", "must be a number of days (0 or more), got 'a month'"),
    ("ROUTER_RETENTION_DAYS", "-1", "must be a number of days (0 or more), got '-1'"),
    ("ROUTER_RETENTION_DAYS", "nan", "must be a number of days (0 or more), got 'nan'"),
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
def test_serve_with_a_bad_numeric_setting_exits_2_naming_it(
    variable: str, value: str, message: str
) -> None:
    result = run("serve", "--no-auth", env={variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"revring-router: error: {variable} {message}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
def test_check_does_not_care_about_serve_settings(variable: str, value: str, message: str) -> None:
    result = run("check", "--config", str(ROOT / "rules.yaml"), env={variable: value})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_port_flag_names_the_flag() -> None:
    result = run("serve", "--no-auth", "--port", "http")
    assert result.returncode == 2
    assert "argument --port: must be a port number (1-65535), got 'http'" in result.stderr


@pytest.mark.parametrize("variable", ["ROUTER_STORE_TIMEOUT", "ROUTER_LEASE_SECONDS"])
@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_serve_with_a_bad_duration_exits_2_naming_it(variable: str, value: str) -> None:
    result = run("serve", "--no-auth", env={variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{variable} must be a positive number, got {value!r}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "\u0662"])
def test_serve_with_a_bad_parse_worker_count_exits_2_naming_it(value: str) -> None:
    result = run("serve", "--no-auth", env={"ROUTER_PARSE_WORKERS": value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"ROUTER_PARSE_WORKERS must be a whole number, 0 or more, got {value!r}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["XX", "USA", "united states"])
def test_serve_with_an_unknown_phone_region_exits_2_naming_it(value: str) -> None:
    result = run("serve", "--no-auth", env={"ROUTER_PHONE_REGION": value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ROUTER_PHONE_REGION must be a two-letter region code" in result.stderr
    assert repr(value) in result.stderr and "Traceback" not in result.stderr
