"""`when:` blocks read against RevRing's post-call schema (`lint_when`), and what a loaded
rules.yaml reports of them: errors for comparisons that cannot hold for the field's
kind, warnings for unknown fields, unknown statuses and rules that can never match."""

from __future__ import annotations

from typing import Any

import pytest

from router.config import ConfigError, parse_config
from router.core.call_fields import CALL_FIELDS, FieldKind, did_you_mean
from router.rules import WhenFinding, lint_when


def messages(when: dict[str, Any]) -> list[tuple[bool, str]]:
    return [(finding.error, finding.message) for finding in lint_when(when)]


def test_a_field_the_schema_does_not_have_is_a_warning_with_a_suggestion() -> None:
    assert lint_when({"staus": "FAILED"}) == [
        WhenFinding(
            ("staus",),
            "'staus' is not a field of RevRing's post-call event (did you mean 'status'?)",
            at_key=True,
        )
    ]


@pytest.mark.parametrize(
    "when",
    [
        {"variables.customer_tier": "gold"},
        {"metrics.latencyMs.p50": {"gt": 500}},
        {"transcript.0.role": "agent"},
        {"transcript": {"contains": "hello"}},
        {"not": {"status": "FAILED"}},
    ],
)
def test_free_places_and_good_conditions_say_nothing(when: dict[str, Any]) -> None:
    assert lint_when(when) == []


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            {"durationSeconds": {"lt": "ten"}},
            "durationSeconds is a whole number, so lt 'ten' (a string) never holds",
        ),
        (
            {"durationSeconds": {"lt": "10s"}},
            "durationSeconds is a whole number, so lt '10s' (a string) never holds"
            " (it counts seconds: write a number, like 10)",
        ),
        (
            {"durationSeconds": "10"},
            "durationSeconds is a whole number, so '10' (a string) never holds"
            " (write 10 without quotes)",
        ),
        (
            {"fromNumber": 14155550123},
            "fromNumber is text, so 14155550123 (a number) never holds (quote it: '14155550123')",
        ),
        (
            {"transcript": "hello"},
            "transcript is a list, so 'hello' (a string) never holds"
            " (to test its entries, use contains)",
        ),
        (
            {"durationSeconds": {"regex": "^1"}},
            "durationSeconds is a whole number, so regex '^1' (a string) never holds",
        ),
    ],
)
def test_a_comparison_the_fields_kind_cannot_satisfy_is_an_error(
    when: dict[str, Any], message: str
) -> None:
    assert messages(when) == [(True, message)]


def test_a_timestamp_compares_with_text_or_unix_seconds() -> None:
    assert lint_when({"endedAt": {"gt": "2026-01-01"}, "startedAt": {"gt": 1_700_000_000}}) == []


def test_a_status_revring_does_not_send_is_a_warning() -> None:
    assert messages({"status": ["FAILED", "FAILD"]}) == [
        (
            False,
            "status 'FAILD' is not one RevRing sends (CANCELED, COMPLETED, FAILED,"
            " TRANSFERRED) (did you mean 'FAILED'?)",
        )
    ]


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ({"status": {"in": []}}, "status: in: [] allows no value"),
        (
            {"status": "FAILED", "all": [{"status": "COMPLETED"}]},
            "status cannot be 'FAILED' and 'COMPLETED'",
        ),
        (
            {"status": {"eq": "FAILED", "ne": "FAILED"}},
            "status cannot be 'FAILED' and not 'FAILED'",
        ),
        ({"durationSeconds": {"gt": 10, "lt": 5}}, "durationSeconds cannot be gt 10 and lt 5"),
        ({"durationSeconds": {"ge": 10, "lt": 10}}, "durationSeconds cannot be ge 10 and lt 10"),
        ({"durationSeconds": {"eq": 5, "gt": 10}}, "durationSeconds cannot be 5 and gt 10"),
        (
            {"hangupCause": {"exists": False, "eq": "USER_ENDED"}},
            "hangupCause cannot be absent (exists: false) and 'USER_ENDED'",
        ),
    ],
)
def test_a_rule_that_can_never_match_is_a_warning(when: dict[str, Any], reason: str) -> None:
    assert messages(when) == [(False, f"{reason}: the rule never matches")]


def test_an_alternative_of_any_that_never_holds_is_named_as_such() -> None:
    when = {"any": [{"status": "FAILED", "all": [{"status": "COMPLETED"}]}, {"status": "FAILED"}]}
    [finding] = lint_when(when)
    assert finding.path == ("any", 0, "all", 0, "status")
    assert finding.message.endswith("this alternative of any never holds")


def test_what_a_quick_look_cannot_prove_is_left_alone() -> None:
    assert lint_when({"status": "FAILED", "not": {"status": "FAILED"}}) == []
    assert lint_when({"durationSeconds": {"ge": 10, "le": 10}}) == []


def test_the_fields_kinds_follow_the_event_model() -> None:
    assert CALL_FIELDS["durationSeconds"] is FieldKind.WHOLE_NUMBER
    assert CALL_FIELDS["endedAt"] is FieldKind.TIMESTAMP
    assert CALL_FIELDS["transcript"] is FieldKind.LIST
    assert CALL_FIELDS["variables"] is FieldKind.ANY
    assert CALL_FIELDS["status"] is FieldKind.TEXT


def test_did_you_mean_forgives_case_and_underscores() -> None:
    assert did_you_mean("duration_seconds", CALL_FIELDS) == " (did you mean 'durationSeconds'?)"
    assert did_you_mean("Status", CALL_FIELDS) == " (did you mean 'status'?)"
    assert did_you_mean("customer_tier", CALL_FIELDS) == ""


RULES = """\
version: 1
sinks:
  console: {type: log}
rules:
  - name: typo
    when: {staus: FAILED}
    to: [console]
  - name: short
    when:
      durationSeconds: {lt: 10s}
    to: [console]
"""


def test_a_loaded_file_reports_errors_and_warnings_at_their_lines() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(RULES, "rules.yaml", environ={})
    [error] = caught.value.errors
    assert str(error) == (
        "rules.yaml:10:29: rule 'short': durationSeconds is a whole number, so lt '10s'"
        " (a string) never holds (it counts seconds: write a number, like 10)"
    )
    config = parse_config(RULES.replace("10s", "10"), "rules.yaml", environ={})
    [warning] = config.warnings
    assert str(warning) == (
        "rules.yaml:6:12: rule 'typo': 'staus' is not a field of RevRing's post-call event"
        " (did you mean 'status'?)"
    )
