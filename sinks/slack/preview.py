"""Draws a Slack message (Block Kit's basic blocks and mrkdwn) as HTML, the way Slack shows
it: for the console's rules playground and the README's pictures (docs/).

Everything from the message is escaped before any markup is added (so `Markup` here
only ever wraps escaped text and this module's own tags): the drawing can only hold
the tags made here: a call's text is shown, never run. Slack's own
entities (`&lt;` `&gt;` `&amp;`) are shown as the characters Slack shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

EMOJI = {
    "red_circle": "🔴",
    "white_check_mark": "✅",
    "arrow_right_hook": "↪️",
    "no_entry_sign": "🚫",
    "grey_question": "❔",
    "warning": "⚠️",
    "arrow_forward": "▶️",
    "bellhop_bell": "🛎️",
    "eyes": "👀",
    "no_bell": "🔕",
    "telephone_receiver": "📞",
    "rotating_light": "🚨",
}

_CONTROL = re.compile(r"<([^<>\n]*)>")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), r"<i>\1</i>"),
    (re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])"), r"<s>\1</s>"),
)


def emoji(escaped: str) -> str:
    """`:name:` codes replaced by the emoji Slack draws for them (unknown ones stay)."""
    return re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), escaped)


def _slack_text(text: str) -> str:
    """Slack's escaped text as plain characters."""
    for entity, character in _SLACK_ENTITIES:
        text = text.replace(entity, character)
    return text


def _date(control: str) -> str:
    """`!date^<unix>^<format>|<fallback>` as a date (UTC); the fallback if unreadable."""
    head, _, fallback = control.partition("|")
    parts = head.split("^")
    try:
        stamp = datetime.fromtimestamp(int(parts[1]), UTC)
    except (IndexError, ValueError, OverflowError, OSError):
        return html.escape(_slack_text(fallback))
    return html.escape(stamp.strftime("%b %-d, %Y at %-I:%M %p"))


def _control_html(control: str) -> str:
    """One `<…>` sequence of mrkdwn: a date, a mention or a link (only http(s) links are
    clickable); anything else is shown as written."""
    target, _, label = control.partition("|")
    if control.startswith("!date^"):
        return _date(control)
    if target.startswith("!"):
        name = label or target[1:].split("^")[0]
        return f'<span class="mention">@{html.escape(_slack_text(name))}</span>'
    if target[:1] in ("@", "#"):
        name = label or target[1:]
        return f'<span class="mention">{target[0]}{html.escape(_slack_text(name))}</span>'
    url = _slack_text(target)
    shown = html.escape(_slack_text(label or target))
    if re.match(r"https?://", url, re.IGNORECASE):
        return (
            f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer" '
            f'target="_blank">{shown}</a>'
        )
    if re.match(r"[a-z][a-z0-9+.-]*:", url, re.IGNORECASE):
        return f'<span class="link">{shown}</span>'
    return html.escape(f"<{_slack_text(control)}>")  # not Slack markup: shown as written


def mrkdwn_html(text: str) -> Markup:
    """Slack's mrkdwn as HTML: *bold*, _italic_, ~strike~, `code`, ```blocks```, links,
    mentions, dates, emoji codes and line breaks."""
    pieces: list[str] = []

    def stash(match: re.Match[str]) -> str:
        pieces.append(_control_html(match.group(1)))
        return f"\x00{len(pieces) - 1}\x00"

    text = str(text).replace("\x00", "")
    escaped = html.escape(_slack_text(_CONTROL.sub(stash, text)), quote=False)
    out = []
    for index, part in enumerate(re.split(r"```(.*?)```", escaped, flags=re.S)):
        if index % 2:
            out.append(f"<pre>{part.strip(chr(10))}</pre>")
            continue
        for pattern, replacement in _FORMATS:
            part = pattern.sub(replacement, part)
        out.append(part.replace("\n", "<br>"))
    joined = emoji("".join(out))
    return Markup(_PLACEHOLDER.sub(lambda m: pieces[int(m.group(1))], joined))  # noqa: S704


def _text_html(item: Any) -> str:
    """A text object (`plain_text` or `mrkdwn`) as HTML."""
    if not isinstance(item, Mapping):
        return ""
    text = str(item.get("text", ""))
    if item.get("type") == "mrkdwn":
        return mrkdwn_html(text)
    return emoji(html.escape(text, quote=False))


def _header(block: Mapping[str, Any]) -> str:
    return f'<div class="header">{_text_html(block.get("text"))}</div>'


def _section(block: Mapping[str, Any]) -> str:
    pieces = []
    if "text" in block:
        pieces.append(f'<div class="section">{_text_html(block["text"])}</div>')
    fields = block.get("fields")
    if isinstance(fields, list):
        cells = "".join(f"<div>{_text_html(field)}</div>" for field in fields)
        pieces.append(f'<div class="fields">{cells}</div>')
    return "".join(pieces)


def _actions(block: Mapping[str, Any]) -> str:
    elements = block.get("elements")
    buttons = "".join(
        f'<span class="button{" primary" if element.get("style") == "primary" else ""}">'
        f"{_text_html(element.get('text'))}</span>"
        for element in (elements if isinstance(elements, list) else [])
        if isinstance(element, Mapping) and element.get("type") == "button"
    )
    return f'<div class="actions">{buttons}</div>'


def _context(block: Mapping[str, Any]) -> str:
    elements = block.get("elements")
    items = " ".join(
        _text_html(element)
        for element in (elements if isinstance(elements, list) else [])
        if isinstance(element, Mapping) and element.get("type") in ("mrkdwn", "plain_text")
    )
    return f'<div class="context">{items}</div>'


def _divider(block: Mapping[str, Any]) -> str:
    return "<hr>"


def _image(block: Mapping[str, Any]) -> str:
    return f'<div class="context">[image: {html.escape(str(block.get("alt_text", "")))}]</div>'


_BLOCKS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "header": _header,
    "section": _section,
    "actions": _actions,
    "context": _context,
    "divider": _divider,
    "image": _image,
}


def blocks_html(message: Mapping[str, Any]) -> Markup:
    """The body of a Slack message: its blocks, or its `text` when it has none."""
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        text = mrkdwn_html(str(message.get("text", "")))
        return Markup(f'<div class="section">{text}</div>')  # noqa: S704
    drawn = []
    for block in blocks:
        if isinstance(block, Mapping):
            draw = _BLOCKS.get(str(block.get("type")))
            if draw is not None:
                drawn.append(draw(block))
    return Markup("".join(drawn))  # noqa: S704


def message_html(message: Mapping[str, Any], *, sender: str = "Call Router") -> Markup:
    """A whole message as Slack lays it out: avatar, sender, time, blocks
    (style: the console's `static/slack.css`, scoped to `.slack-message`)."""
    return Markup(  # noqa: S704
        '<div class="slack-message"><div class="avatar">RR</div><div class="body">'
        f'<div class="meta"><span class="name">{html.escape(sender)}</span>'
        '<span class="badge">APP</span><span class="time">3:04 PM</span></div>'
        f"{blocks_html(message)}</div></div>"
    )
