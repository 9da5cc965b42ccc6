"""Slack threads' pure parts (DESIGN.md section 16): the thread key of a call, the parent
rewritten with its count, and what `check` says about `thread_by`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config.schema import ConfigError, parse_config
from sinks.base import DeliveryRequest, SinkResources
from sinks.registry import build_sink
from sinks.slack.sink import SlackSinkConfig
from sinks.slack.threads import THREAD_KEY_FIELD, thread_key, with_reply_count


def test_the_thread_key_is_the_thread_by_values_as_canonical_json() -> None:
    call = {"sipTrunkId": "sip-7", "variables": {"tier": "gold"}, "status": "FAILED"}
    assert thread_key(["sipTrunkId"], call) == '{"sipTrunkId":"sip-7"}'
    both = thread_key(["sipTrunkId", "variables.tier"], call)
    assert json.loads(both) == {"sipTrunkId": "sip-7", "variables.tier": "gold"}
    # A call without the field shares the key of every such call.
    assert thread_key(["sipTrunkId"], {}) == '{"sipTrunkId":null}'


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=5))
def test_equal_values_make_equal_keys_whatever_their_order(value: dict[str, int]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert thread_key(["variables"], {"variables": value}) == thread_key(
        ["variables"], {"variables": reordered}
    )


def test_the_parent_shows_its_count_in_a_last_context_block_or_line() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "FAILED"}}]
    counted = with_reply_count({"text": "FAILED", "blocks": blocks}, 12)
    assert counted["blocks"][:-1] == blocks
    assert counted["blocks"][-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "+12 more in thread"}],
    }
    assert with_reply_count({"text": "FAILED"}, 1) == {"text": "FAILED\n+1 more in thread"}
    full = [{"type": "divider"}] * 50
    assert len(with_reply_count({"blocks": full}, 3)["blocks"]) == 50


def _sink(**options: object) -> object:
    config = SlackSinkConfig(type="slack", token="xoxb-t", channel="#ops", **options)
    return build_sink("ops-slack", config, SinkResources())


def test_build_marks_the_message_with_its_thread_key_in_bot_mode_only() -> None:
    call = {"id": "c1", "status": "FAILED", "sipTrunkId": "sip-7"}
    request = DeliveryRequest("d1", "c1", "ops-slack", "failed", call)
    message = _sink(thread_by=["sipTrunkId"]).build(request)  # type: ignore[attr-defined]
    assert message[THREAD_KEY_FIELD] == '{"sipTrunkId":"sip-7"}'
    assert THREAD_KEY_FIELD not in _sink().build(request)  # type: ignore[attr-defined]
    webhook = SlackSinkConfig(
        type="slack", webhook_url="https://hooks.example/x", thread_by="sipTrunkId"
    )
    hooked = build_sink("s", webhook, SinkResources()).build(request)
    assert THREAD_KEY_FIELD not in hooked


HEAD = """version: 1
sinks:
  ops-slack:
    type: slack
"""
RULES = """rules:
  - name: failed
    when: {status: FAILED}
    to: [ops-slack]
"""


def test_check_warns_on_thread_by_in_webhook_mode() -> None:
    config = parse_config(
        HEAD + "    webhook_url: https://hooks.example/x\n    thread_by: [sipTrunkId]\n" + RULES,
        "rules.yaml",
        environ={},
    )
    [warning] = [str(w) for w in config.warnings if "thread_by" in str(w)]
    assert warning.startswith("rules.yaml:6:16: sinks.ops-slack.thread_by: threads need bot mode")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("thread_by: [sipTrunkID]", "'sipTrunkID' is not a field of RevRing's post-call event"),
        ("thread_by: []", "at least one field"),
        ("thread_by: ['a..b']", "not a field path"),
        ("thread_for: 0s", "thread_for must be longer than 0s"),
    ],
)
def test_check_errors_on_bad_thread_settings_at_their_place(setting: str, expected: str) -> None:
    text = HEAD + '    token: xoxb-t\n    channel: "#ops"\n    ' + setting + "\n" + RULES
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "rules.yaml", environ={})
    [error] = [str(error) for error in caught.value.errors]
    assert error.startswith("rules.yaml:7:")
    assert expected in error
    if "sipTrunkID" in setting:
        assert "did you mean 'sipTrunkId'" in error
