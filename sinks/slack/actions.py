"""Acting from an alert's buttons (DESIGN.md section 12), the pure part: what a button
carries, reading Slack's interaction payload, who may act, what a silence made from a
call matches, and the words that tell the channel what was done. No I/O.

A button's `value` carries ids only (`{"d": delivery id, "s": sink, "f": seconds}`),
nothing secret: the router re-reads the delivery and its calls from the store and builds
the silence from what is stored, never from values in the payload.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qs

from router.core.units import format_duration
from router.operators import names_values
from router.operators.silences import iso
from router.rules import GroupSpec, group_key

ACTION_PREFIX: Final = "revring:"
ACK_ACTION_ID: Final = "revring:ack"
SILENCE_ACTION_PREFIX: Final = "revring:silence:"
ACTIONS_BLOCK_ID: Final = "revring_actions"
OUTCOME_BLOCK_ID: Final = "revring_outcome"
MAX_BUTTON_VALUE: Final = 2000
DEFAULT_SILENCE_BY: Final = ("status", "agentId")
FIELD_NOUNS: Final[Mapping[str, str]] = {
    "sipTrunkId": "trunk",
    "agentId": "agent",
    "campaignId": "campaign",
    "toNumber": "number",
    "fromNumber": "number",
}

ActionKind = Literal["silence", "acknowledge"]


class PayloadInvalid(ValueError):
    """An interaction payload the router cannot act on; the message says why."""


@dataclass(frozen=True)
class ButtonValue:
    delivery_id: str
    sink: str
    seconds: float | None = None  # silences only

    def encoded(self) -> str:
        value: dict[str, Any] = {"d": self.delivery_id, "s": self.sink}
        if self.seconds is not None:
            value["f"] = self.seconds
        return json.dumps(value, separators=(",", ":"))


def duration_label(seconds: float) -> str:
    """`24h` rather than `1d` up to three days (as people pick it), else the shortest form."""
    hours = seconds / 3600
    if hours.is_integer() and 1 <= hours < 72:
        return f"{int(hours)}h"
    return format_duration(seconds)


def silence_action_id(seconds: float) -> str:
    return SILENCE_ACTION_PREFIX + duration_label(seconds)


@dataclass(frozen=True)
class Click:
    """One click on one of the router's buttons, as Slack reported it."""

    action: ActionKind
    button: ButtonValue
    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    response_url: str | None
    message_ts: str | None
    message: Mapping[str, Any]

    @property
    def channel(self) -> str:
        """The channel for comments and the audit: `#name (C…)`, or whichever is known."""
        if self.channel_name and self.channel_id:
            return f"#{self.channel_name} ({self.channel_id})"
        return self.channel_id or (f"#{self.channel_name}" if self.channel_name else "")


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _object(payload: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`payload[key]` when it is a JSON object, else an empty one."""
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def parse_button_value(text: Any) -> ButtonValue:
    if not isinstance(text, str) or len(text) > MAX_BUTTON_VALUE:
        raise PayloadInvalid("the button's value is missing or too long")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise PayloadInvalid("the button's value is not the router's") from None
    if not isinstance(value, dict):
        raise PayloadInvalid("the button's value is not the router's")
    delivery_id, sink, seconds = value.get("d"), value.get("s"), value.get("f")
    if not (isinstance(delivery_id, str) and delivery_id and isinstance(sink, str) and sink):
        raise PayloadInvalid("the button's value names no delivery or sink")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
    ):
        raise PayloadInvalid("the button's value has a bad duration")
    return ButtonValue(delivery_id, sink, None if seconds is None else float(seconds))


def parse_interaction(body: bytes) -> Click:
    """The click in Slack's form-encoded `payload`, or `PayloadInvalid` saying why not."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise PayloadInvalid("the body is not UTF-8") from None
    payload_text = (form.get("payload") or [""])[0]
    if not payload_text:
        raise PayloadInvalid("the form has no payload field")
    try:
        payload = json.loads(payload_text)
    except (ValueError, RecursionError):
        raise PayloadInvalid("payload is not JSON") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid("payload is not a JSON object")
    if payload.get("type") != "block_actions":
        raise PayloadInvalid(f"only block_actions are handled, not {_text(payload.get('type'))!r}")
    actions = payload.get("actions")
    ours = [
        action
        for action in (actions if isinstance(actions, list) else [])
        if isinstance(action, dict) and _text(action.get("action_id")).startswith(ACTION_PREFIX)
    ]
    if not ours:
        raise PayloadInvalid("no action of the router's buttons in the payload")
    action = ours[0]
    action_id = _text(action.get("action_id"))
    button = parse_button_value(action.get("value"))
    kind: ActionKind
    if action_id == ACK_ACTION_ID:
        kind = "acknowledge"
    elif action_id.startswith(SILENCE_ACTION_PREFIX) and button.seconds is not None:
        kind = "silence"
    else:
        raise PayloadInvalid(f"unknown action {action_id!r}")
    user, channel = _object(payload, "user"), _object(payload, "channel")
    container, message = _object(payload, "container"), _object(payload, "message")
    user_id = _text(user.get("id"))
    if not user_id:
        raise PayloadInvalid("the payload names no user")
    response_url = _text(payload.get("response_url"), 3000) or None
    return Click(
        action=kind,
        button=button,
        user_id=user_id,
        user_name=_text(user.get("username") or user.get("name")),
        channel_id=_text(channel.get("id") or container.get("channel_id")),
        channel_name=_text(channel.get("name")),
        response_url=response_url,
        message_ts=_text(container.get("message_ts") or message.get("ts")) or None,
        message=message,
    )


def is_allowed(
    click: Click, allowed_users: Collection[str] | None, allowed_channels: Collection[str] | None
) -> bool:
    """Whether the allow-lists (None: anyone, anywhere) let this user act in this channel.
    Users are matched by id alone: a Slack user name is not unique, anyone can take one."""
    if allowed_users is not None and click.user_id not in allowed_users:
        return False
    if allowed_channels is not None:
        return bool({click.channel_id, click.channel_name} & set(allowed_channels))
    return True


def silence_fields(
    configured: Sequence[str] | None, rule_group_by: Sequence[str] | None
) -> tuple[str, ...]:
    """What "Silence similar" matches: `silence_by`, else the rule's group.by, else
    status + agentId."""
    return tuple(configured or rule_group_by or DEFAULT_SILENCE_BY)


def silence_condition(fields: Sequence[str], calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The `when` of a silence made from stored calls: equality on each field whose value
    all the calls share (a digest's calls share its group key); a field missing from all
    of them becomes `{exists: false}`. Fields whose values differ, or hold lists or
    objects, are left out; `PayloadInvalid` if no value is left to match on (a silence
    must name values)."""
    when: dict[str, Any] = {}
    spec = GroupSpec(tuple(fields), 0.0)
    values = [group_key(spec, call) for call in calls]
    for name in fields:
        seen = {json.dumps(found[name], sort_keys=True, default=str) for found in values}
        if len(seen) != 1:
            continue
        value = values[0][name]
        if value is None:
            when[name] = {"exists": False}
        elif isinstance(value, str | int | float | bool):
            when[name] = value
    if not names_values(when):  # the rule every silence follows (router.operators.silences)
        raise PayloadInvalid(
            f"the call has no value to silence on ({', '.join(fields)}); silence it from the"
            " console or the admin API instead"
        )
    return when


def digest_button_noun(group_by: Sequence[str]) -> str | None:
    """`trunk` for a digest grouped by sipTrunkId alone ("Silence this trunk for 1h")."""
    if len(group_by) != 1:
        return None
    return FIELD_NOUNS.get(group_by[0], group_by[0])


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def slack_time(timestamp: float) -> str:
    """`<!date^…>`: Slack shows the time in each reader's zone."""
    return f"<!date^{int(timestamp)}^{{date_short_pretty}} at {{time}}|{iso(timestamp)}>"


def silenced_text(user_id: str, seconds: float, until: float, *, extended: bool) -> str:
    verb = "Silence extended" if extended else "Silenced"
    return (
        f":no_bell: {verb} for {duration_label(seconds)} by {mention(user_id)}"
        f" until {slack_time(until)}"
    )


def acknowledged_text(user_id: str, at: float, *, already: bool) -> str:
    prefix = "Already acknowledged" if already else "Acknowledged"
    return f":eyes: {prefix} by {mention(user_id)} at {slack_time(at)}"


def updated_message(message: Mapping[str, Any], outcome: str) -> dict[str, Any]:
    """The original message with `outcome` as a context block under it (replacing an
    earlier outcome), buttons kept so a later click can extend or acknowledge."""
    found = message.get("blocks")
    blocks: list[Any] = found if isinstance(found, list) else []
    kept = [
        block
        for block in blocks
        if not (isinstance(block, dict) and block.get("block_id") == OUTCOME_BLOCK_ID)
    ]
    kept.append(
        {
            "type": "context",
            "block_id": OUTCOME_BLOCK_ID,
            "elements": [{"type": "mrkdwn", "text": outcome}],
        }
    )
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    return {"text": text or outcome, "blocks": kept[-50:]}
