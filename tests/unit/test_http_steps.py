"""The pure parts of an `http` sink's steps (`sinks.http_steps`, `sinks.http`): settings
and their refusals, captures (JMESPath) over any JSON, which steps an attempt still has to
run, what later steps see, each step's request, the preview, and the stored progress read
back whatever the column holds."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router.config.schema import ConfigError, parse_config
from router.core.samples import sample_event
from router.store import resume_state
from router.store.steps import delivery_steps_column
from sinks.base import DeliveryRequest, Permanent, SinkResources
from sinks.http import HttpSinkConfig, HttpStepsSink, build_step_request
from sinks.http_steps import (
    AnswerNotJson,
    capture,
    pending_steps,
    shown_captures,
    steps_view,
)
from sinks.registry import build_sink
from tests.conftest import sample

TOKEN = "tok-0123456789abcdef"


def config(*steps: dict[str, Any], **sink: Any) -> HttpSinkConfig:
    return HttpSinkConfig.model_validate({"type": "http", "steps": list(steps), **sink})


FIND = {
    "name": "find",
    "url": "https://crm.example/search?phone={{ fromNumber | urlencode }}",
    "method": "GET",
    "capture": {"contact": "results[0].id", "total": "total"},
}
CREATE = {
    "name": "create",
    "if": "not steps.find.contact",
    "url": "https://crm.example/contacts",
    "body": '{"phone": "{{ fromNumber }}"}',
    "capture": {"contact": "id"},
}
LOG = {
    "name": "log",
    "url": "https://crm.example/contacts/{{ steps.find.contact or steps.create.contact }}/calls",
    "body": '{"contact": "{{ steps.find.contact or steps.create.contact }}", "call": "{{ id }}"}',
}
FLOW = config(FIND, CREATE, LOG, headers={"Authorization": f"Bearer {TOKEN}"})

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


# --- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "sink", "problem"),
    [
        ([FIND, FIND], {}, "step name 'find' is used twice"),
        ([{**FIND, "name": ""}], {}, "a step's name is a word"),
        ([], {}, "at least one step"),
        ([{**FIND, "capture": {"contact": "results[0"}}], {}, "not a valid JMESPath"),
        ([{**FIND, "url": "ftp://crm.example/x"}], {}, "http:// or https://"),
        ([{**FIND, "if": "{{ x }}"}], {}, "without {{ }}"),
        ([FIND], {"url": "https://crm.example/"}, "either url (one request) or steps"),
        ([FIND], {"body": "{}"}, "set body on each step"),
        ([{**FIND, "headers": {"Idempotency-Key": "x"}}], {}, "set by the router"),
    ],
)
def test_bad_steps_are_refused_with_the_reason(
    steps: list[dict[str, Any]], sink: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        config(*steps, **sink)
    assert problem in str(raised.value)


def test_a_sink_needs_a_url_or_steps() -> None:
    with pytest.raises(ValidationError, match="needs a url"):
        HttpSinkConfig.model_validate({"type": "http"})


@pytest.mark.parametrize(
    ("log_body", "problem"),
    [
        ('{"c": "{{ steps.fnd.contact }}"}', "step 'fnd' is not an earlier step of 'log'"),
        ('{"c": "{{ steps.find.person }}"}', "step 'find' captures no 'person'"),
        ('{"c": "{{ steps.log.x }}"}', "step 'log' is not an earlier step"),
        ('{"c": "{{ steps.find }}"}', "name a step and a capture"),
    ],
)
def test_check_refuses_a_reference_to_no_earlier_step_or_capture_at_its_line(
    log_body: str, problem: str
) -> None:
    text = f"""version: 1
sinks:
  crm:
    type: http
    steps:
      - name: find
        url: https://crm.example/search
        capture: {{contact: "results[0].id"}}
      - name: log
        url: https://crm.example/calls
        body: '{log_body}'
rules:
  - name: all
    to: [crm]
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "rules.yaml", {})
    [error] = raised.value.errors
    assert problem in error.message
    assert str(error).startswith("rules.yaml:11:15: sinks.crm.steps.1.body: ")


def test_check_points_at_a_bad_capture_expression() -> None:
    text = """version: 1
sinks:
  crm:
    type: http
    steps:
      - name: find
        url: https://crm.example/search
        capture: {contact: "results[?"}
rules:
  - name: all
    to: [crm]
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "rules.yaml", {})
    [error] = raised.value.errors
    assert "sinks.crm.steps.0.capture" in error.message and "JMESPath" in error.message
    assert error.position.line == 8


def test_a_well_formed_flow_has_no_problems_and_renders_on_the_samples() -> None:
    assert FLOW.setting_errors() == []
    assert FLOW.sample_problems(sample_event()) == []
    assert f"Bearer {TOKEN}" in FLOW.secret_values()
    assert not any("crm.example" in secret for secret in FLOW.secret_values())
    keyed = config({**FIND, "url": "https://crm.example/s?api_key=k-123&q={{ id }}"})
    assert "k-123" in keyed.secret_values()
    assert "steps.2.url" in FLOW.templates() and "steps.1.if" in FLOW.templates()


# --- captures --------------------------------------------------------------------------


def test_a_capture_that_finds_nothing_is_null() -> None:
    step = FLOW.steps[0]  # type: ignore[index]
    assert capture(step, b'{"results": [], "total": 0}') == {"contact": None, "total": 0}
    assert capture(step, b'{"results": [{"id": "501"}]}') == {"contact": "501", "total": None}


def test_an_answer_that_is_not_json_cannot_be_captured_from() -> None:
    step = FLOW.steps[0]  # type: ignore[index]
    with pytest.raises(AnswerNotJson, match="not JSON"):
        capture(step, b"<html>ok</html>")
    with pytest.raises(AnswerNotJson, match="too long"):
        capture(step, b'{"results": []', complete=False)
    assert capture(FLOW.steps[2], b"<html>ok</html>") == {}  # type: ignore[index]  # nothing to capture


@settings(max_examples=200, deadline=None)
@given(document=JSON)
def test_captures_of_any_json_answer_never_crash(document: Any) -> None:
    step = config(
        {
            "name": "s",
            "url": "https://x.example/",
            "capture": {
                "a": "results[0].id",
                "b": "length(@)",
                "c": "sort_by(@, &id)",
                "d": "[*].name | [0]",
                "e": "keys(@)",
            },
        }
    ).steps[0]  # type: ignore[index]
    found = capture(step, json.dumps(document).encode())
    assert set(found) == {"a", "b", "c", "d", "e"}
    json.dumps(shown_captures(found))


@settings(max_examples=200, deadline=None)
@given(text=st.none() | st.text() | JSON.map(json.dumps))
def test_stored_progress_reads_back_whatever_the_column_holds(text: str | None) -> None:
    state = resume_state(text)
    assert all(outcome in ("done", "skipped") for outcome, _ in state.values())
    assert all(isinstance(captures, dict) for _, captures in state.values())


# --- planning and resuming -------------------------------------------------------------


def test_an_attempt_resumes_at_the_first_step_not_done() -> None:
    steps = FLOW.steps or []
    assert pending_steps(steps, {}) == 0
    assert pending_steps(steps, {"find": ("done", {})}) == 1
    assert pending_steps(steps, {"find": ("done", {}), "create": ("skipped", {})}) == 2
    done = {"find": ("done", {}), "create": ("done", {}), "log": ("done", {})}
    assert pending_steps(steps, done) == 3


def test_later_steps_see_captures_and_a_skipped_steps_as_null() -> None:
    steps = FLOW.steps or []
    view = steps_view(steps, {"find": ("done", {"contact": "501"}), "create": ("skipped", {})})
    assert view == {"find": {"contact": "501", "total": None}, "create": {"contact": None}}


def test_a_step_request_carries_its_idempotency_key_and_the_sinks_headers() -> None:
    steps = FLOW.steps or []
    event = sample("completed-inbound")
    request = DeliveryRequest("dlv-9", event["id"], "crm", "r", event)
    context = {
        **build_sink("crm", FLOW, SinkResources()).build(request).context,  # type: ignore[attr-defined]
        "steps": {"find": {"contact": None}, "create": {"contact": "77"}},
    }
    find = build_step_request(FLOW, steps[0], context, "dlv-9", now=0)
    assert find.method == "GET" and find.body == b""
    assert find.url == "https://crm.example/search?phone=%2B14155550123"
    assert find.headers["Idempotency-Key"] == "dlv-9:find"
    assert find.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Content-Type" not in find.headers
    log = build_step_request(FLOW, steps[2], context, "dlv-9", now=0)
    assert log.url == "https://crm.example/contacts/77/calls"
    assert json.loads(log.body) == {"contact": "77", "call": event["id"]}
    assert log.headers["Idempotency-Key"] == "dlv-9:log"


def test_a_step_whose_url_renders_no_url_fails_naming_the_step() -> None:
    flow = config({"name": "go", "url": "{{ variables.where }}"})
    with pytest.raises(Permanent, match="step 'go': url did not render"):
        build_step_request(flow, flow.steps[0], {"variables": {"where": "nowhere"}}, "d", now=0)  # type: ignore[index]


def test_the_message_pickles_for_a_parse_worker() -> None:
    event = sample("completed-inbound")
    request = DeliveryRequest(
        "dlv-1", event["id"], "crm", "r", event, steps_done={"find": ("done", {"contact": "5"})}
    )
    sink = build_sink("crm", FLOW, SinkResources())
    assert isinstance(sink, HttpStepsSink)
    message = sink.build(request)
    assert pickle.loads(pickle.dumps(message)) == message
    assert message.done == {"find": ("done", {"contact": "5"})}


def test_a_preview_shows_every_step_and_earlier_answers_as_unknown() -> None:
    event = sample("completed-inbound")
    sink = build_sink("crm", FLOW, SinkResources())
    shown = sink.preview(DeliveryRequest("dlv-1", event["id"], "crm", "r", event))
    assert [step["name"] for step in shown["steps"]] == ["find", "create", "log"]
    assert shown["steps"][0]["url"].startswith("https://crm.example/")
    assert shown["steps"][2]["body"]["contact"] == "⟨steps.find.contact: known once sent⟩"
    assert shown["steps"][1]["if"] == "not steps.find.contact"
    assert shown["steps"][0]["capture"] == {"contact": "results[0].id", "total": "total"}
    assert TOKEN not in json.dumps(shown)


def test_the_delivery_keeps_only_finished_steps_and_nothing_once_delivered() -> None:
    from router.store import StepOutcome

    steps = [StepOutcome("a", "done", {"x": 1}), StepOutcome("b", "failed")]
    assert json.loads(delivery_steps_column(steps, delivered=False) or "") == {
        "a": {"outcome": "done", "captures": {"x": 1}}
    }
    assert delivery_steps_column(steps, delivered=True) is None


def test_a_step_url_left_empty_leaves_the_sink_unconfigured_not_invalid() -> None:
    text = """version: 1
sinks:
  crm:
    type: http
    steps:
      - name: find
        url: ${CRM_SEARCH_URL:-}
rules:
  - name: all
    to: [crm]
"""
    loaded = parse_config(text, "rules.yaml", {})
    assert loaded.sinks["crm"].missing_settings() == ["steps.0.url"]
    assert any("is not configured (steps.0.url is empty)" in w.message for w in loaded.warnings)
