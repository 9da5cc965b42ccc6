"""The console's silence form read into the admin API's request (pure): empty fields are
left out, a `when` that is not JSON is named once, and a call's `when` holds equality
on the fields the call has."""

from __future__ import annotations

import json

import pytest
from multidict import MultiDict

from router.operators.silences import RequestInvalid
from router.web.ui.silences import check_silence_form, silence_request, when_of_call

NOW = 1_800_000_000.0


def test_empty_fields_are_left_out_and_sinks_are_a_list():
    fields = [("when", ' {"status": "FAILED"} '), ("for", "2h"), ("ends_at", " ")]
    form = MultiDict([*fields, ("comment", ""), ("sinks", "crm"), ("sinks", "ops"), ("csrf", "x")])
    body, problems = silence_request(form)
    assert problems == []
    assert body == {"when": {"status": "FAILED"}, "for": "2h", "sinks": ["crm", "ops"]}


def test_a_valid_form_is_a_silence_like_the_admin_apis():
    form = MultiDict([("when", '{"agentId": "a-1"}'), ("for", "30m"), ("sinks", "crm")])
    record = check_silence_form(form, now=NOW, known_sinks=["crm"])
    assert json.loads(record.when) == {"agentId": "a-1"}
    assert (record.starts_at, record.ends_at, record.sinks) == (NOW, NOW + 1800, ("crm",))


def test_every_problem_is_named_and_a_bad_json_when_only_once():
    form = MultiDict([("when", "{nope"), ("for", "2h"), ("ends_at", "soon"), ("sinks", "x")])
    with pytest.raises(RequestInvalid) as caught:
        check_silence_form(form, now=NOW, known_sinks=["crm"])
    errors = caught.value.errors
    assert errors[0].startswith("when: not JSON")
    assert not any(e.startswith("when: required") for e in errors)
    assert any(e.startswith("for / ends_at: give exactly one") for e in errors)
    assert any(e.startswith("sinks: unknown sink 'x'") for e in errors)


def test_a_calls_when_holds_the_fields_it_has():
    call = {"status": "FAILED", "agentId": "a-1", "sipTrunkId": "t-1", "direction": "INBOUND"}
    assert when_of_call(call) == {"status": "FAILED", "sipTrunkId": "t-1", "agentId": "a-1"}
    assert when_of_call({"status": "COMPLETED", "sipTrunkId": None}) == {"status": "COMPLETED"}
    assert when_of_call({}) == {}
