"""rules.yaml `time_intervals:` and rules' `active_during` / `muted_during` through
`parse_config`: compiled at load, every problem at its FILE:LINE:COL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.config.schema import ConfigError, parse_config
from router.rules.matching import route
from router.rules.muting import decide

SINKS = """version: 1
sinks:
  console: {type: log}
"""


def config_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "rules.yaml", environ={})
    return [str(error) for error in caught.value.errors]


VALID = """version: 1
time_intervals:
  business-hours:
    - weekdays: ['monday:friday']
      times: [{start_time: '09:00', end_time: '17:30'}]
      location: Europe/London
  christmas:
    - months: ['december']
      days_of_month: ['24:26']
sinks:
  console: {type: log}
rules:
  - name: failed-in-office-hours
    when: {status: FAILED}
    to: [console]
    active_during: [business-hours]
    muted_during: christmas
"""


def test_intervals_and_rule_names_are_compiled() -> None:
    config = parse_config(VALID, "rules.yaml", environ={})
    assert set(config.time_intervals) == {"business-hours", "christmas"}
    [rule] = config.rules
    assert rule.active_during == ("business-hours",)
    assert rule.muted_during == ("christmas",)
    routed = route(config.rules, {"status": "FAILED"})
    tuesday_office = datetime(2026, 12, 22, 10, tzinfo=UTC)
    christmas_eve = datetime(2026, 12, 24, 10, tzinfo=UTC)
    assert not decide(routed, config.time_intervals, tuesday_office)["console"].muted
    muted = decide(routed, config.time_intervals, christmas_eve)["console"]
    assert muted.muted_reason == "time_interval:christmas"


def test_a_file_without_intervals_has_none_and_rules_are_never_muted() -> None:
    config = parse_config(SINKS + "rules:\n  - {name: all, to: console}\n", "r.yaml", environ={})
    assert config.time_intervals == {}
    assert config.rules[0].active_during == () and config.rules[0].muted_during == ()


def test_unquoted_times_and_ranges_read_as_written_not_as_base_60_numbers() -> None:
    # YAML 1.1 reads 17:30 as 1050 and 1:5 as 65; Alertmanager's examples leave them unquoted.
    config = parse_config(
        """version: 1
time_intervals:
  office:
    - times: [{start_time: 09:00, end_time: 17:30}]
      days_of_month: [1:5, 24:26]
      months: [1:3]
sinks:
  console: {type: log}
""",
        "rules.yaml",
        environ={},
    )
    office = config.time_intervals["office"]
    assert office.contains(datetime(2026, 2, 3, 17, 29, tzinfo=UTC))
    assert not office.contains(datetime(2026, 2, 3, 17, 30, tzinfo=UTC))
    assert office.contains(datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
    assert not office.contains(datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    assert not office.contains(datetime(2026, 4, 1, 9, 0, tzinfo=UTC))


def test_a_rule_naming_an_undefined_interval_is_reported_at_the_name() -> None:
    errors = config_errors(
        VALID.replace("active_during: [business-hours]", "active_during: [office-hours]")
        + "  - name: quiet\n    to: [console]\n    muted_during: [christmas, holidays]\n"
    )
    assert errors == [
        "rules.yaml:16:21: rule 'failed-in-office-hours': active_during names undefined "
        "time interval 'office-hours' (time_intervals: business-hours, christmas)",
        "rules.yaml:20:31: rule 'quiet': muted_during names undefined time interval "
        "'holidays' (time_intervals: business-hours, christmas)",
    ]


def test_naming_an_interval_when_none_are_defined() -> None:
    errors = config_errors(SINKS + "rules:\n  - {name: r, to: console, muted_during: [night]}\n")
    assert errors == [
        "rules.yaml:5:43: rule 'r': muted_during names undefined time interval 'night' "
        "(time_intervals: none defined)"
    ]


def test_an_interval_name_that_is_not_a_string_is_a_schema_error() -> None:
    errors = config_errors(SINKS + "rules:\n  - {name: r, to: console, active_during: [1]}\n")
    assert len(errors) == 1
    assert errors[0].startswith("rules.yaml:5:44: rule 'r': active_during.0:")


BAD_INTERVALS = """version: 1
time_intervals:
  bad:
    - weekdays: ['friday:monday', 'funday']
      days_of_month: ['0', '-3:2', '25:-5']
      months: ['march:january', '13', 'smarch']
      years: ['2027:2026']
      times:
        - {start_time: '9:00', end_time: '10:00'}
        - {start_time: '10:00', end_time: '09:00'}
        - {start_time: '08:00', end_time: '24:01'}
      location: Mars/Olympus_Mons
      hours: [1]
sinks:
  console: {type: log}
rules:
  - name: r
    to: [console]
    active_during: [bad]
"""


def test_every_interval_problem_is_reported_at_its_line_and_column() -> None:
    errors = config_errors(BAD_INTERVALS)
    expected = [
        ("rules.yaml:4:18:", "weekdays 'friday:monday': the start comes after the end"),
        ("rules.yaml:4:35:", "weekdays 'funday': 'funday' is not a weekday"),
        ("rules.yaml:5:23:", "days_of_month '0': '0' is not a day of the month"),
        ("rules.yaml:5:28:", "days_of_month '-3:2': a range starting from the month's end"),
        ("rules.yaml:5:36:", "days_of_month '25:-5': the start comes after the end"),
        ("rules.yaml:6:16:", "months 'march:january': the start comes after the end"),
        ("rules.yaml:6:33:", "months '13': '13' is not a month"),
        ("rules.yaml:6:39:", "months 'smarch': 'smarch' is not a month"),
        ("rules.yaml:7:15:", "years '2027:2026': the start comes after the end"),
        ("rules.yaml:9:24:", "start_time '9:00' is not a time of day 'HH:MM'"),
        ("rules.yaml:10:11:", "start_time 10:00 must come before end_time 09:00"),
        ("rules.yaml:11:43:", "end_time '24:01' is not a time of day 'HH:MM'"),
        ("rules.yaml:12:17:", "unknown time zone 'Mars/Olympus_Mons'"),
        ("rules.yaml:13:7:", "unknown key 'hours'"),
    ]
    assert len(errors) == len(expected), errors
    for error, (where, fragment) in zip(errors, expected, strict=True):
        assert error.startswith(f"{where} time interval 'bad': "), error
        assert fragment in error, error


def test_time_intervals_that_are_not_a_mapping() -> None:
    errors = config_errors("version: 1\ntime_intervals: [office]\n" + SINKS[len("version: 1\n") :])
    assert errors == [
        "rules.yaml:2:17: time_intervals must be a mapping of names to lists, not a list"
    ]


def test_interval_problems_and_rule_problems_are_reported_together() -> None:
    errors = config_errors(
        BAD_INTERVALS.replace("active_during: [bad]", "active_during: [bad, worse]")
    )
    assert any("undefined time interval 'worse'" in error for error in errors)
    assert any("unknown time zone" in error for error in errors)
