"""An attempt's request and response as the delivery page shows them: a head (the request
line, or the status line) and headers, a blank line, then the body (JSON indented), as
in an HTTP message; what was cut or left out said so. The stored text is masked already
(`sinks.exchange`)."""

from __future__ import annotations

import json
from http import HTTPStatus

from router.store import BODY_LIMIT, ReceivedResponse, SentRequest


def request_text(sent: SentRequest) -> str:
    lines = [f"{sent.method} {sent.target}"]
    lines += _headers(sent.headers, sent.headers_omitted)
    return "\n".join(lines) + "\n\n" + _body(sent.body, sent.truncated, sent.size)


def response_text(got: ReceivedResponse) -> str:
    lines = [*_headers(got.headers, got.headers_omitted)]
    return "\n".join(lines) + ("\n\n" if lines else "") + _body(got.body, got.truncated, got.size)


def status_line(got: ReceivedResponse | None, method: str) -> str:
    """`HTTP 500 Internal Server Error`, `SMTP 250`, or what stands for no answer."""
    if got is None:
        return "no answer" if method != "WRITE" else "written"
    if got.status is None:
        return "answered"
    if method == "SMTP":
        return f"SMTP {got.status}"
    try:
        return f"HTTP {got.status} {HTTPStatus(got.status).phrase}"
    except ValueError:
        return f"HTTP {got.status}"


def _headers(headers: tuple[tuple[str, str], ...], omitted: int) -> list[str]:
    lines = [f"{name}: {value}" for name, value in headers]
    if omitted:
        lines.append(f"({omitted} more headers not kept)")
    return lines


def _body(body: str, truncated: bool, size: int | None) -> str:
    if not body:
        if not truncated:
            return "(no body)"
        # A success keeps no body (`sinks.exchange`): its size when it is known.
        return f"(body of {size:,} bytes not kept)" if size else "(body not kept)"
    shown = body
    if not truncated:
        try:
            shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            shown = body
    if truncated:
        of = f" of {size:,} bytes" if size else ""
        shown += f"\n… cut: the first {BODY_LIMIT // 1024} KiB{of} are kept"
    return shown
