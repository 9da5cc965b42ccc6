"""What an email alert says: the default subject, text and HTML.

The default message lays a call out like an alert (status, direction, masked
numbers, agent, duration, hang-up cause, error, summary, transcript excerpt,
recording, call id, rule); a digest gives its count, group key, window and
breakdowns, its first calls, then the full list of its calls. HTML goes through a Jinja2
sandbox with autoescaping, so no event value can add markup to the HTML part.
Everything here is pure: values in, strings out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.core.phones import mask_phone, mask_phone_numbers
from router.core.templates import (
    Template,
    TemplateKind,
    human_duration,
)
from sinks.base import Digest
from sinks.call_text import shown_text, shown_transcript

DIGEST_CALLS_SHOWN = 10
DIGEST_CALLS_LISTED = 1000  # the full list, bounded so a huge digest stays a sane email


@dataclass(frozen=True)
class AlertRow:
    """One labelled line of an alert; `link` is set when the value is a safe http(s) URL."""

    label: str
    value: str
    link: str | None = None
    block: bool = False


@dataclass(frozen=True)
class Alert:
    """The default message's content, shared by the subject, text and HTML renderings."""

    subject: str
    title: str
    status: str
    rows: tuple[AlertRow, ...]
    footer: str


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any, masked: bool) -> str:
    return mask_phone(value) if masked else _text(value)


def _http_link(value: Any) -> str | None:
    url = _text(value).strip()
    return url if url.lower().startswith(("https://", "http://")) else None


def _call_title(event: Mapping[str, Any]) -> str:
    status = _text(event.get("status")) or "UNKNOWN"
    direction = _text(event.get("direction")).lower()
    return f"{status} {direction} call" if direction else f"{status} call"


def _call_subject(event: Mapping[str, Any], masked: bool) -> str:
    route = f"{_number(event.get('fromNumber'), masked)} → {_number(event.get('toNumber'), masked)}"
    return f"[revring] {_call_title(event)} {route}"


def _call_rows(event: Mapping[str, Any], rule: str, masked: bool) -> list[AlertRow]:
    rows = [
        AlertRow("Status", _text(event.get("status")) or "-"),
        AlertRow("Direction", _text(event.get("direction")) or "-"),
        AlertRow("From", _number(event.get("fromNumber"), masked) or "-"),
        AlertRow("To", _number(event.get("toNumber"), masked) or "-"),
        AlertRow("Agent", _text(event.get("agentName") or event.get("agentId")) or "-"),
        AlertRow("Duration", human_duration(event.get("durationSeconds"))),
        AlertRow("Hang-up cause", _text(event.get("hangupCause")) or "-"),
    ]
    started = event.get("startedAt") or event.get("initiatedAt")
    if started:
        rows.append(AlertRow("Started", _text(started)))
    if event.get("errorMessage"):
        rows.append(AlertRow("Error", shown_text(event["errorMessage"], masked)))
    if event.get("summary"):
        rows.append(AlertRow("Summary", shown_text(event["summary"], masked), block=True))
    excerpt = shown_transcript(event.get("transcript"), masked)
    if excerpt:
        rows.append(AlertRow("Transcript", excerpt, block=True))
    if event.get("recordingUrl"):
        url = _text(event["recordingUrl"])
        rows.append(AlertRow("Recording", url, link=_http_link(url)))
    rows.append(AlertRow("Call ID", _text(event.get("id")) or "-"))
    rows.append(AlertRow("Rule", rule))
    return rows


def _breakdown(calls: Sequence[Mapping[str, Any]], field: str) -> str:
    counts = Counter(_text(call.get(field)) or "-" for call in calls)
    return ", ".join(f"{value} {count}" for value, count in counts.most_common())


def _call_line(call: Mapping[str, Any], masked: bool) -> str:
    route = f"{_number(call.get('fromNumber'), masked)} → {_number(call.get('toNumber'), masked)}"
    parts = [
        _call_title(call),
        route,
        human_duration(call.get("durationSeconds")),
        shown_text(call.get("hangupCause") or call.get("errorMessage"), masked) or "-",
        _text(call.get("id")),
    ]
    return " · ".join(parts)


def _digest_alert(digest: Digest, rule: str, masked: bool) -> Alert:
    group = ", ".join(f"{key}={_text(value)}" for key, value in digest.group_key.items())
    if masked:
        group = mask_phone_numbers(group)
    noun = "call" if digest.count == 1 else "calls"
    title = f"{digest.count} {noun} matched {rule}"
    rows = [
        AlertRow("Calls", str(digest.count)),
        AlertRow("Window", f"{digest.window_start} – {digest.window_end}"),
    ]
    if group:
        rows.append(AlertRow("Group", group))
    rows.append(AlertRow("By status", _breakdown(digest.calls, "status")))
    rows.append(AlertRow("By hang-up cause", _breakdown(digest.calls, "hangupCause")))
    shown = digest.calls[:DIGEST_CALLS_SHOWN]
    lines = "\n".join(_call_line(call, masked) for call in shown)
    if digest.count > len(shown):
        lines += f"\n… and {digest.count - len(shown)} more"
    rows.append(AlertRow("Calls in this digest", lines, block=True))
    if digest.count > len(shown):
        listed = digest.calls[:DIGEST_CALLS_LISTED]
        full = "\n".join(
            f"{number}. {_call_line(call, masked)}" for number, call in enumerate(listed, 1)
        )
        if digest.count > len(listed):
            full += f"\n… and {digest.count - len(listed)} more (list cut at {len(listed)})"
        rows.append(AlertRow(f"All {digest.count} calls", full, block=True))
    rows.append(AlertRow("Rule", rule))
    subject = f"[revring] {title}" + (f" ({group})" if group else "")
    return Alert(subject, title, "DIGEST", tuple(rows), "")


def build_alert(
    event: Mapping[str, Any],
    *,
    rule: str,
    sink: str,
    delivery_id: str,
    digest: Digest | None,
    masked: bool,
) -> Alert:
    """The default alert for one call, or for a digest of calls."""
    footer = f"Sent by revring-router · sink {sink} · delivery {delivery_id}"
    if digest is not None:
        alert = _digest_alert(digest, rule, masked)
        return Alert(alert.subject, alert.title, alert.status, alert.rows, footer)
    return Alert(
        _call_subject(event, masked),
        _call_title(event),
        _text(event.get("status")),
        tuple(_call_rows(event, rule, masked)),
        footer,
    )


def alert_text(alert: Alert) -> str:
    """The plain-text body: a title, aligned rows, indented blocks, a signature footer."""
    width = max((len(row.label) for row in alert.rows if not row.block), default=0) + 2
    lines = [alert.title, ""]
    for row in alert.rows:
        if row.block:
            if lines[-1]:
                lines.append("")
            lines.append(f"{row.label}:")
            lines.extend(f"  {line}".rstrip() for line in row.value.splitlines())
            lines.append("")
        else:
            lines.append(f"{row.label + ':':<{width}}{row.value}".rstrip())
    if lines[-1]:
        lines.append("")
    lines.extend(["-- ", alert.footer])
    return "\n".join(lines) + "\n"


_STATUS_COLOURS = {
    "FAILED": "#c62828",
    "CANCELED": "#6d4c41",
    "COMPLETED": "#2e7d32",
    "TRANSFERRED": "#1565c0",
    "DIGEST": "#37474f",
}

_DEFAULT_HTML = Template(
    """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ alert.title }}</title></head>
<body style="margin:0;padding:16px;background:#f5f5f5;font-family:Arial,Helvetica,sans-serif">
<table role="presentation" cellpadding="0" cellspacing="0" width="100%"
 style="max-width:640px;background:#ffffff;border:1px solid #e0e0e0">
<tr><td style="padding:12px 16px;background:{{ colour }};color:#ffffff;font-size:18px">
<strong>{{ alert.title }}</strong></td></tr>
<tr><td style="padding:8px 16px">
<table role="presentation" cellpadding="4" cellspacing="0" width="100%" style="font-size:14px">
{%- for row in alert.rows %}
{%- if row.block %}
<tr><td colspan="2" style="padding-top:12px;color:#616161">{{ row.label }}</td></tr>
<tr><td colspan="2" style="white-space:pre-wrap;background:#fafafa;border-left:3px solid #e0e0e0;
padding:8px">{{ row.value }}</td></tr>
{%- else %}
<tr><td style="color:#616161;width:130px;vertical-align:top">{{ row.label }}</td>
<td style="vertical-align:top">
{%- if row.link %}<a href="{{ row.link }}">{{ row.value }}</a>{% else %}{{ row.value }}{% endif -%}
</td></tr>
{%- endif %}
{%- endfor %}
</table></td></tr>
<tr><td style="padding:8px 16px;color:#9e9e9e;font-size:12px">{{ alert.footer }}</td></tr>
</table>
</body></html>
""",
    TemplateKind.HTML,
)


def alert_html(alert: Alert) -> str:
    """The HTML body, laid out as a call alert card; all values escaped."""
    colour = _STATUS_COLOURS.get(alert.status, "#455a64")
    return _DEFAULT_HTML.render({"alert": alert, "colour": colour})
