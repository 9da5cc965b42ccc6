"""Renders the console's HTML pages from its Jinja2 templates, autoescaped, with the
filters the pages share (times, ages, masked numbers, JSON)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from markupsafe import Markup

from router.core.phones import mask_phone, mask_phone_numbers
from router.core.templates import human_duration
from router.web.permissions import ACTION_ROLES, may
from router.web.ui.auth import Session
from router.web.ui.exchange_text import request_text, response_text, status_line
from sinks.slack.preview import message_html

TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION: web.RequestKey[Session | None] = web.RequestKey("console_session")
"""The request's console session (None: not signed in), set by the console's guard."""
CONFIRMED = "yes"
"""A form's `confirm` field once the person said yes (on the server's page that asks,
or in the dialog the console's script opens for a form with `data-confirm`)."""


def confirmed(form: Mapping[str, Any]) -> bool:
    """Whether a POSTed form says the person confirmed what it does."""
    return form.get("confirm") == CONFIRMED


def when_text(timestamp: float | None) -> str:
    """A moment as plain text in UTC (`2026-11-20 15:02:11 UTC`), for where markup cannot
    go (an attribute, an `<option>`)."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _time_element(moment: datetime) -> Markup:
    moment = moment.astimezone(UTC)
    machine = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(machine, shown)


def when(timestamp: float | None) -> Markup | str:
    """A moment as `<time datetime="…Z">` holding its UTC text, which the console's
    script (static/console.js) rewrites in the viewer's own time zone."""
    if timestamp is None:
        return "-"
    return _time_element(datetime.fromtimestamp(timestamp, UTC))


def iso_when(text: Any) -> Markup | str:
    """A time a call's body holds as ISO 8601 text (`startedAt`), shown as `when` shows
    one when it carries a zone, else as given (`-` when empty)."""
    if not text:
        return "-"
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    if moment.tzinfo is None:
        return str(text)
    try:
        return _time_element(moment)
    except OverflowError:  # a zone that takes it past year 1 or 9999
        return str(text)


def age(seconds: float | None) -> str:
    """A span of time in the largest fitting unit: `45 s`, `12 min`, `3 h`, `2 d`."""
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def path_part(value: Any) -> str:
    """A value quoted whole for one segment of a URL path (`/` and `?` included)."""
    return quote(str(value), safe="")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        when_text=when_text,
        iso_when=iso_when,
        age=age,
        pretty_json=pretty_json,
        mask_phone=mask_phone,
        path_part=path_part,
        duration=human_duration,
        mask_numbers=mask_phone_numbers,
        slack_message=message_html,
        request_text=request_text,
        response_text=response_text,
        status_line=status_line,
    )
    return env


class Pages:
    def __init__(self) -> None:
        self.env = _environment()

    def render(
        self, request: web.Request, template: str, *, http_status: int = 200, **context: Any
    ) -> web.Response:
        context.setdefault("title", "revring-router")
        context.setdefault("nav", "")
        context.setdefault("now", time.time())
        context.setdefault("waits", {})  # unconfigured sinks, for pages that list deliveries
        context.setdefault("waiting", [])
        session = request.get(SESSION)
        principal = None if session is None else session.principal

        def allowed(action: str) -> bool:
            """Whether the signed-in user's role may do `action` (the server checks
            again: this only hides or disables what it would refuse)."""
            return may(principal, action)

        def needs(action: str) -> str:
            return ACTION_ROLES.get(action, "admin")

        html = self.env.get_template(template).render(
            session=session, principal=principal, may=allowed, needs=needs, **context
        )
        return web.Response(
            text=html, status=http_status, content_type="text/html", charset="utf-8"
        )

    def confirm(
        self,
        request: web.Request,
        *,
        title: str,
        question: str,
        action: str,
        button: str,
        cancel: str,
        nav: str = "",
        facts: Sequence[tuple[str, Any]] = (),
    ) -> web.Response:
        """A page that asks before an action that cannot be undone: its button posts the
        same form again to `action` with `confirm=yes`; `cancel` leads back."""
        return self.render(
            request,
            "confirm.html",
            title=title,
            question=question,
            action=action,
            button=button,
            cancel=cancel,
            nav=nav,
            facts=list(facts),
        )

    def problem(self, request: web.Request, status: int, message: str) -> web.Response:
        """A page that says what is wrong, with the status code to match."""
        return self.render(
            request, "problem.html", http_status=status, title=f"{status}", message=message
        )
