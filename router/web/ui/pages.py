"""Renders the console's HTML pages from its Jinja2 templates, autoescaped, with the
filters the pages share (times, ages, masked numbers, JSON)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from router.core.phones import mask_phone, mask_phone_numbers
from router.core.templates import human_duration
from router.web.ui.auth import Session
from router.web.ui.exchange_text import request_text, response_text, status_line
from sinks.slack.preview import message_html

TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION: web.RequestKey[Session | None] = web.RequestKey("console_session")
"""The request's console session (None: not signed in), set by the console's guard."""


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
        html = self.env.get_template(template).render(session=request.get(SESSION), **context)
        return web.Response(
            text=html, status=http_status, content_type="text/html", charset="utf-8"
        )

    def problem(self, request: web.Request, status: int, message: str) -> web.Response:
        """A page that says what is wrong, with the status code to match."""
        return self.render(
            request, "problem.html", http_status=status, title=f"{status}", message=message
        )
