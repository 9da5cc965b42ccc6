"""The pure part of acting from Slack's buttons: button values, reading the interaction
payload, allow-lists, what a silence made from a call matches, the updated message, the
sink's settings as `check` validates them, and the buttons on alerts and digests."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config.schema import ConfigError, parse_config
from router.operators.silences import parse_silence_request
from sinks.base import DeliveryRequest, Digest, SinkResources
from sinks.registry import build_sink
from sinks.slack.actions import (
    OUTCOME_BLOCK_ID,
    ButtonValue,
    Click,
    PayloadInvalid,
    duration_label,
    is_allowed,
    parse_button_value,
    parse_interaction,
    silence_condition,
    silence_fields,
    updated_message,
)
from sinks.slack.message import ActionButtons, actions_block
from sinks.slack.sink import SlackSinkConfig
from tests.conftest import fresh_event


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click_payload(**changes: Any) -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": "alice"},
        "channel": {"id": "C1", "name": "ops-alerts"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
        "message": {"ts": "1.2", "text": "alert", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [
            {
                "action_id": "revring:silence:1h",
                "value": ButtonValue("del-1", "ops-slack", 3600.0).encoded(),
            }
        ],
    }
    payload.update(changes)
    return payload


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=100))
def test_a_button_value_reads_back_as_written(delivery_id: str, sink: str) -> None:
    for seconds in (None, 60.0, 86400.0):
        value = ButtonValue(delivery_id, sink, seconds)
        assert parse_button_value(value.encoded()) == value


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "[1]", '{"d": "x"}', '{"s": "x"}', '{"d": "", "s": "x"}',
     '{"d": "x", "s": "y", "f": true}', '{"d": "x", "s": "y", "f": -1}',
     '{"d": "x", "s": "y", "f": "1h"}', '{"d": "' + "x" * 2000 + '", "s": "y"}'],
)  # fmt: skip
def test_a_foreign_or_damaged_button_value_is_refused(text: Any) -> None:
    with pytest.raises(PayloadInvalid):
        parse_button_value(text)


def test_a_click_is_read_from_the_form() -> None:
    click = parse_interaction(form(click_payload()))
    assert click.action == "silence"
    assert click.button == ButtonValue("del-1", "ops-slack", 3600.0)
    assert (click.user_id, click.user_name) == ("U1", "alice")
    assert (click.channel_id, click.channel_name, click.channel) == (
        "C1",
        "ops-alerts",
        "#ops-alerts (C1)",
    )
    assert (click.message_ts, click.response_url) == (
        "1.2",
        "https://hooks.slack.com/actions/T/1/x",
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"token=x", "no payload"),
        (urlencode({"payload": "{nope"}).encode(), "not JSON"),
        (form([1, 2]), "not a JSON object"),
        (form(click_payload(type="view_submission")), "only block_actions"),
        (form(click_payload(actions=[{"action_id": "open_recording"}])), "no action"),
        (form(click_payload(actions="x")), "no action"),
        (
            form(
                click_payload(
                    actions=[{"action_id": "revring:reboot", "value": '{"d":"x","s":"y"}'}]
                )
            ),
            "unknown action",
        ),
        (
            form(
                click_payload(
                    actions=[{"action_id": "revring:silence:1h", "value": '{"d":"x","s":"y"}'}]
                )
            ),
            "unknown action",
        ),  # a silence without a duration
        (form(click_payload(user={})), "no user"),
    ],
)
def test_an_unreadable_interaction_says_why(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadInvalid, match=problem):
        parse_interaction(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.binary(max_size=300))
def test_any_body_is_a_click_or_payload_invalid(body: bytes) -> None:
    with contextlib.suppress(PayloadInvalid):
        assert isinstance(parse_interaction(body), Click)


@given(
    st.sampled_from(["user", "channel", "container", "message", "actions", "response_url"]), JSON
)
def test_any_value_in_a_field_is_a_click_or_payload_invalid(name: str, value: Any) -> None:
    with contextlib.suppress(PayloadInvalid):
        click = parse_interaction(form(click_payload(**{name: value})))
        assert click.button.delivery_id == "del-1" and click.user_id


def a_click(
    user: str = "U1", name: str = "alice", channel: str = "C1", cname: str = "ops"
) -> Click:
    return Click("acknowledge", ButtonValue("d", "s"), user, name, channel, cname, None, None, {})


def test_allow_lists_match_user_ids_channel_ids_or_names_and_both_must_hold() -> None:
    assert is_allowed(a_click(), None, None)
    assert is_allowed(a_click(), {"U1"}, None)
    assert is_allowed(a_click(), {"U1"}, {"ops"})
    assert is_allowed(a_click(), None, {"C1"})
    assert not is_allowed(a_click(user="U2", name="eve"), {"U1", "alice"}, None)
    assert not is_allowed(a_click(), {"U1"}, {"C9", "other"})
    assert not is_allowed(a_click(name=""), {"bob"}, None)


def test_allowed_users_never_matches_a_user_name() -> None:
    mallory = a_click(user="U0MALLORY", name="alice")
    assert not is_allowed(mallory, ("alice",), None)
    assert not is_allowed(mallory, ("alice", "U0ALICE"), {"ops"})
    assert is_allowed(a_click(user="U0ALICE", name="alice"), ("U0ALICE",), None)


def test_what_silence_similar_matches_by_default() -> None:
    assert silence_fields(["sipTrunkId"], ["agentId"]) == ("sipTrunkId",)
    assert silence_fields(None, ("sipTrunkId",)) == ("sipTrunkId",)
    assert silence_fields(None, None) == ("status", "agentId")


def test_a_silence_matches_the_stored_calls_shared_values() -> None:
    call = fresh_event(status="FAILED", agentId="agent-7", sipTrunkId="t-1")
    assert silence_condition(("status", "agentId"), [call]) == {
        "status": "FAILED",
        "agentId": "agent-7",
    }
    other = fresh_event(status="CANCELED", agentId="agent-7", sipTrunkId="t-1")
    assert silence_condition(("sipTrunkId", "status"), [call, other]) == {"sipTrunkId": "t-1"}
    call["variables"] = {"tier": "gold"}
    assert silence_condition(("variables.tier", "metrics"), [call]) == {"variables.tier": "gold"}
    del call["agentId"]
    assert silence_condition(("status", "agentId"), [call]) == {
        "status": "FAILED",
        "agentId": {"exists": False},
    }


def test_a_call_with_nothing_to_match_on_makes_no_silence() -> None:
    call = fresh_event(status="FAILED")
    call.pop("sipTrunkId", None)
    with pytest.raises(PayloadInvalid, match="no value to silence on"):
        silence_condition(("sipTrunkId",), [call])
    with pytest.raises(PayloadInvalid):
        silence_condition(("status",), [call, fresh_event(status="COMPLETED")])


SILENCE_BY_VALUES = st.one_of(
    st.none(), st.text(max_size=3), st.integers(), st.booleans(), st.lists(st.integers())
)


@given(
    st.lists(st.sampled_from(["status", "agentId", "sipTrunkId", "variables.tier"]), min_size=1),
    st.lists(
        st.dictionaries(
            st.sampled_from(["status", "agentId", "sipTrunkId", "variables"]),
            SILENCE_BY_VALUES | st.dictionaries(st.just("tier"), SILENCE_BY_VALUES),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_silence_similar_makes_a_silence_that_names_values_or_none(fields, calls) -> None:
    try:
        when = silence_condition(fields, calls)
    except PayloadInvalid as exc:
        assert "no value to silence on" in str(exc)
        return
    record = parse_silence_request({"when": when, "for": "1h"}, now=1e9, known_sinks={"s"})
    assert json.loads(record.when) == when


def test_the_updated_message_keeps_the_alert_and_replaces_an_earlier_outcome() -> None:
    alert = {"text": "alert", "blocks": [{"type": "header"}, {"type": "actions"}]}
    once = updated_message(alert, "first")
    twice = updated_message(once, "second")
    assert twice["text"] == "alert"
    assert twice["blocks"][:2] == alert["blocks"]
    assert [b for b in twice["blocks"] if b.get("block_id") == OUTCOME_BLOCK_ID] == [
        {
            "type": "context",
            "block_id": OUTCOME_BLOCK_ID,
            "elements": [{"type": "mrkdwn", "text": "second"}],
        }
    ]
    assert updated_message({}, "done") == {
        "text": "done",
        "blocks": [twice["blocks"][-1] | {"elements": [{"type": "mrkdwn", "text": "done"}]}],
    }


# --- the sink's settings, as `check` sees them ------------------------------------------

HEAD = """
version: 1
sinks:
  ops-slack:
    type: slack
    webhook_url: https://hooks.slack.com/services/T/B/x
"""
RULES = """
rules:
  - name: failed
    when: {status: FAILED}
    to: [ops-slack]
"""


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("    actions: {acknowledge: true}\n", "actions need signing_secret"),
        ("    signing_secret: s\n    actions: {silence_for: [0s]}\n", "longer than 0s"),
        ("    signing_secret: s\n    actions: {silence_for: [400d]}\n", "at most 366d"),
        ("    signing_secret: s\n    actions: {silence_for: [soon]}\n", "expected a duration"),
        ("    signing_secret: s\n    actions: {silence_by: []}\n", "at least one field"),
        ("    signing_secret: s\n    actions: {silence_by: ['a..b']}\n", "not a field path"),
        (
            "    signing_secret: s\n    actions: {silence_for: [1h, 2h, 3h, 4h, 5h, 6h]}\n",
            "at most 5",
        ),
        ("    signing_secret: s\n    actions: {silence: [1h]}\n", "silence"),
    ],
)
def test_check_refuses_bad_actions(settings: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + settings + RULES, "rules.yaml", environ={})
    assert problem in str(caught.value.errors)


def test_check_warns_at_each_allowed_user_that_is_not_a_user_id() -> None:
    settings = (
        "    signing_secret: s\n"
        "    actions:\n"
        "      allowed_users: [U0123ABCD, alice, W0GUEST1, '@bob', u0lower]\n"
    )
    config = parse_config(HEAD + settings + RULES, "rules.yaml", environ={})
    sink = config.sinks["ops-slack"]
    assert isinstance(sink, SlackSinkConfig) and sink.actions is not None
    assert sink.actions.allowed_users == ("U0123ABCD", "alice", "W0GUEST1", "bob", "u0lower")
    shown = [str(warning) for warning in config.warnings]
    assert shown == [
        f"rules.yaml:9:{column}: sinks.ops-slack.actions.allowed_users.{index}: {name!r} is not"
        " a Slack user id (U or W, then capitals and digits, such as U0123ABCD): names are"
        " not unique, so only ids are matched and this entry lets no one act"
        for index, column, name in ((1, 34, "alice"), (3, 51, "bob"), (4, 59, "u0lower"))
    ]


def test_check_accepts_the_designs_example() -> None:
    settings = (
        "    signing_secret: ${SLACK_SIGNING_SECRET}\n"
        "    actions:\n"
        "      silence_by: sipTrunkId\n"
        "      silence_for: [1h, 4h, 24h]\n"
        "      acknowledge: true\n"
        "      allowed_channels: ['#ops-alerts']\n"
    )
    config = parse_config(
        HEAD + settings + RULES, "rules.yaml", environ={"SLACK_SIGNING_SECRET": "x"}
    )
    sink = config.sinks["ops-slack"]
    assert isinstance(sink, SlackSinkConfig) and sink.actions is not None
    assert sink.actions.silence_by == ("sipTrunkId",)
    assert sink.actions.silence_for == (3600.0, 14400.0, 86400.0)
    assert sink.actions.allowed_channels == frozenset({"ops-alerts"})
    assert "x" not in repr(sink.signing_secret)


# --- the buttons on the message -----------------------------------------------------------


def rendered(**settings: Any) -> dict[str, Any]:
    config = SlackSinkConfig(type="slack", webhook_url="https://hooks.slack.com/x", **settings)
    sink = build_sink("ops-slack", config, SinkResources())
    event = fresh_event(status="FAILED")
    return sink.build(DeliveryRequest("del-1", event["id"], "ops-slack", "failed", event))


def actions_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in message.get("blocks", []) if block["type"] == "actions"]


def test_without_a_signing_secret_no_buttons_are_sent() -> None:
    assert not any(
        element.get("action_id", "").startswith("revring:")
        for block in actions_of(rendered())
        for element in block["elements"]
    )
    assert actions_of(rendered(signing_secret="", actions={})) == []  # an empty ${VAR}: off


def test_with_a_signing_secret_the_alert_ends_with_the_buttons() -> None:
    message = rendered(signing_secret="s3cret", actions={"silence_for": ["30m"]})
    block = message["blocks"][-1]
    assert block["block_id"] == "revring_actions"
    assert [e["action_id"] for e in block["elements"]] == ["revring:ack", "revring:silence:30m"]
    assert parse_button_value(block["elements"][1]["value"]) == ButtonValue(
        "del-1", "ops-slack", 1800.0
    )
    assert all("s3cret" not in json.dumps(e) for e in block["elements"])


def test_a_text_only_message_gets_a_section_and_the_buttons() -> None:
    message = rendered(signing_secret="s", text="{{ status }} call", actions={"acknowledge": False})
    assert [b["type"] for b in message["blocks"]] == ["section", "actions"]
    assert message["blocks"][0]["text"]["text"] == "FAILED call"
    assert [e["action_id"] for e in message["blocks"][1]["elements"]] == [
        "revring:silence:1h",
        "revring:silence:4h",
        "revring:silence:24h",
    ]


def test_a_digest_grouped_by_trunk_offers_silence_this_trunk() -> None:
    digest = Digest({"sipTrunkId": "t-1"}, "a", "b", [fresh_event()])
    buttons = ActionButtons("ops", (3600.0,))
    block = actions_block(buttons, "digest-1", digest)
    assert block is not None
    assert block["elements"][1]["text"]["text"] == ":no_bell: Silence this trunk for 1h"
    by_two = Digest({"sipTrunkId": "t-1", "status": "FAILED"}, "a", "b", [fresh_event()])
    block = actions_block(buttons, "digest-1", by_two)
    assert block is not None
    assert block["elements"][1]["text"]["text"] == ":no_bell: Silence similar for 1h"


def test_durations_read_as_people_pick_them() -> None:
    assert [duration_label(s) for s in (1800, 3600, 86400, 3 * 86400, 5400)] == [
        "30m",
        "1h",
        "24h",
        "3d",
        "90m",
    ]


def test_no_buttons_when_a_value_would_pass_slacks_2000_characters() -> None:
    assert actions_block(ActionButtons("ops", (3600.0,)), "d" * 2000, None) is None
