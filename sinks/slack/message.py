"""The Slack message for a routed call: the default Block Kit alert, template overrides,
and clamping to Slack's documented limits. Pure: no I/O.

Every piece of event data placed in mrkdwn goes through `slack_escape`, so a caller
cannot ping `<!channel>` or smuggle a link through a transcript or summary. Text that
would exceed a limit is cut and ends in `…`; a message is never refused for its size.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from router.core.events import unix_time
from router.core.phones import mask_phone_numbers as mask_numbers_in
from router.core.templates import (
    Template,
    TemplateRenderError,
    human_duration,
    slack_escape,
    strip_line_breaks,
    truncate_text,
)
from sinks.base import DeliveryRequest, Digest, Permanent, template_context
from sinks.call_text import (
    call_headline,
    counts_by,
    direction_word,
    present,
    safe_link,
    shown_number,
    shown_text,
    shown_transcript,
)
from sinks.notices import (
    is_grouped,
    listed_line,
    notice_facts,
    notice_listed,
    notice_summary,
    notice_title,
)
from sinks.slack.actions import (
    ACK_ACTION_ID,
    ACTIONS_BLOCK_ID,
    MAX_BUTTON_VALUE,
    ButtonValue,
    digest_button_noun,
    duration_label,
    silence_action_id,
)

# Slack's limits (Block Kit reference and chat.postMessage docs).
MAX_BLOCKS: Final = 50
MAX_MESSAGE_TEXT: Final = 40_000
MAX_HEADER_TEXT: Final = 150
MAX_SECTION_TEXT: Final = 3000
MAX_SECTION_FIELDS: Final = 10
MAX_FIELD_TEXT: Final = 2000
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_CONTEXT_TEXT: Final = 3000
MAX_ACTION_ELEMENTS: Final = 25
MAX_BUTTON_TEXT: Final = 75

STATUS_EMOJI: Final[Mapping[str, str]] = {
    "COMPLETED": ":white_check_mark:",
    "FAILED": ":red_circle:",
    "TRANSFERRED": ":arrow_right_hook:",
    "CANCELED": ":no_entry_sign:",
}
UNKNOWN_STATUS_EMOJI: Final = ":grey_question:"
DIGEST_EMOJI: Final = ":bellhop_bell:"
DIGEST_CALLS_LISTED: Final = 10

_SUMMARY_IN_FALLBACK: Final = 300
_DANGLING_ENTITY = re.compile(r"&[a-z]{0,3}$")


def status_emoji(status: Any) -> str:
    return STATUS_EMOJI.get(str(status).upper(), UNKNOWN_STATUS_EMOJI)


def truncate_mrkdwn(text: str, limit: int) -> str:
    """Like `truncate_text`, but never leaves half of an `&lt;`-style entity before `…`."""
    if len(text) <= limit:
        return text
    kept = _DANGLING_ENTITY.sub("", text[: max(limit - 1, 0)])
    return kept + "…"


def _escaped(value: Any) -> str:
    return "" if value is None else slack_escape(value)


def _phone(value: Any, masked: bool) -> str:
    return _escaped(shown_number(value, masked))


def _slack_date(value: Any) -> str | None:
    """`<!date^…>` so Slack shows the time in each reader's zone; the escaped text as fallback."""
    if not present(value):
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if unix_time(value) is None:  # outside the years 1 to 9999: reads as null
                return None
            stamp = float(value)
        else:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return _escaped(value)
    fallback = _escaped(strip_line_breaks(value)).replace("|", "¦")
    return f"<!date^{int(stamp)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(truncate_mrkdwn(text, MAX_SECTION_TEXT))}


def _labelled_section(label: str, escaped_body: str) -> dict[str, Any]:
    head = f"*{label}*\n"
    return _section(head + truncate_mrkdwn(escaped_body, MAX_SECTION_TEXT - len(head)))


def _header(text: str) -> dict[str, Any]:
    plain = truncate_text(strip_line_breaks(text), MAX_HEADER_TEXT)
    return {"type": "header", "text": {"type": "plain_text", "text": plain, "emoji": True}}


def _field(label: str, escaped_value: str) -> dict[str, Any]:
    head = f"*{label}*\n"
    return _mrkdwn(head + truncate_mrkdwn(escaped_value, MAX_FIELD_TEXT - len(head)))


def _recording_button(url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": ":arrow_forward: Recording", "emoji": True},
                "url": url,
                "action_id": "open_recording",
            }
        ],
    }


def emoji_headline(event: Mapping[str, Any]) -> str:
    """`:red_circle: FAILED outbound call` (plain text, no mrkdwn)."""
    return f"{status_emoji(event.get('status') or 'UNKNOWN')} {call_headline(event)}"


def default_call_alert(
    event: Mapping[str, Any], *, rule: str, mask_phone_numbers: bool = True
) -> dict[str, Any]:
    """The default alert for one call: `{"text": fallback, "blocks": [...]}`."""
    caller = _phone(event.get("fromNumber"), mask_phone_numbers)
    callee = _phone(event.get("toNumber"), mask_phone_numbers)
    fields = [_field("Caller", caller), _field("Callee", callee)]
    agent = event.get("agentName") or event.get("agentId")
    if present(agent):
        fields.append(_field("Agent", _escaped(agent)))
    if present(event.get("durationSeconds")):
        fields.append(_field("Duration", _escaped(human_duration(event["durationSeconds"]))))
    if present(event.get("hangupCause")):
        fields.append(_field("Hang-up cause", _escaped(event["hangupCause"])))
    when = _slack_date(event.get("startedAt") or event.get("initiatedAt"))
    if when is not None:
        fields.append(_field("When", when))

    blocks: list[dict[str, Any]] = [
        _header(emoji_headline(event)),
        {"type": "section", "fields": fields},
    ]
    if present(event.get("errorMessage")):
        error = shown_text(event["errorMessage"], mask_phone_numbers)
        blocks.append(_labelled_section(":warning: Error", _escaped(error)))
    if present(event.get("summary")):
        summary = shown_text(event["summary"], mask_phone_numbers)
        blocks.append(_labelled_section("Summary", _escaped(summary)))
    excerpt = shown_transcript(event.get("transcript"), mask_phone_numbers)
    if excerpt:
        fence = "```"
        room = MAX_SECTION_TEXT - len("*Transcript*\n") - 2 * len(fence)
        body = truncate_mrkdwn(slack_escape(excerpt), room)
        blocks.append(_labelled_section("Transcript", f"{fence}{body}{fence}"))
    recording = safe_link(event.get("recordingUrl"))
    if recording is not None:
        blocks.append(_recording_button(recording))
    blocks.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(f"Call `{_escaped(event.get('id'))}` · rule `{_escaped(rule)}`"),
            ],
        }
    )

    fallback = f"{_escaped(emoji_headline(event))} from {caller} to {callee}"
    detail = event.get("errorMessage") or event.get("summary")
    if present(detail):
        shown = _escaped(shown_text(detail, mask_phone_numbers))
        fallback += ": " + truncate_mrkdwn(shown, _SUMMARY_IN_FALLBACK)
    return {"text": fit_text(fallback), "blocks": fit_blocks(blocks)}


def _digest_call_line(call: Mapping[str, Any], masked: bool) -> str:
    line = (
        f"{status_emoji(call.get('status'))} {_escaped(call.get('status'))} "
        f"{_escaped(direction_word(call.get('direction')))} "
        f"{_phone(call.get('fromNumber'), masked)} → {_phone(call.get('toNumber'), masked)}"
    )
    detail = call.get("hangupCause") or call.get("errorMessage")
    if present(detail):
        shown = strip_line_breaks(shown_text(detail, masked))
        line += " · " + truncate_mrkdwn(_escaped(shown), 120)
    return "• " + line


def _breakdown(calls: list[Mapping[str, Any]], key: str) -> str:
    return ", ".join(f"{_escaped(name)} ×{n}" for name, n in counts_by(calls, key))


def default_digest_alert(
    digest: Digest, *, rule: str, mask_phone_numbers: bool = True
) -> dict[str, Any]:
    """The default message for a grouped rule: counts, breakdowns, the first calls."""
    key_text = ", ".join(
        f"{name}={'none' if value is None else value}" for name, value in digest.group_key.items()
    )
    if mask_phone_numbers:
        key_text = mask_numbers_in(key_text)
    noun = "call" if digest.count == 1 else "calls"
    headline = f"{DIGEST_EMOJI} {digest.count} {noun} ({rule})"
    if key_text:
        headline += f" · {key_text}"
    calls = list(digest.calls)
    listed = "\n".join(
        _digest_call_line(call, mask_phone_numbers) for call in calls[:DIGEST_CALLS_LISTED]
    )
    if len(calls) > DIGEST_CALLS_LISTED:
        listed += f"\n…and {len(calls) - DIGEST_CALLS_LISTED} more"
    blocks: list[dict[str, Any]] = [
        _header(headline),
        {
            "type": "section",
            "fields": [
                _field("By status", _breakdown(calls, "status") or "–"),
                _field("By hang-up cause", _breakdown(calls, "hangupCause") or "–"),
            ],
        },
    ]
    if listed:
        blocks.append(_labelled_section("Calls", listed))
    blocks.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    f"Window {_escaped(digest.window_start)} – {_escaped(digest.window_end)}"
                    f" · rule `{_escaped(rule)}`"
                )
            ],
        }
    )
    fallback = _escaped(headline) + ": " + _breakdown(calls, "status")
    return {"text": fit_text(fallback), "blocks": fit_blocks(blocks)}


@dataclass(frozen=True)
class ActionButtons:
    """The buttons a sink with a signing secret adds to its alerts (DESIGN.md section 12)."""

    sink: str
    silence_for: Sequence[float]
    acknowledge: bool = True
    silence_by: Sequence[str] | None = None


def _button(text: str, action_id: str, value: ButtonValue, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate_text(text, MAX_BUTTON_TEXT)},
        "action_id": action_id,
        "value": value.encoded(),
    }
    if style is not None:
        button["style"] = style
    return button


def actions_block(
    buttons: ActionButtons, delivery_id: str, digest: Digest | None
) -> dict[str, Any] | None:
    """ "Acknowledge" and "Silence similar for …" (on a digest grouped by one field,
    "Silence this trunk for …"); None when a value would exceed Slack's 2000 characters."""
    noun = None
    if digest is not None:
        group_by = list(digest.group_key)
        if buttons.silence_by is None or list(buttons.silence_by) == group_by:
            noun = digest_button_noun(group_by)
    what = f"this {noun}" if noun else "similar"
    elements = []
    if buttons.acknowledge:
        value = ButtonValue(delivery_id, buttons.sink)
        elements.append(_button(":eyes: Acknowledge", ACK_ACTION_ID, value, "primary"))
    for seconds in buttons.silence_for:
        value = ButtonValue(delivery_id, buttons.sink, seconds)
        label = f":no_bell: Silence {what} for {duration_label(seconds)}"
        elements.append(_button(label, silence_action_id(seconds), value, None))
    if not elements or any(len(e["value"]) > MAX_BUTTON_VALUE for e in elements):
        return None
    return {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements}


def fit_text(text: str) -> str:
    return truncate_mrkdwn(text, MAX_MESSAGE_TEXT)


def _fit_text_object(obj: Any, limit: int) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return obj
    if obj.get("type") == "plain_text":
        obj["text"] = truncate_text(obj["text"], limit)
    else:
        obj["text"] = truncate_mrkdwn(obj["text"], limit)
    return obj


def _fit_element(element: Any) -> Any | None:
    """A block element within limits, or None when it cannot be kept (a bad button URL)."""
    if not isinstance(element, dict) or element.get("type") != "button":
        return element
    if "url" in element and safe_link(element["url"]) is None:
        return None
    _fit_text_object(element.get("text"), MAX_BUTTON_TEXT)
    return element


def _fit_block(block: Any) -> Any | None:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "header":
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            text["text"] = strip_line_breaks(text["text"])
        _fit_text_object(text, MAX_HEADER_TEXT)
    elif kind == "section":
        _fit_text_object(block.get("text"), MAX_SECTION_TEXT)
        if isinstance(block.get("fields"), list):
            block["fields"] = [
                _fit_text_object(field, MAX_FIELD_TEXT)
                for field in block["fields"][:MAX_SECTION_FIELDS]
            ]
        if "accessory" in block and _fit_element(block["accessory"]) is None:
            del block["accessory"]
    elif kind == "context" and isinstance(block.get("elements"), list):
        block["elements"] = [
            _fit_text_object(element, MAX_CONTEXT_TEXT)
            for element in block["elements"][:MAX_CONTEXT_ELEMENTS]
        ]
    elif kind == "actions" and isinstance(block.get("elements"), list):
        kept = [_fit_element(element) for element in block["elements"][:MAX_ACTION_ELEMENTS]]
        block["elements"] = [element for element in kept if element is not None]
        if not block["elements"]:
            return None
    return block


def fit_blocks(blocks: list[Any]) -> list[Any]:
    """A copy of `blocks` cut down to Slack's limits (block count, text lengths, list sizes)."""
    fitted = [_fit_block(block) for block in copy.deepcopy(blocks)]
    return [block for block in fitted if block is not None][:MAX_BLOCKS]


def parse_blocks(rendered: str) -> list[dict[str, Any]]:
    """The blocks a `blocks` template rendered; ValueError unless a JSON array of objects."""
    try:
        blocks = json.loads(rendered)
    except ValueError as exc:
        raise ValueError(f"blocks template did not render valid JSON: {exc}") from None
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise ValueError("blocks template must render a JSON array of block objects")
    return blocks


def _render_blocks_template(template: Template, context: Mapping[str, Any]) -> list[Any]:
    try:
        return parse_blocks(template.render(context))
    except TemplateRenderError as exc:
        raise Permanent(f"slack: blocks: {exc}") from None
    except ValueError as exc:
        raise Permanent(f"slack: {exc}") from None


def notice_message(notice: Mapping[str, Any]) -> dict[str, Any]:
    """A notice of a dead delivery (`sinks.notices`): its title, its facts (event text
    escaped) and, with ROUTER_PUBLIC_URL, a link to the delivery's console page. A
    grouped one: its title, a line per sink, rule and error, and its listed deliveries."""
    title = notice_title(notice)
    if is_grouped(notice):
        return {"text": fit_text(_escaped(title)), "blocks": fit_blocks(_grouped_blocks(notice))}
    fields = [
        _field(label, _escaped(value))
        for label, value in notice_facts(notice)
        if label not in ("Error", "Console")
    ]
    blocks: list[dict[str, Any]] = [
        _header(":skull: " + title),
        _labelled_section("Last error", _escaped(notice.get("error") or "unknown")),
    ]
    for start in range(0, len(fields), MAX_SECTION_FIELDS):
        blocks.append({"type": "section", "fields": fields[start : start + MAX_SECTION_FIELDS]})
    link = notice.get("link")
    if isinstance(link, str) and link:
        blocks.append(_section(f"<{_escaped(link)}|Open the delivery in the console>"))
    return {"text": fit_text(_escaped(title)), "blocks": fit_blocks(blocks)}


# Lines of listed deliveries per section of a grouped notice (each under Slack's limit).
_LISTED_PER_SECTION = 10


def _grouped_blocks(notice: Mapping[str, Any]) -> list[dict[str, Any]]:
    summary = "\n".join(
        f"• {_escaped(where)}: {count} × {_escaped(error)}"
        for where, count, error in notice_summary(notice)
    )
    blocks: list[dict[str, Any]] = [
        _header(":skull: " + notice_title(notice)),
        _labelled_section("What went dead", summary),
    ]
    listed, more = notice_listed(notice)
    lines = []
    for one in listed:
        line = _escaped(listed_line(one))
        link = one.get("link")
        linked = isinstance(link, str) and bool(link)
        lines.append(f"• <{_escaped(link)}|{line}>" if linked else f"• {line}")
    if more:
        lines.append(f"…and {more} more (the console lists dead deliveries)")
    for start in range(0, len(lines), _LISTED_PER_SECTION):
        blocks.append(_section("\n".join(lines[start : start + _LISTED_PER_SECTION])))
    return blocks


def build_message(
    request: DeliveryRequest,
    *,
    mask_phone_numbers: bool = True,
    text_template: Template | None = None,
    blocks_template: Template | None = None,
    buttons: ActionButtons | None = None,
) -> dict[str, Any]:
    """`{"text": …, "blocks": […]}` for one delivery; raises `Permanent` if a template fails.

    With only a `text` template the message is that text alone (no blocks); with a
    `blocks` template its blocks replace the default ones and `text` stays the fallback.
    `buttons` adds an actions block at the end (to a text-only message too).
    """
    message = _built_message(request, mask_phone_numbers, text_template, blocks_template)
    if buttons is not None:
        block = actions_block(buttons, request.delivery_id, request.digest)
        if block is not None:
            blocks = list(message.get("blocks") or [])
            if not blocks:
                blocks = [_section(message["text"])]
            message["blocks"] = [*blocks[: MAX_BLOCKS - 1], block]
    return message


def _built_message(
    request: DeliveryRequest,
    mask_phone_numbers: bool,
    text_template: Template | None,
    blocks_template: Template | None,
) -> dict[str, Any]:
    if request.digest is not None:
        message = default_digest_alert(
            request.digest, rule=request.rule, mask_phone_numbers=mask_phone_numbers
        )
    else:
        message = default_call_alert(
            request.event, rule=request.rule, mask_phone_numbers=mask_phone_numbers
        )
    if text_template is None and blocks_template is None:
        return message

    context = template_context(request)
    try:
        if text_template is not None:
            text = text_template.render(context)
            if text.strip():
                message["text"] = fit_text(text)
            if blocks_template is None:
                del message["blocks"]
        if blocks_template is not None:
            message["blocks"] = fit_blocks(_render_blocks_template(blocks_template, context))
    except TemplateRenderError as exc:
        raise Permanent(f"slack: {exc}") from None
    return message
