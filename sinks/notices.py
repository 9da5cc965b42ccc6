"""Notices of dead deliveries (`on_dead`, DESIGN.md section 16): what one holds, and how
a sink shows it.

A notice is made by the engine in the same transaction as the dead mark
(`router.engine.notices.dead_notice`) and stored with its delivery, so what it says
never changes afterwards: the sink and rule of the dead delivery, its last error, its
id and its call's, the call with its phone numbers masked, and, with
`ROUTER_PUBLIC_URL`, a link to the delivery's console page. Chat and email sinks show
it as a message (`notice_title`, `notice_facts`, `notice_text`); an `http` sink (and a
stream sink) sends it as JSON (`notice_json`):

    {"notice": "delivery_dead", "sink", "rule", "delivery_id", "event_id", "error",
     "call": {...masked...}, "link"}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

NOTICE_KIND = "delivery_dead"
# The call's fields a notice names in its words (all of them are in its JSON).
_CALL_FACTS = (
    ("Call", "id"),
    ("Status", "status"),
    ("Direction", "direction"),
    ("From", "fromNumber"),
    ("To", "toNumber"),
    ("Agent", "agentName"),
    ("SIP trunk", "sipTrunkId"),
    ("Hang-up cause", "hangupCause"),
)


def notice_json(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The notice as the JSON document an http or stream sink sends (its fields in the
    documented order; `link` null without ROUTER_PUBLIC_URL)."""
    names = ("notice", "sink", "rule", "delivery_id", "event_id", "error", "call", "link")
    return {name: notice.get(name) for name in names}


def notice_bytes(notice: Mapping[str, Any]) -> bytes:
    document = notice_json(notice)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def notice_title(notice: Mapping[str, Any]) -> str:
    """`Delivery dead: crm (rule failed-calls)`."""
    return f"Delivery dead: {notice.get('sink')} (rule {notice.get('rule')})"


def notice_facts(notice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs a message shows, in order: the error, the ids, the call's
    main fields (masked already), the console link."""
    facts = [
        ("Error", str(notice.get("error") or "unknown")),
        ("Delivery", str(notice.get("delivery_id"))),
    ]
    call = notice.get("call")
    if isinstance(call, Mapping):
        for label, name in _CALL_FACTS:
            value = call.get(name)
            if value not in (None, ""):
                facts.append((label, str(value)))
    elif notice.get("event_id"):
        facts.append(("Call", str(notice.get("event_id"))))
    if notice.get("link"):
        facts.append(("Console", str(notice["link"])))
    return facts


def notice_text(notice: Mapping[str, Any]) -> str:
    """The notice as plain text: the title, then a line per fact."""
    lines = [notice_title(notice), ""]
    lines.extend(f"{label}: {value}" for label, value in notice_facts(notice))
    return "\n".join(lines) + "\n"
