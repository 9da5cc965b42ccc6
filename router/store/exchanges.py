"""An attempt's exchange (`Exchange`) as four text columns of `attempts`, and back.

`request_body` and `response_body` hold the bodies as text (at most 4 KiB each, masked
already), so an erasure can rewrite them in SQL or in Python; `request_head` and
`response_head` hold the rest as JSON objects (method, target, headers as
`[name, value]` pairs, sizes). A NULL `request_head` is an attempt whose exchange was
not recorded (made before migration 12, or nothing was sent); a NULL `response_head`
beside a request is one that got no answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from router.store.records import Exchange, Header, ReceivedResponse, SentRequest

COLUMNS = ("request_head", "request_body", "response_head", "response_body")


def exchange_columns(exchange: Exchange | None) -> dict[str, str | None]:
    """The four columns' values for `exchange` (all None when there is none)."""
    if exchange is None:
        return dict.fromkeys(COLUMNS)
    sent, got = exchange.request, exchange.response
    request_head = {
        "method": sent.method,
        "target": sent.target,
        "headers": [list(header) for header in sent.headers],
        "size": sent.size,
        "truncated": sent.truncated,
        "headers_omitted": sent.headers_omitted,
    }
    columns: dict[str, str | None] = {
        "request_head": _dumps(request_head),
        "request_body": sent.body,
        "response_head": None,
        "response_body": None,
    }
    if got is not None:
        response_head = {
            "status": got.status,
            "headers": [list(header) for header in got.headers],
            "size": got.size,
            "truncated": got.truncated,
            "headers_omitted": got.headers_omitted,
        }
        columns["response_head"] = _dumps(response_head)
        columns["response_body"] = got.body
    return columns


def exchange_of(row: Mapping[str, Any]) -> Exchange | None:
    """The exchange stored in a row's four columns, or None when it was not recorded (or
    its head cannot be read: never an error for a page that shows it)."""
    head = _object(row.get("request_head"))
    if head is None:
        return None
    request = SentRequest(
        method=str(head.get("method", "")),
        target=str(head.get("target", "")),
        headers=_headers(head.get("headers")),
        body=str(row.get("request_body") or ""),
        size=_integer(head.get("size")) or 0,
        truncated=bool(head.get("truncated")),
        headers_omitted=_integer(head.get("headers_omitted")) or 0,
    )
    answer = _object(row.get("response_head"))
    response = None
    if answer is not None:
        response = ReceivedResponse(
            status=_integer(answer.get("status")),
            headers=_headers(answer.get("headers")),
            body=str(row.get("response_body") or ""),
            size=_integer(answer.get("size")),
            truncated=bool(answer.get("truncated")),
            headers_omitted=_integer(answer.get("headers_omitted")) or 0,
        )
    return Exchange(request, response)


def _dumps(value: dict[str, Any]) -> str:
    """Compact JSON, non-ASCII as is: orjson (written with every attempt, by the store's
    writer thread: 0.3 µs a head against the standard library's 5); the standard library
    for text orjson refuses (a lone surrogate: a header byte that was not UTF-8), so the
    same value is stored either way."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _headers(value: Any) -> tuple[Header, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        (str(pair[0]), str(pair[1])) for pair in value if isinstance(pair, list) and len(pair) == 2
    )


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
