"""Slack threads (`thread_by`, DESIGN.md section 16), the pure part: which thread an
alert belongs to, and the parent message rewritten with its count of replies.

The thread key is read the way a digest's group key is (`router.rules.group_key`: the
values at the dotted paths, a missing one None) and written as the same canonical
JSON (`group_key_json`), so equal values always make the same key whatever their order
inside nested objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.rules import GroupSpec, group_key, group_key_json

# Where `SlackSink.build` puts the thread key of a message (taken out before sending).
THREAD_KEY_FIELD = "revring_thread_key"
MAX_BLOCKS = 50  # Slack's limit on a message's blocks


def thread_key(paths: Sequence[str], event: Mapping[str, Any]) -> str:
    """The thread of a call (a digest's: its first call's): its `thread_by` values as
    canonical JSON text, keyed by path."""
    return group_key_json(group_key(GroupSpec(tuple(paths), 0.0), event))


def parent_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What of a posted message `chat.update` rewrites: its text and blocks."""
    return {name: payload[name] for name in ("text", "blocks") if payload.get(name) is not None}


def reply_count_text(replies: int) -> str:
    return f"+{replies} more in thread"


def with_reply_count(message: Mapping[str, Any], replies: int) -> dict[str, Any]:
    """The parent `message` (text, blocks) showing its thread's `replies`: a context block
    at the end of its blocks (the last one replaced when it already has Slack's most),
    or, without blocks, a last line of its text."""
    count = reply_count_text(replies)
    counted = dict(message)
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        block = {"type": "context", "elements": [{"type": "mrkdwn", "text": count}]}
        counted["blocks"] = [*blocks[: MAX_BLOCKS - 1], block]
    else:
        text = str(message.get("text") or "")
        counted["text"] = f"{text}\n{count}" if text else count
    return counted
