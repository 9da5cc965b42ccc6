"""Checking silence and pause requests (`router.operators.silences`) and the controls' send-time
rule (`router.operators.controls`): pure, no store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.operators.controls import KnownSilence, OperatorControls
from router.operators.silences import (
    LONGEST_SILENCE,
    RequestInvalid,
    names_values,
    parse_pause_request,
    parse_silence_request,
    silence_json,
    to_silence,
)
from router.rules.matching import compile_when
from tests.unit.test_rules_properties import whens

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
SINKS = {"crm", "ops-slack"}


def problems(body, known=SINKS) -> list[str]:
    with pytest.raises(RequestInvalid) as caught:
        parse_silence_request(body, now=NOW, known_sinks=known)
    return caught.value.errors


def test_a_good_silence_for_a_duration() -> None:
    body = {
        "when": {"status": "FAILED", "sipTrunkId": "trunk-a"},
        "for": "2h",
        "sinks": ["crm"],
        "comment": "carrier maintenance",
    }
    record = parse_silence_request(body, now=NOW, known_sinks=SINKS)
    assert (record.starts_at, record.ends_at, record.sinks) == (NOW, NOW + 7200, ("crm",))
    assert json.loads(record.when) == body["when"]
    shown = silence_json(record, NOW)
    assert shown["state"] == "active" and shown["ends_at"] == "2026-12-01T14:00:00Z"
    silence = to_silence(record)
    assert silence.condition({"status": "FAILED", "sipTrunkId": "trunk-a"})
    assert not silence.condition({"status": "FAILED", "sipTrunkId": "trunk-b"})
    assert silence.covers("crm") and not silence.covers("ops-slack")


def test_a_good_silence_between_two_times_is_pending_until_it_starts() -> None:
    body = {
        "when": {"status": "FAILED"},
        "starts_at": "2026-12-24T00:00:00+01:00",
        "ends_at": "2026-12-27T00:00:00+01:00",
    }
    record = parse_silence_request(body, now=NOW, known_sinks=SINKS)
    assert record.sinks is None
    assert silence_json(record, NOW)["state"] == "pending"
    assert silence_json(record, record.ends_at)["state"] == "expired"


def test_every_problem_is_named_at_once() -> None:
    found = problems(
        {
            "when": {"status": {"like": "FAILED"}, "any": "x"},
            "for": "0s",
            "sinks": ["crm", "nope"],
            "comment": 5,
            "colour": "red",
        }
    )
    text = "\n".join(found)
    assert "when.status" in text and "like" in text
    assert "when.any" in text
    assert "for: must be longer than 0s" in text
    assert "unknown sink 'nope'" in text
    assert "comment: expected text" in text
    assert "colour: unknown field" in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"for": "1h"}, "when: required"),
        ({"when": {}, "for": "1h"}, "at least one condition"),
        ({"when": ["status"], "for": "1h"}, "when: must be a mapping"),
        ({"when": {"a": 1}}, "give exactly one"),
        ({"when": {"a": 1}, "for": "1h", "ends_at": "2027-01-01T00:00:00Z"}, "exactly one"),
        ({"when": {"a": 1}, "for": "3650d"}, "for: must be at most 366d"),
        ({"when": {"a": 1}, "for": "10 years"}, "for: expected a duration"),
        ({"when": {"a": 1}, "for": "-1h"}, "for: expected a duration"),
        ({"when": {"a": 1}, "ends_at": "2026-12-01T11:00:00Z"}, "ends_at: must be after"),
        ({"when": {"a": 1}, "ends_at": "2036-12-01T11:00:00Z"}, "lasts at most"),
        ({"when": {"a": 1}, "ends_at": "tomorrow"}, "ends_at: not an ISO 8601 time"),
        ({"when": {"a": 1}, "ends_at": "2027-01-01T00:00:00"}, "needs a time zone"),
        (
            {"when": {"a": 1}, "starts_at": "2020-01-01T00:00:00Z", "for": "1h"},
            "ends_at: is in the past",
        ),
        ({"when": {"a": 1}, "for": "1h", "sinks": []}, "sinks: expected a non-empty list"),
        ({"when": {"a": {"regex": "(a)\\1"}}, "for": "1h"}, "when.a"),
        ({"when": {"a": 1}, "starts_at": "9999-12-31T23:00:00Z", "for": "1h"}, "starts_at: at"),
        ({"when": {"a": 1}, "ends_at": "0001-01-01T00:00:00+01:00"}, "ends_at: must be after"),
        ({"when": {"a": 1}, "ends_at": "9999-12-31T23:59:59-23:59"}, "ends_at: a silence lasts"),
        ({"when": {"a": 1}, "for": "1h", "sinks": ["crm"] * 101}, "sinks: at most 100"),
    ],
)
def test_each_bad_request_is_refused_naming_its_field(body, expected) -> None:
    assert any(expected in problem for problem in problems(body)), problems(body)


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_a_body_that_is_not_an_object_is_refused(body) -> None:
    [problem] = problems(body)
    assert problem.startswith("the body must be a JSON object, not ")


def test_pause_requests() -> None:
    pause = parse_pause_request(
        "crm", {"for": "1h", "comment": "CRM migration"}, now=NOW, known_sinks=SINKS
    )
    assert (pause.sink, pause.until, pause.comment) == ("crm", NOW + 3600, "CRM migration")
    with pytest.raises(RequestInvalid) as caught:
        parse_pause_request("nope", {"for": "0s"}, now=NOW, known_sinks=SINKS)
    assert len(caught.value.errors) == 2
    with pytest.raises(RequestInvalid, match="for: required"):
        parse_pause_request("crm", {}, now=NOW, known_sinks=SINKS)
    with pytest.raises(RequestInvalid, match="at most"):
        parse_pause_request("crm", {"for": LONGEST_SILENCE + 1}, now=NOW, known_sinks=SINKS)


def controls_with(*bodies: dict, created_at: float = NOW) -> OperatorControls:
    controls = OperatorControls(store=None)  # type: ignore[arg-type]
    records = [parse_silence_request(body, now=created_at, known_sinks=SINKS) for body in bodies]
    controls.silences = tuple(KnownSilence(r, to_silence(r)) for r in records)
    return controls


def test_a_digest_is_muted_only_when_one_silence_matches_every_call_in_it() -> None:
    controls = controls_with({"when": {"status": "FAILED"}, "for": "1h"})
    failed, completed = {"status": "FAILED"}, {"status": "COMPLETED"}
    assert controls.silence_before_send([failed, failed], "crm", NOW + 1, None) is not None
    assert controls.silence_before_send([failed, completed], "crm", NOW + 1, None) is None


def test_a_replayed_delivery_ignores_silences_older_than_its_replay() -> None:
    controls = controls_with({"when": {"status": "FAILED"}, "for": "1h"})
    failed = [{"status": "FAILED"}]
    assert controls.silence_before_send(failed, "crm", NOW + 10, replayed_at=NOW + 5) is None
    assert controls.silence_before_send(failed, "crm", NOW + 10, replayed_at=NOW - 5) is not None
    assert controls.silence_before_send(failed, "crm", NOW + 4000, None) is None  # over
    assert [s.id for s in controls.active_silences(NOW + 1)] == [controls.silences[0].record.id]
    assert controls.active_silences(NOW - 1) == []


# -- a silence must name values (DESIGN.md section 9) --------------------------------------


@pytest.mark.parametrize(
    ("when", "where"),
    [
        ({"id": {"exists": True}}, "when"),
        ({"not": {"status": "NOPE"}}, "when"),
        ({"status": {"ne": "COMPLETED"}}, "when"),
        ({"status": {"not_in": ["COMPLETED", "BUSY"]}, "agentId": {"exists": False}}, "when"),
        ({"status": {"in": []}}, "when"),
        ({"status": []}, "when"),
        ({"id": {"startswith": ""}}, "when"),
        ({"summary": {"contains": ""}}, "when"),
        ({"id": {"ge": ""}}, "when"),
        ({"id": {"regex": ".*"}}, "when"),
        ({"id": {"regex": "(x)?"}}, "when"),
        ({"id": {"regex": "."}}, "when"),
        ({"id": {"regex": "^"}}, "when"),
        ({"all": [{"id": {"exists": True}}, {"not": {"status": "FAILED"}}]}, "when"),
        ({"any": [{"status": "FAILED"}, {"id": {"exists": True}}]}, "when.any.1"),
        (
            {"all": [{"any": [{"sipTrunkId": "t"}, {"not": {"status": "X"}}]}]},
            "when.all.0.any.1",
        ),
    ],
)
def test_a_silence_that_names_no_values_is_refused(when, where) -> None:
    [problem] = problems({"when": when, "for": "1h"})
    assert problem.startswith(f"{where}: "), problem
    assert "names no values" in problem and "silence" in problem


@pytest.mark.parametrize(
    "when",
    [
        {"status": "FAILED"},
        {"durationSeconds": {"lt": 10}},
        {"status": ["FAILED", "BUSY"]},
        {"status": {"in": ["FAILED"]}},
        {"hangupCause": {"regex": "^SIP_5"}},
        {"summary": {"regex": "^$"}},
        {"summary": {"contains": "outage"}},
        {"sipTrunkId": {"startswith": "carrier-a-"}},
        {"answered": False},
        {"agentId": ""},
        {"agentId": {"eq": ""}},
        {"id": {"exists": True}, "status": "FAILED"},
        {"status": "FAILED", "not": {"agentId": "a1"}},
        {"any": [{"status": "FAILED"}, {"hangupCause": "SILENCE_TIMEOUT"}]},
        {"all": [{"id": {"exists": True}}, {"sipTrunkId": "t"}]},
        {"sipTrunkId": "t", "any": [{"id": {"exists": True}}, {"x": {"exists": False}}]},
    ],
)
def test_a_silence_that_names_values_is_accepted(when) -> None:
    record = parse_silence_request({"when": when, "for": "1h"}, now=NOW, known_sinks=SINKS)
    assert json.loads(record.when) == when


@settings(max_examples=300, deadline=None)
@given(whens())
def test_a_when_that_names_values_never_matches_a_call_lacking_every_field(when) -> None:
    if names_values(when):
        assert not compile_when(when)({})


@settings(max_examples=300, deadline=None)
@given(whens())
def test_silence_requests_are_refused_exactly_when_their_when_names_no_values(when) -> None:
    body = {"when": when, "for": "1h"}
    if names_values(when):
        parse_silence_request(body, now=NOW, known_sinks=SINKS)
    else:
        assert any("names no values" in problem for problem in problems(body))


@given(whens())
def test_adding_a_value_condition_makes_any_when_name_values(when) -> None:
    assert names_values({**when, "sipTrunkId": "trunk-a"})
    assert names_values({"all": [when, {"status": "FAILED"}]})
    assert not names_values({"not": when})
