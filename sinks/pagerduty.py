"""The `pagerduty` sink: one PagerDuty incident per routed call (or per digest) through the
Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`, `event_action: trigger`).

The event's `dedup_key` is the call id (a digest: its rule and group key), so a retried
or replayed delivery updates the incident it opened instead of opening a second one.

Building the event and judging PagerDuty's answer are pure (`build_event`,
`classify_answer`); the request goes out through the transport the `http` sink uses
(`PostingSink`). The `routing_key` is a secret: it is masked in a preview, kept out of
the config's repr, and scrubbed from every failure reason.

    202            delivered
    400            dead at once, with PagerDuty's `errors` in the reason
    429, 5xx       retried with backoff (PagerDuty sends no Retry-After)
    other 4xx      dead at once
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field, SecretStr, field_validator

from router.core.phones import holds_phone_number
from router.core.phones import mask_phone_numbers as mask_numbers_in
from router.core.templates import (
    TemplateRenderError,
    TextTemplate,
    strip_line_breaks,
    truncate_text,
)
from router.core.units import Rate
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Digest,
    Permanent,
    RendersText,
    SendResult,
    TimedSinkConfig,
    template_context,
)
from sinks.call_text import (
    call_line,
    counts_by,
    digest_line,
    group_key_text,
    present,
    safe_link,
    shown_number,
    shown_text,
)
from sinks.http import (
    USER_AGENT,
    Answer,
    OutgoingRequest,
    PostingSink,
    body_excerpt,
    classify_response,
)
from sinks.notices import notice_error, notice_json, notice_key, notice_title
from sinks.secrets import MASK, redact

DEFAULT_URL: Final = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty throttles events per integration key (120 a minute, as documented when written).
DEFAULT_RATE_LIMIT: Final = Rate(120, 60)
SEVERITIES: Final = ("critical", "error", "warning", "info")
MAX_SUMMARY: Final = 1024
MAX_DEDUP_KEY: Final = 255
MAX_DETAIL_TEXT: Final = 4000
DIGEST_CALLS_LISTED: Final = 10
REASON_ERRORS_CHARS: Final = 300
CLIENT: Final = "revring-router"


class PagerDutySinkConfig(TimedSinkConfig):
    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = DEFAULT_URL
    severity: TextTemplate = Field(default="error", validate_default=True)
    summary: TextTemplate | None = None
    dedup_key: TextTemplate | None = None
    mask_phone: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("url must be an http:// or https:// URL with a host")
        return value

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: Any) -> Any:
        source = getattr(value, "source", "")
        if "{" not in source and severity_problem(source) is not None:
            raise ValueError(severity_problem(source))
        return value

    def missing_settings(self) -> list[str]:
        return [] if self.routing_key.get_secret_value() else ["routing_key"]

    def effective_rate_limit(self) -> Rate | None:
        return self.rate_limit or DEFAULT_RATE_LIMIT

    def templates(self) -> dict[str, RendersText]:
        named: dict[str, RendersText] = {"severity": self.severity}
        if self.summary is not None:
            named["summary"] = self.summary
        if self.dedup_key is not None:
            named["dedup_key"] = self.dedup_key
        return named

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        if name == "severity":
            return severity_problem(rendered)
        if name == "dedup_key" and not rendered.strip():
            return "dedup_key rendered empty (PagerDuty would open a new incident every time)"
        return None


def severity_problem(rendered: str) -> str | None:
    """Why `rendered` is not a PagerDuty severity, or None when it is one."""
    if rendered.strip().lower() in SEVERITIES:
        return None
    shown = truncate_text(strip_line_breaks(rendered), 40)
    return f"{shown!r} is not a PagerDuty severity (critical, error, warning or info)"


def bounded_dedup_key(key: str) -> str:
    """`key` as PagerDuty takes it (at most 255 characters): a longer one keeps its start
    and ends in a hash of the whole, so it stays the same for the same input."""
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key[: MAX_DEDUP_KEY - len(digest) - 1] + "~" + digest


def default_dedup_key(request: DeliveryRequest, *, masked: bool = True) -> str:
    """The call id; for a digest `digest:<rule>:<group key>`, the numbers in a group key
    replaced by a hash of the key when numbers are masked."""
    digest = request.digest
    if digest is None:
        return str(request.event.get("id") or request.event_id)
    key = ",".join(f"{name}={value}" for name, value in sorted(digest.group_key.items()))
    if masked and holds_phone_number(key):
        key = hashlib.sha256(key.encode()).hexdigest()[:32]
    return bounded_dedup_key(f"digest:{request.rule}:{key}")


def _clipped(value: Any, masked: bool) -> Any:
    if not isinstance(value, str):
        return value
    return truncate_text(shown_text(value, masked), MAX_DETAIL_TEXT)


def call_details(event: Mapping[str, Any], *, rule: str, masked: bool) -> dict[str, Any]:
    """The call's key fields for `custom_details`: numbers masked, long text cut."""
    details: dict[str, Any] = {
        "call_id": event.get("id"),
        "status": event.get("status"),
        "direction": event.get("direction"),
        "from": shown_number(event.get("fromNumber"), masked),
        "to": shown_number(event.get("toNumber"), masked),
        "agent": event.get("agentName") or event.get("agentId"),
        "duration_seconds": event.get("durationSeconds"),
        "hangup_cause": event.get("hangupCause"),
        "error": _clipped(event.get("errorMessage"), masked),
        "call_summary": _clipped(event.get("summary"), masked),
        "sip_trunk": event.get("sipTrunkId"),
        "initiated_at": event.get("initiatedAt"),
        "started_at": event.get("startedAt"),
        "ended_at": event.get("endedAt"),
        "rule": rule,
    }
    return {name: value for name, value in details.items() if present(value)}


def digest_details(digest: Digest, *, rule: str, masked: bool) -> dict[str, Any]:
    """A digest's `custom_details`: count, breakdowns, window and the first calls."""
    calls = list(digest.calls)
    listed = [call_line(call, masked=masked) for call in calls[:DIGEST_CALLS_LISTED]]
    if len(calls) > DIGEST_CALLS_LISTED:
        listed.append(f"…and {len(calls) - DIGEST_CALLS_LISTED} more")
    return {
        "count": digest.count,
        "rule": rule,
        "group_key": group_key_text(digest.group_key, masked=masked),
        "window_start": digest.window_start,
        "window_end": digest.window_end,
        "by_status": dict(counts_by(calls, "status")),
        "by_hangup_cause": dict(counts_by(calls, "hangupCause")),
        "first_calls": listed,
        "call_ids": [call.get("id") for call in calls[:DIGEST_CALLS_LISTED]],
    }


def _short(value: Any) -> str:
    """A payload field as PagerDuty takes it: text on one line, at most 1,024 characters."""
    return truncate_text(strip_line_breaks(value), MAX_SUMMARY)


def _iso_time(value: Any) -> str | None:
    """`value` if it reads as an ISO 8601 time (PagerDuty refuses the event otherwise)."""
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _render(template: RendersText, name: str, context: Mapping[str, Any]) -> str:
    try:
        return template.render(context)
    except TemplateRenderError as exc:
        raise Permanent(f"pagerduty: {name}: {exc}") from None


def build_event(config: PagerDutySinkConfig, request: DeliveryRequest) -> dict[str, Any]:
    """The Events API v2 `trigger` event for one delivery; `Permanent` if a template fails
    or renders what PagerDuty refuses (a severity it does not know, an empty dedup_key)."""
    masked = config.mask_phone
    context = template_context(request)
    digest = request.digest
    event = request.event

    link: str | None = None
    severity = _render(config.severity, "severity", context)
    problem = severity_problem(severity)
    if problem is not None:
        raise Permanent(f"pagerduty: {problem}")

    summary = ""
    if request.notice is not None:  # a dead delivery's notice: its title, details in full
        summary = notice_title(request.notice) + f": {notice_error(request.notice)}"
    elif config.summary is not None:
        summary = strip_line_breaks(_render(config.summary, "summary", context))
        summary = mask_numbers_in(summary) if masked else summary
    if not summary:
        summary = (
            digest_line(digest, masked=masked)
            if digest is not None
            else call_line(event, masked=masked)
        )
    summary = truncate_text(summary, MAX_SUMMARY)

    if config.dedup_key is not None:
        dedup_key = strip_line_breaks(_render(config.dedup_key, "dedup_key", context))
        if not dedup_key:
            raise Permanent("pagerduty: dedup_key rendered empty")
        dedup_key = bounded_dedup_key(dedup_key)
    else:
        dedup_key = default_dedup_key(request, masked=masked)

    if digest is not None:
        details = digest_details(digest, rule=request.rule, masked=masked)
        source = f"revring-router rule {request.rule}"
        timestamp: Any = digest.window_start
        component = digest.group_key.get("sipTrunkId")
        statuses = {str(call.get("status")) for call in digest.calls}
        kind = statuses.pop() if len(statuses) == 1 else None
        recording = None
    else:
        details = call_details(event, rule=request.rule, masked=masked)
        source = str(event.get("agentName") or event.get("agentId") or "revring")
        timestamp = event.get("endedAt") or event.get("initiatedAt")
        component = event.get("sipTrunkId")
        kind = event.get("hangupCause") or event.get("status")
        recording = safe_link(event.get("recordingUrl"))
    details["summary"] = summary
    if request.notice is not None:
        details = {"summary": summary, **notice_json(request.notice)}
        dedup_key = bounded_dedup_key(f"revring-dead-{notice_key(request.notice)}")
        link = safe_link(request.notice.get("link"))
        recording = None

    payload: dict[str, Any] = {
        "summary": summary,
        "source": source,
        "severity": severity.strip().lower(),
        "timestamp": _iso_time(timestamp),
        "component": component,
        "group": event.get("organizationId") if digest is None else None,
        "class": kind,
        "custom_details": details,
    }
    document: dict[str, Any] = {
        "routing_key": config.routing_key.get_secret_value(),
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            name: value if name == "custom_details" else _short(value)
            for name, value in payload.items()
            if present(value)
        },
        "client": CLIENT,
    }
    if recording is not None:
        document["links"] = [{"href": recording, "text": "Call recording"}]
    if request.notice is not None and link is not None:
        document["links"] = [{"href": link, "text": "The dead delivery in the console"}]
    return document


def classify_answer(
    status: int, body: bytes, *, retry_after: str | None, secrets: list[str], now: float
) -> SendResult | DeliveryError:
    """What PagerDuty's answer means; reasons start with `pagerduty: ` and hold no secret."""
    if status == 400:
        return Permanent(
            "pagerduty: HTTP 400 invalid event: " + _errors_text(body, secrets), status_code=400
        )
    outcome = classify_response(
        status, body=body, retry_after=retry_after, now=now, secrets=secrets
    )
    if isinstance(outcome, DeliveryError):
        return outcome.with_reason("pagerduty: " + outcome.reason)
    answer = _json_object(body)
    detail = f"dedup_key {answer.get('dedup_key')}" if answer.get("dedup_key") else outcome.detail
    return SendResult(status_code=status, detail=redact(str(detail), secrets))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _errors_text(body: bytes, secrets: list[str]) -> str:
    """PagerDuty's `errors` list (else its `message`, else the body's start) as one line."""
    answer = _json_object(body)
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        text = "; ".join(str(error) for error in errors)
    elif answer.get("message"):
        text = str(answer["message"])
    else:
        text = body_excerpt(body) or "no detail given"
    text = truncate_text(strip_line_breaks(text), REASON_ERRORS_CHARS)
    return mask_numbers_in(redact(text, secrets))


class PagerDutySink(PostingSink):
    config: PagerDutySinkConfig
    config_class = PagerDutySinkConfig
    reason_prefix = "pagerduty: "

    def reads_body(self, status: int) -> bool:
        return True

    def build(self, request: DeliveryRequest) -> OutgoingRequest:
        document = build_event(self.config, request)
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return OutgoingRequest("POST", self.config.url, headers, body, frozenset())

    def show(self, outgoing: OutgoingRequest) -> Any:
        document = json.loads(outgoing.body)
        document["routing_key"] = MASK
        return document

    def judge(self, answer: Answer, secrets: list[str]) -> SendResult | DeliveryError:
        return classify_answer(
            answer.status,
            answer.body,
            retry_after=answer.retry_after,
            secrets=secrets,
            now=time.time(),
        )
