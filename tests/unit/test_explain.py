"""`explain`: why a rule did not match a call, for `route --explain`: its first condition
that fails and the call's value there."""

from __future__ import annotations

from typing import Any

import pytest

from router.rules import compile_when, explain
from tests.conftest import sample

CALL = sample("completed-inbound")


@pytest.mark.parametrize(
    ("when", "said"),
    [
        (
            {"hangupCause": "VOICEMAIL_DETECTED"},
            "hangupCause is 'USER_ENDED', wanted 'VOICEMAIL_DETECTED'",
        ),
        (
            {"direction": "INBOUND", "durationSeconds": {"lt": 10}},
            "durationSeconds is 108, wanted less than 10",
        ),
        (
            {"status": ["FAILED", "CANCELED"]},
            "status is 'COMPLETED', wanted one of 'FAILED', 'CANCELED'",
        ),
        ({"errorMessage": {"exists": True}}, "errorMessage is missing, wanted a value"),
        (
            {"summary": {"exists": False}},
            "summary is 'Caller rescheduled a cleaning to Friday 10am.', wanted no value",
        ),
        (
            {"variables.customer_tier": {"ne": "gold"}},
            "variables.customer_tier is 'gold', wanted anything but 'gold'",
        ),
        ({"agentName": {"regex": "^Bo"}}, "agentName is 'Ava', wanted a match for '^Bo'"),
        (
            {"all": [{"direction": "INBOUND"}, {"sipTrunkId": {"startswith": "x"}}]},
            "sipTrunkId is 'trunk-main', wanted text starting with 'x'",
        ),
        (
            {"any": [{"status": "FAILED"}, {"hangupCause": "SILENCE_TIMEOUT"}]},
            "no alternative of any holds (the first: status is 'COMPLETED', wanted 'FAILED')",
        ),
        ({"not": {"status": "COMPLETED"}}, 'not {"status": "COMPLETED"} holds, wanted it not to'),
    ],
)
def test_the_first_failing_condition_and_the_calls_value(when: dict[str, Any], said: str) -> None:
    assert not compile_when(when)(CALL)
    assert explain(when, CALL) == said


def test_a_matching_when_has_nothing_to_explain() -> None:
    for when in (None, {}, {"status": "COMPLETED", "durationSeconds": {"gt": 100}}):
        assert explain(when, CALL) is None


def test_a_long_value_is_cut() -> None:
    said = explain({"transcript": {"contains": "hi"}}, CALL)
    assert said is not None and said.startswith("transcript is [{'role': 'agent'")
    assert "…, wanted something containing 'hi'" in said and len(said) < 140
