"""An attempt's request and response as kept (`Exchange`): what a sink reports from
`transmit`, masked here before it leaves the sink. Pure.

- The URL: its credentials, each path segment but plain words (a Slack hook's
  `T…/B…/…`, ids, numbers) and secret-looking query values (`?api_key=…`) become `***`.
- Headers: the value of a credential header (`Authorization`, cookies, signatures, tokens,
  API keys, by name), of a header the sink's settings mark secret, and of any header
  holding one of the sink's secrets becomes `***` (an auth scheme before it stays:
  `Bearer ***`). At most `MAX_HEADERS` headers, names and values cut to their limits.
- Bodies: the first `BODY_LIMIT` bytes (4 KiB) of UTF-8 text, never a character split,
  `truncated` when there was more. Secrets and phone numbers are masked before the cut,
  over a little more text than is kept, so a secret or a number that the cut would split
  leaves no part of itself behind.

A successful attempt keeps less (`keep_body=False`, `SUCCESS_BODY_LIMIT`): the request's
method, URL and headers with the body's size but not the body (`truncated`: it was
left out), and the response's status, headers and body only when the body is small.
Masking the bodies was most of the capture's cost on the hot path, for text nobody
reads after a success (the call itself is kept with the delivery).

Phone numbers are masked everywhere (`router.core.phones`): in the URL, the header
values and both bodies. The masking reads at most a few KiB whatever the body's size,
so a 1 MiB call costs what a 4 KiB one does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from urllib.parse import quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

from router.core.phones import mask_phone_numbers
from router.store import (
    BODY_LIMIT,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    Exchange,
    Header,
    ReceivedResponse,
    SentRequest,
)
from sinks.secrets import MASK, redactor, token_like

__all__ = [
    "BODY_LIMIT",
    "SUCCESS_BODY_LIMIT",
    "Exchange",
    "ReceivedResponse",
    "SentRequest",
    "kept_body",
    "masked_headers",
    "masked_url",
    "request_seen",
    "response_seen",
]

# Headers whose values are credentials, by name.
_SECRET_HEADER = re.compile(
    r"authorization|cookie|token|secret|signature|api[-_]?key|password|credential|session"
    r"|^x-.*-key$|^key$",
    re.IGNORECASE,
)
# A secret-looking query parameter's name (as `sinks.secrets.url_secrets` judges them).
_SECRET_PARAMETER = re.compile(
    r"key|token|secret|sig|pass|pwd|auth|code|credential|hmac|session|access", re.IGNORECASE
)
# A successful answer's body is kept when it is at most this long (`{"ok": true}`, an id).
SUCCESS_BODY_LIMIT = 512
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z-]{0,19}) \S")  # `Bearer …`, `Basic …`, `Token …`
# Characters read past what is kept, so that what straddles the cut is masked whole:
# a phone number as written is at most this long.
_NUMBER_MARGIN = 64
_OMITTED = "…"
_VERSION = re.compile(r"v\d{1,2}")
# Headers whose values are times, sizes or the router's own ids, never a phone number: not
# searched for one (a Unix time such as `webhook-timestamp` would cost the matcher 0.1 ms).
_WITHOUT_NUMBERS = frozenset(
    {
        "webhook-timestamp",
        "webhook-id",
        "idempotency-key",
        "content-length",
        "content-type",
        "date",
        "expires",
        "last-modified",
        "retry-after",
        "age",
        "user-agent",
        "server",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
)


def kept_body(data: bytes | str, secrets: Sequence[str] = ()) -> tuple[str, bool]:
    """The first `BODY_LIMIT` bytes of `data` as text, its secrets and phone numbers
    masked, never a character split; and whether anything was left out."""
    raw = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    margin = max((len(secret) for secret in secrets), default=0) + _NUMBER_MARGIN  # chars
    window = BODY_LIMIT + 4 * margin  # bytes: at least `margin` characters past the limit
    while True:
        part = raw[:window]
        text = part.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        masked = mask_phone_numbers(redactor(tuple(secrets))(text))
        kept = _cut(masked, BODY_LIMIT)
        whole = len(part) == len(raw)
        # Enough masked text follows what is kept that nothing it holds straddles the
        # end of what was read (masking only shortens a secret; a number is short).
        if whole or len(masked) - len(kept) >= margin:
            return kept, len(kept) < len(masked) or not whole
        window *= 2


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, on a character boundary."""
    if len(text) * 4 <= limit:  # short enough whatever its characters
        return text
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def masked_url(url: str, secrets: Sequence[str] = ()) -> str:
    """`url` with its credentials, token-like path segments and secret-looking query values
    as `***` (no fragment), then every other secret and phone number masked."""
    return _masked_url(url, tuple(secrets))


@lru_cache(maxsize=256)  # a sink sends to one URL, again and again
def _masked_url(url: str, secrets: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    path = "/".join(
        MASK if _secret_looking(unquote(segment)) else segment for segment in parts.path.split("/")
    )
    pairs = []
    for pair in parts.query.split("&") if parts.query else ():
        name, equals, value = pair.partition("=")
        plain = unquote_plus(value)
        secret = _SECRET_PARAMETER.search(unquote_plus(name)) or (
            len(plain) >= 16 and token_like(plain)
        )
        if value and secret:
            pair = f"{name}{equals}{MASK}"
        elif "%" in value or "+" in value:
            # A phone number written encoded (`%2B1415…`, a SOQL query's) is masked decoded.
            masked = mask_phone_numbers(plain)
            if masked != plain:
                pair = f"{name}{equals}{quote_plus(masked, safe='*')}"
        pairs.append(pair)
    shown = urlunsplit((parts.scheme, netloc, path, "&".join(pairs), ""))
    # The sink's secrets, but not the URL as a whole: what is left of it is shown.
    parts_only = [secret for secret in secrets if "://" not in secret]
    return mask_phone_numbers(redactor(tuple(parts_only))(shown))


def _secret_looking(segment: str) -> bool:
    """A path segment that may be (part of) a credential, as a webhook's path often is:
    anything but a plain word (`services`, `chat.postMessage`) or a version (`v2`)."""
    if not segment or _VERSION.fullmatch(segment):
        return False
    return (
        token_like(segment)
        or any(character.isdigit() for character in segment)
        or len(segment) >= 20
        or (len(segment) >= 8 and segment.isupper())
    )


def masked_headers(
    headers: Iterable[tuple[str, str]],
    secrets: Sequence[str] = (),
    secret_names: Collection[str] = (),
) -> tuple[tuple[Header, ...], int]:
    """The headers as kept (at most `MAX_HEADERS`, credentials masked) and how many more
    there were."""
    secret_lower = {name.lower() for name in secret_names}
    secrets = tuple(secrets)
    kept: list[Header] = []
    omitted = 0
    for name, value in headers:
        if len(kept) >= MAX_HEADERS:
            omitted += 1
            continue
        name, value = str(name), str(value)
        kept.append(_masked_header(name, value, secrets, name.lower() in secret_lower))
    return tuple(kept), omitted


@lru_cache(maxsize=1024)  # most headers are the same on every request of a sink
def _masked_header(name: str, value: str, secrets: tuple[str, ...], secret: bool) -> Header:
    if secret or _SECRET_HEADER.search(name):
        shown = _masked_credential(value)
    else:
        shown = redactor(secrets)(value)
        if shown != value:
            shown = _masked_credential(value)
        elif name.lower() not in _WITHOUT_NUMBERS:
            shown = mask_phone_numbers(value)
    return _short(name, MAX_HEADER_NAME), _short(shown, MAX_HEADER_VALUE)


def _masked_credential(value: str) -> str:
    """`***`, after the auth scheme when there is one (`Bearer ***`)."""
    scheme = _SCHEME.match(value)
    return f"{scheme.group(1)} {MASK}" if scheme else MASK


def _short(text: str, limit: int) -> str:
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + _OMITTED


def request_seen(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | str,
    *,
    secrets: Sequence[str] = (),
    secret_headers: Collection[str] = (),
    target_is_url: bool = True,
    keep_body: bool = True,
) -> SentRequest:
    """A request as kept: `target` a URL (masked by `masked_url`) or, `target_is_url`
    False, a plain description (`smtp://host:port`, a file path) with secrets masked.
    `keep_body` False: the body's size only (a success's request)."""
    shown_headers, omitted = masked_headers(headers, secrets, secret_headers)
    size = len(body.encode("utf-8", errors="replace")) if isinstance(body, str) else len(body)
    text, truncated = kept_body(body, secrets) if keep_body else ("", size > 0)
    shown_target = (
        masked_url(target, secrets)
        if target_is_url
        else mask_phone_numbers(redactor(tuple(secrets))(_short(target, MAX_HEADER_VALUE)))
    )
    return SentRequest(method, shown_target, shown_headers, text, size, truncated, omitted)


def response_seen(
    status: int | None,
    headers: Iterable[tuple[str, str]],
    body: bytes | str,
    *,
    secrets: Sequence[str] = (),
    complete: bool = True,
    keep_body: bool = True,
) -> ReceivedResponse:
    """A response as kept; `complete` False when `body` is only the start of what came.
    `keep_body` False: the body's size only."""
    shown_headers, omitted = masked_headers(headers, secrets)
    size = len(body.encode("utf-8", errors="replace")) if isinstance(body, str) else len(body)
    text, truncated = kept_body(body, secrets) if keep_body else ("", size > 0)
    return ReceivedResponse(
        status,
        shown_headers,
        text,
        size if complete else None,
        truncated or not complete,
        omitted,
    )
