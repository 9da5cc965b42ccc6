"""The Microsoft Teams message for a routed call: the default Adaptive Card (1.4), a `card`
template instead, and fitting the message under Teams' 28 KB limit. Pure: no I/O.

Every piece of call text placed in the card goes through `teams_escape`, so a caller
cannot bold, link or mention anything through a summary or transcript (a `card`
template escapes what it prints the same way). A card that would be too big has its
longest texts cut (ending in `…`) and then its longest lists shortened; a delivery is
never refused for its size.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from router.core.templates import (
    Template,
    TemplateRenderError,
    human_duration,
    teams_escape,
    truncate_text,
)
from sinks.base import DeliveryRequest, Digest, Permanent, template_context
from sinks.call_text import (
    call_headline,
    call_line,
    counts_text,
    digest_line,
    group_key_text,
    present,
    safe_link,
    shown_number,
    shown_text,
    shown_transcript,
)
from sinks.notices import notice_facts, notice_title

CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION: Final = "1.4"
# Teams refuses messages over about 28 KB; stay clear of it, envelope included.
MAX_MESSAGE_BYTES: Final = 27 * 1024
MAX_SUMMARY_TEXT: Final = 3000
MAX_FACT_TEXT: Final = 500
DIGEST_CALLS_LISTED: Final = 10

STATUS_SYMBOL: Final[Mapping[str, str]] = {
    "COMPLETED": "✅",
    "FAILED": "🔴",
    "TRANSFERRED": "↪️",
    "CANCELED": "🚫",
}
UNKNOWN_STATUS_SYMBOL: Final = "❔"
DIGEST_SYMBOL: Final = "🛎️"
STATUS_COLOR: Final[Mapping[str, str]] = {"FAILED": "Attention", "COMPLETED": "Good"}

_SHORTEST_CUT: Final = 40
_UNCUT_SETTINGS: Final = frozenset({"type", "$schema", "version", "contentType", "id"})
_ESCAPED_CHARACTER = re.compile(r"\\([\\`*_~\[\]<>.+-])")


def status_symbol(status: Any) -> str:
    return STATUS_SYMBOL.get(str(status).upper(), UNKNOWN_STATUS_SYMBOL)


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _label(text: str) -> dict[str, Any]:
    return _text(text, weight="Bolder", spacing="Medium")


def _fact(title: str, value: Any) -> dict[str, str]:
    return {"title": title, "value": teams_escape(truncate_text(str(value), MAX_FACT_TEXT))}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def default_call_card(
    event: Mapping[str, Any], *, rule: str, mask_phone_numbers: bool = True
) -> dict[str, Any]:
    """The default card for one call: what the Slack alert says, as an Adaptive Card."""
    masked = mask_phone_numbers
    status = str(event.get("status") or "UNKNOWN")
    facts = []
    agent = event.get("agentName") or event.get("agentId")
    if present(agent):
        facts.append(_fact("Agent", agent))
    facts.append(_fact("From", shown_number(event.get("fromNumber"), masked)))
    facts.append(_fact("To", shown_number(event.get("toNumber"), masked)))
    if present(event.get("durationSeconds")):
        facts.append(_fact("Duration", human_duration(event["durationSeconds"])))
    if present(event.get("hangupCause")):
        facts.append(_fact("Hang-up cause", event["hangupCause"]))
    if present(event.get("errorMessage")):
        facts.append(_fact("Error", shown_text(event["errorMessage"], masked)))
    when = event.get("startedAt") or event.get("initiatedAt")
    if present(when):
        facts.append(_fact("When", when))

    title = f"{status_symbol(status)} {call_headline(event)}"
    body: list[dict[str, Any]] = [
        _text(
            teams_escape(title),
            size="Medium",
            weight="Bolder",
            color=STATUS_COLOR.get(status.upper(), "Default"),
        ),
        {"type": "FactSet", "facts": facts},
    ]
    if present(event.get("summary")):
        summary = truncate_text(shown_text(event["summary"], masked), MAX_SUMMARY_TEXT)
        body += [_label("Summary"), _text(teams_escape(summary))]
    excerpt = shown_transcript(event.get("transcript"), masked)
    if excerpt:
        lines = excerpt.split("\n")
        body.append(_label("Transcript"))
        body += [_text(teams_escape(line), spacing="None", isSubtle=True) for line in lines]
    body.append(
        _text(
            teams_escape(f"Call {event.get('id')} · rule {rule}"),
            size="Small",
            isSubtle=True,
            spacing="Medium",
        )
    )
    actions = []
    recording = safe_link(event.get("recordingUrl"))
    if recording is not None:
        actions.append({"type": "Action.OpenUrl", "title": "Open recording", "url": recording})
    return _card(body, actions)


def default_digest_card(
    digest: Digest, *, rule: str, mask_phone_numbers: bool = True
) -> dict[str, Any]:
    """The default card for a grouped rule: the count, breakdowns, and the first calls."""
    masked = mask_phone_numbers
    calls = list(digest.calls)
    facts = [
        _fact("By status", counts_text(calls, "status") or "–"),
        _fact("By hang-up cause", counts_text(calls, "hangupCause") or "–"),
        _fact("Window", f"{digest.window_start} – {digest.window_end}"),
    ]
    key = group_key_text(digest.group_key, masked=masked)
    if key:
        facts.insert(0, _fact("Group", key))
    body: list[dict[str, Any]] = [
        _text(
            teams_escape(f"{DIGEST_SYMBOL} {digest_line(digest, masked=masked)}"),
            size="Medium",
            weight="Bolder",
        ),
        {"type": "FactSet", "facts": facts},
    ]
    if calls:
        body.append(_label("First calls" if len(calls) > DIGEST_CALLS_LISTED else "Calls"))
        for call in calls[:DIGEST_CALLS_LISTED]:
            line = f"{status_symbol(call.get('status'))} {call_line(call, masked=masked)}"
            body.append(_text(teams_escape(truncate_text(line, 300)), spacing="None"))
        if len(calls) > DIGEST_CALLS_LISTED:
            more = f"…and {len(calls) - DIGEST_CALLS_LISTED} more"
            body.append(_text(more, spacing="None", isSubtle=True))
    body.append(_text(teams_escape(f"rule {rule}"), size="Small", isSubtle=True))
    return _card(body, [])


def message(card: Mapping[str, Any]) -> dict[str, Any]:
    """The Workflows webhook body carrying one Adaptive Card."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": dict(card)}
        ],
    }


def message_size(document: Any) -> int:
    """Bytes of `document` as the sink sends it (compact UTF-8 JSON)."""
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())


def _cuttable(name: Any) -> bool:
    if not isinstance(name, str):
        return True
    return name not in _UNCUT_SETTINGS and not name.lower().endswith("url")


def _strings(node: Any) -> list[tuple[Any, Any, str]]:
    """(container, key, text) for every string in the card a cut may shorten: not a
    `type`, a schema or a URL, and longer than the shortest cut."""
    found: list[tuple[Any, Any, str]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for name, value in items:
        if isinstance(value, dict | list):
            found += _strings(value)
        elif isinstance(value, str) and len(value) > _SHORTEST_CUT and _cuttable(name):
            found.append((node, name, value))
    return found


def _lists(node: Any) -> list[list[Any]]:
    found: list[list[Any]] = []
    if isinstance(node, list):
        found.append(node)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        if isinstance(child, dict | list):
            found += _lists(child)
    return found


def _cut_escaped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with `…`, never leaving a lone escaping backslash."""
    kept = text[: max(limit - 1, 0)]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + "…"


def fit_message(document: dict[str, Any], limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """A copy of the message no bigger than `limit` bytes: the longest text is cut first
    (by as many characters as there are bytes too many, never below 40 characters), and
    so on; then the longest lists lose their last items. Returns the smallest it can
    make when even that is too big."""
    fitted = copy.deepcopy(document)
    while (excess := message_size(fitted) - limit) > 0:
        candidates = _strings(fitted)
        if candidates:
            container, key, text = max(candidates, key=lambda found: len(found[2]))
            # Each character cut saves at least one byte; `…` costs three.
            container[key] = _cut_escaped(text, max(_SHORTEST_CUT, len(text) - excess - 3))
            continue
        lists = [found for found in _lists(fitted) if len(found) > 1]
        if not lists:
            break
        longest = max(lists, key=len)
        # Drop about as many items as the excess holds, at least one, keeping the first.
        per_item = max(message_size(longest) // len(longest), 1)
        dropped = min(len(longest) - 1, -(-excess // per_item))
        del longest[len(longest) - dropped :]
    return fitted


def unescape_urls(node: Any) -> Any:
    """A card with the Markdown escapes a template printed into URL settings (`url`,
    `iconUrl`…) taken back out: URLs are not Markdown, and a `\\_` would break one."""
    if isinstance(node, dict):
        return {
            key: _ESCAPED_CHARACTER.sub(r"\1", value)
            if isinstance(value, str) and key.lower().endswith("url")
            else unescape_urls(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [unescape_urls(item) for item in node]
    return node


def parse_card(rendered: str) -> dict[str, Any]:
    """The card a `card` template rendered; ValueError unless an AdaptiveCard object."""
    try:
        card = json.loads(rendered)
    except ValueError as exc:
        raise ValueError(f"card template did not render valid JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise ValueError('card template must render a JSON object with "type": "AdaptiveCard"')
    return card


def notice_card(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The card of a dead delivery's notice (`sinks.notices`): its title, its facts and,
    with ROUTER_PUBLIC_URL, a button to the delivery's console page."""
    body: list[dict[str, Any]] = [
        _text(
            teams_escape(notice_title(notice)), size="Medium", weight="Bolder", color="Attention"
        ),
        {
            "type": "FactSet",
            "facts": [
                _fact(label, value) for label, value in notice_facts(notice) if label != "Console"
            ],
        },
    ]
    actions = []
    link = notice.get("link")
    if isinstance(link, str) and link:
        actions.append({"type": "Action.OpenUrl", "title": "Open in the console", "url": link})
    return _card(body, actions)


def build_message(
    request: DeliveryRequest,
    *,
    mask_phone_numbers: bool = True,
    card_template: Template | None = None,
) -> dict[str, Any]:
    """The webhook body for one delivery, fitted to Teams' size limit; raises `Permanent`
    when the `card` template fails on this call or does not render a card."""
    if request.notice is not None:
        card = notice_card(request.notice)
    elif card_template is not None:
        try:
            card = unescape_urls(parse_card(card_template.render(template_context(request))))
        except TemplateRenderError as exc:
            raise Permanent(f"teams: card: {exc}") from None
        except ValueError as exc:
            raise Permanent(f"teams: {exc}") from None
    elif request.digest is not None:
        card = default_digest_card(
            request.digest, rule=request.rule, mask_phone_numbers=mask_phone_numbers
        )
    else:
        card = default_call_card(
            request.event, rule=request.rule, mask_phone_numbers=mask_phone_numbers
        )
    return fit_message(message(card))
