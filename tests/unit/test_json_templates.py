"""Templates that produce JSON (HTTP bodies, Slack blocks): event text never changes the
structure of the document, and a delivery never dies of what a caller said."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from router.core.templates import Template, TemplateKind, TemplateRenderError, slack_escape
from sinks.base import DeliveryRequest, SinkResources
from sinks.http import HttpSinkConfig, build_request
from sinks.slack.sink import SlackSink, SlackSinkConfig

INJECTION = 'x","priority":"urgent'
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"))
CALL = {
    "id": "call-1",
    "direction": "INBOUND",
    "status": "FAILED",
    "fromNumber": "+14155550123",
    "toNumber": "+14155550199",
    "organizationId": "org",
    "agentId": "agent",
}


def delivery(**fields: Any) -> DeliveryRequest:
    event = {**CALL, **fields}
    return DeliveryRequest("del-1", "call-1", "sink", "rule", event)


def render_json(source: str, **context: Any) -> Any:
    return json.loads(Template(source, TemplateKind.JSON).render(context))


def http_body(template: str, **fields: Any) -> Any:
    config = HttpSinkConfig(type="http", url="https://crm.example.com/calls", body=template)
    return json.loads(build_request(config, delivery(**fields), now=0).body)


def slack_blocks(template: str, **fields: Any) -> list[dict[str, Any]]:
    config = SlackSinkConfig(type="slack", webhook_url="https://hooks.example/", blocks=template)
    sink = SlackSink("ops", config, SinkResources())
    blocks: list[dict[str, Any]] = sink.build(delivery(**fields))["blocks"]
    return blocks


def test_a_summary_cannot_rewrite_a_key_of_an_http_body() -> None:
    body = http_body('{"priority": "low", "summary": "{{ summary }}"}', summary=INJECTION)
    assert body == {"priority": "low", "summary": INJECTION}


def test_a_line_break_in_a_quoted_value_is_escaped_not_a_dead_delivery() -> None:
    body = http_body('{"summary": "{{ summary }}"}', summary="first line\nsecond\tline\r")
    assert body == {"summary": "first line\nsecond\tline\r"}


@given(ANY_TEXT)
@example(INJECTION)
@example('"}, "x": {"')
@example("\\")
@example("\ue000\ue001\ue002")
def test_quoted_text_stays_one_string_whatever_it_holds(text: str) -> None:
    document = render_json('{"priority": "low", "summary": "{{ summary }}"}', summary=text)
    assert document == {"priority": "low", "summary": text}


@given(ANY_TEXT)
@example("1, 2")
@example('[], {}, "x"')
def test_text_printed_outside_quotes_is_one_json_string(text: str) -> None:
    document = render_json('{"summary": {{ summary }}, "list": [{{ summary }}]}', summary=text)
    assert document == {"summary": text, "list": [text]}


@given(ANY_TEXT)
def test_tojson_inserts_a_whole_value_and_as_text_inside_quotes(text: str) -> None:
    document = render_json(
        '{"whole": {{ summary | tojson }}, "quoted": "{{ summary | tojson }}"}', summary=text
    )
    assert document == {"whole": text, "quoted": json.dumps(text, ensure_ascii=False)}


def test_values_that_are_not_text_print_as_json_values_outside_quotes() -> None:
    document = render_json(
        '{"n": {{ n }}, "none": {{ none }}, "flag": {{ flag }}, "list": {{ items }}, '
        '"quoted": "{{ n }} {{ none }}"}',
        n=108,
        none=None,
        flag=True,
        items=[1, "a"],
    )
    assert document == {"n": 108, "none": None, "flag": True, "list": [1, "a"], "quoted": "108 "}


def test_a_missing_value_is_empty_in_a_string_and_null_as_a_value() -> None:
    source = '{"a": "{{ nothing }}", "b": {{ nothing }}, "c": {{ variables.tier.name | tojson }}}'
    assert render_json(source, variables=None) == {"a": "", "b": None, "c": None}


def test_a_render_error_of_another_kind_is_still_an_error() -> None:
    with pytest.raises(TemplateRenderError, match="TypeError"):
        Template('{"a": {{ status + 1 }}}', TemplateKind.JSON).render({"status": "FAILED"})


def test_a_comma_from_an_inline_if_still_separates_items() -> None:
    source = '[{% for item in items %}{{ item }}{{ "," if not loop.last }}{% endfor %}]'
    assert render_json(source, items=["a", 2, None]) == ["a", 2, None]


@given(ANY_TEXT)
@example(",")
@example(" , ")
@example("")
def test_text_never_adds_or_removes_an_element(text: str) -> None:
    document = render_json('[{{ a }}, {{ b }}, "{{ a }}"]', a=text, b=text)
    assert document == [text, text, text]


def test_a_value_printed_right_after_a_backslash_is_a_render_error_not_garbage() -> None:
    with pytest.raises(TemplateRenderError, match="valid JSON"):
        Template('{"a": "x\\{{ summary }}"}', TemplateKind.JSON).render({"summary": "y"})


def test_the_reserved_marker_characters_cannot_be_written_in_a_json_template() -> None:
    with pytest.raises(ValueError, match="reserved character"):
        Template('{"a": "\ue000"}', TemplateKind.JSON)


SECTION = '[{"type": "section", "text": {"type": "mrkdwn", "text": "Summary: {{ summary }}"}}]'
BLOCK_INJECTION = (
    'x"}}, {"type": "section", "text": {"type": "mrkdwn", '
    '"text": "<!channel> <https://evil.example|your bank>'
)


def test_a_summary_cannot_add_a_slack_block_or_a_live_mention() -> None:
    blocks = slack_blocks(SECTION, summary=BLOCK_INJECTION)
    assert len(blocks) == 1
    assert blocks[0]["text"]["text"] == "Summary: " + slack_escape(BLOCK_INJECTION)
    assert "<" not in json.dumps(blocks, ensure_ascii=False)


def test_tojson_in_blocks_stays_escaped_for_mrkdwn() -> None:
    template = '[{"type": "section", "text": {"type": "mrkdwn", "text": {{ summary | tojson }}}}]'
    blocks = slack_blocks(template, summary="<!channel> & <https://evil.example|x>")
    assert blocks[0]["text"]["text"] == "&lt;!channel&gt; &amp; &lt;https://evil.example|x&gt;"


@given(ANY_TEXT)
@example(BLOCK_INJECTION)
def test_blocks_keep_their_shape_and_no_angle_bracket_whatever_the_summary(text: str) -> None:
    template = (
        '[{"type": "section", "text": {"type": "mrkdwn", "text": "{{ summary }}"}},'
        ' {"type": "context", "elements": [{"type": "mrkdwn", "text": {{ summary | tojson }}}]}]'
    )
    blocks = slack_blocks(template, summary=text or "-")
    assert [block["type"] for block in blocks] == ["section", "context"]
    texts = [blocks[0]["text"]["text"], blocks[1]["elements"][0]["text"]]
    assert all(not {"<", ">"} & set(shown) for shown in texts)
