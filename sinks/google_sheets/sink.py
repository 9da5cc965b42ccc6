"""The `google_sheets` sink: its settings, the append request built for a delivery (one
row per call; a digest's calls in one request), and Google's answers judged (429 and
5xx retryable, honouring Retry-After; other 4xx permanent with Google's message)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator

from router.core.phones import mask_phone_numbers
from router.core.retry import parse_retry_after
from router.core.templates import TemplateRenderError, TextTemplate
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
    SinkConfig,
    SinkResources,
    TimedSinkConfig,
    template_context,
)
from sinks.google_sheets.account import JwtBearerGrants, KeyFile
from sinks.http import USER_AGENT, Answer, OutgoingRequest, PostingSink, body_excerpt
from sinks.secrets import redact, shown_url

SHEETS_API = "https://sheets.googleapis.com"
RETRYABLE = frozenset({408, 429})

# A1 notation: an optional sheet name (quoted when it has spaces or symbols) and `!`,
# then cells (`A1`, `A:F`, `A2:F`, `1:3`); or a sheet's name alone.
_CELL = r"(?:[A-Za-z]{1,3}[0-9]*|[0-9]+)"
_CELLS = rf"{_CELL}(?::{_CELL})?"
_SHEET = r"(?:'(?:[^']|'')+'|[^'!:]+)"
_RANGE = re.compile(rf"^(?:{_SHEET}!{_CELLS}|{_CELLS}|{_SHEET})$")


class GoogleSheetsConfig(TimedSinkConfig):
    type: Literal["google_sheets"]
    spreadsheet_id: str
    range: str
    credentials_file: KeyFile
    row: list[TextTemplate] = Field(min_length=1)
    api_url: str = SHEETS_API
    token_url: str | None = None  # the key file's token_uri when not given

    @field_validator("range")
    @classmethod
    def _a1_range(cls, value: str) -> str:
        if not _RANGE.match(value.strip()):
            raise ValueError(
                f"range {value!r} is not A1 notation (like Calls!A:F, 'Call log'!A1:F or Calls)"
            )
        return value.strip()

    @field_validator("spreadsheet_id")
    @classmethod
    def _spreadsheet_id(cls, value: str) -> str:
        if any(char.isspace() or char == "/" for char in value):
            raise ValueError("spreadsheet_id is the id from the sheet's URL (…/d/ID/edit)")
        return value

    @field_validator("api_url", "token_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    def missing_settings(self) -> list[str]:
        return [
            name
            for name, text in (
                ("spreadsheet_id", self.spreadsheet_id),
                ("credentials_file", self.credentials_file.path),
            )
            if not text
        ]

    def templates(self) -> dict[str, RendersText]:
        return {f"row.{index}": template for index, template in enumerate(self.row)}

    def effective_token_url(self) -> str:
        return self.token_url or self.credentials_file.token_uri

    def append_url(self) -> str:
        sheet = quote(self.spreadsheet_id, safe="")
        cells = quote(self.range, safe="")
        return (
            f"{self.api_url.rstrip('/')}/v4/spreadsheets/{sheet}/values/{cells}:append"
            "?valueInputOption=RAW"
        )


def rows_of(config: GoogleSheetsConfig, request: DeliveryRequest) -> list[list[str]]:
    """The row of the call, or of each call of a digest (its templates see that call and
    the digest's values); raises `Permanent` when a template fails."""
    digest = request.digest
    calls = [request] if digest is None else [replace(request, event=c) for c in digest.calls]
    rows = []
    for call in calls:
        context = template_context(call)
        row = []
        for index, template in enumerate(config.row):
            try:
                row.append(template.render(context))
            except TemplateRenderError as exc:
                raise Permanent(redact(f"row.{index}: {exc}", config.secret_values())) from None
        rows.append(row)
    return rows


def google_error(body: bytes) -> str:
    """Google's error message (`{"error": {"message": …}}`), else the body's start."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        message = error.get("message") or error.get("status")
        if isinstance(message, str):
            return body_excerpt(message.encode("utf-8"))
    return body_excerpt(body)


def judge_sheets_answer(
    status: int, body: bytes, retry_after: str | None, *, now: float, secrets: list[str]
) -> SendResult | DeliveryError:
    """What the Sheets API's answer means: success, or the failure to raise."""
    if 200 <= status < 300:
        return SendResult(status_code=status, detail=f"HTTP {status}")
    message = mask_phone_numbers(redact(google_error(body), secrets))
    reason = f"google sheets answered {status}" + (f": {message}" if message else "")
    if status in RETRYABLE or status >= 500:
        wait = parse_retry_after(retry_after, now)
        return Retryable(reason, status_code=status, retry_after=wait)
    return Permanent(reason, status_code=status)


class GoogleSheetsSink(PostingSink):
    config: GoogleSheetsConfig
    config_class = GoogleSheetsConfig

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        key = self.config.credentials_file
        if key.private_key:
            grants = JwtBearerGrants(key, self.config.effective_token_url())
            self.authenticator = self.token_provider(grants)

    def build(self, request: DeliveryRequest) -> OutgoingRequest:
        rows = rows_of(self.config, request)
        body = json.dumps({"values": rows}, ensure_ascii=False, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return OutgoingRequest(
            "POST", self.config.append_url(), headers, body.encode("utf-8"), frozenset()
        )

    def show(self, outgoing: OutgoingRequest) -> dict[str, Any]:
        return {
            "method": outgoing.method,
            "url": shown_url(outgoing.url),
            "headers": {**outgoing.headers, "Authorization": "Bearer ***"},
            "body": json.loads(outgoing.body),
        }

    def judge(self, answer: Answer, secrets: list[str]) -> SendResult | DeliveryError:
        return judge_sheets_answer(
            answer.status, answer.body, answer.retry_after, now=time.time(), secrets=secrets
        )
