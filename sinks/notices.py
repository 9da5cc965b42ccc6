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

Several notices pending for one sink at once (many deliveries dying together: a CRM
outage) go out as one grouped notice (`grouped_notice`): a message titled "12
deliveries went dead", a line per sink, rule and error with its count, then the first
`LISTED` deliveries each with its console link; as JSON

    {"notice": "deliveries_dead", "count": N, "notices": [{...each as above...}]}

A single notice always looks as it did alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

NOTICE_KIND = "delivery_dead"
GROUP_KIND = "deliveries_dead"
# The deliveries a grouped notice's message names one by one (its JSON has them all).
LISTED = 25
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


def grouped_notice(notices: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The notice that tells of all of `notices` (oldest first) in one message; a single
    one is itself."""
    if len(notices) == 1:
        return notices[0]
    return {"notice": GROUP_KIND, "count": len(notices), "notices": list(notices)}


def is_grouped(notice: Mapping[str, Any]) -> bool:
    return notice.get("notice") == GROUP_KIND


def members(notice: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The single notices a notice tells of (itself when it is one)."""
    if not is_grouped(notice):
        return [notice]
    found = notice.get("notices")
    return [one for one in found if isinstance(one, Mapping)] if isinstance(found, list) else []


def _single_json(notice: Mapping[str, Any]) -> dict[str, Any]:
    names = ("notice", "sink", "rule", "delivery_id", "event_id", "error", "call", "link")
    return {name: notice.get(name) for name in names}


def notice_json(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The notice as the JSON document an http or stream sink sends (its fields in the
    documented order; `link` null without ROUTER_PUBLIC_URL); a grouped one as
    `{"notice": "deliveries_dead", "count", "notices": [...]}`."""
    if is_grouped(notice):
        listed = [_single_json(one) for one in members(notice)]
        return {"notice": GROUP_KIND, "count": len(listed), "notices": listed}
    return _single_json(notice)


def notice_summary(notice: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """(`sink (rule r)`, how many, error) of the deliveries a notice tells of, the most
    frequent first (then first seen)."""
    counts: dict[tuple[str, str], int] = {}
    for one in members(notice):
        key = (f"{one.get('sink')} (rule {one.get('rule')})", str(one.get("error") or "unknown"))
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: first seen first
    return [(where, count, error) for (where, error), count in ranked]


def notice_listed(notice: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], int]:
    """The deliveries a grouped notice's message names (the first `LISTED`), and how many
    more it does not."""
    found = members(notice)
    return found[:LISTED], max(len(found) - LISTED, 0)


def notice_error(notice: Mapping[str, Any]) -> str:
    """The last error; grouped: the most frequent one."""
    if is_grouped(notice):
        summary = notice_summary(notice)
        return summary[0][2] if summary else "unknown"
    return str(notice.get("error") or "unknown")


def notice_key(notice: Mapping[str, Any]) -> str:
    """The dead delivery's id; grouped: the first one's (a grouped notice is sent once)."""
    found = members(notice)
    return str(found[0].get("delivery_id") if found else notice.get("delivery_id"))


def listed_line(one: Mapping[str, Any]) -> str:
    """`delivery d-1 (crm, call c-1)`, how a grouped notice names one of its deliveries."""
    call = f", call {one.get('event_id')}" if one.get("event_id") else ""
    return f"delivery {one.get('delivery_id')} ({one.get('sink')}{call})"


def notice_bytes(notice: Mapping[str, Any]) -> bytes:
    document = notice_json(notice)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def notice_title(notice: Mapping[str, Any]) -> str:
    """`Delivery dead: crm (rule failed-calls)`; grouped: `12 deliveries went dead`."""
    if is_grouped(notice):
        return f"{len(members(notice))} deliveries went dead"
    return f"Delivery dead: {notice.get('sink')} (rule {notice.get('rule')})"


def notice_facts(notice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs a message shows, in order: the error, the ids, the call's
    main fields (masked already), the console link. Grouped: a pair per sink and rule
    (how many, the error), then one per listed delivery (its console link, else its
    call), then how many more."""
    if is_grouped(notice):
        return _grouped_facts(notice)
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


def _grouped_facts(notice: Mapping[str, Any]) -> list[tuple[str, str]]:
    facts = [(where, f"{count} × {error}") for where, count, error in notice_summary(notice)]
    listed, more = notice_listed(notice)
    for one in listed:
        facts.append((listed_line(one), str(one.get("link") or one.get("error") or "")))
    if more:
        facts.append(("More", f"and {more} more (in the console: dead deliveries)"))
    return facts


def notice_text(notice: Mapping[str, Any]) -> str:
    """The notice as plain text: the title, then a line per fact."""
    lines = [notice_title(notice), ""]
    lines.extend(f"{label}: {value}" for label, value in notice_facts(notice))
    return "\n".join(lines) + "\n"
