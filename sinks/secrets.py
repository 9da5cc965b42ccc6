"""Keeping secrets out of what people see: a URL's secret parts (`url_secrets`), a URL as
shown (`shown_url`: scheme and host only), and text or a whole message with every secret
in it replaced by `***` (`redact`, `scrubbed`). Pure."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

MASK = "***"

_MIN_SECRET = 4
_MIN_SECRET_WORD = 6
# Query parameters whose values are credentials, by their names.
_SECRET_NAME = re.compile(
    r"key|token|secret|sig|pass|pwd|auth|code|credential|hmac|session|access", re.IGNORECASE
)


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL, to scrub from text: the URL itself (as written, and as a
    server sees it: without its credentials, with and without its query), the password
    of its credentials (the user name too when there is no password: an API key given
    as the user), the value of each query parameter whose name or value looks secret
    (`api_key=…`, `token=…`, `?sig=…`), and each path segment that looks like a token
    (the `…/T0/B0/XXXXXXXXXXXXXXXXXXXXXXXX` of a Slack hook). A word of the path such as
    `upstream` is not a secret, so it stays readable wherever else it appears."""
    if not url:
        return []
    parts = urlsplit(url)
    secrets = [url, mask_url(url)]
    if parts.query:
        secrets.append(f"{mask_url(url)}?{parts.query}")
    if parts.password:
        secrets.append(parts.password)
    if parts.username and (not parts.password or token_like(unquote(parts.username))):
        secrets.append(parts.username)
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        plain = unquote_plus(value)
        if value and (_SECRET_NAME.search(unquote_plus(name)) or _random_looking(plain)):
            secrets += [value, plain]
    for segment in parts.path.split("/"):
        if token_like(unquote(segment)):
            secrets += [segment, unquote(segment)]
    return [secret for secret in secrets if secret]


def _random_looking(text: str) -> bool:
    """A query value that is a credential whatever its parameter's name: a long token."""
    return len(text) >= 16 and token_like(text)


def token_like(text: str) -> bool:
    """Whether `text` looks like a credential rather than a word or a number: no spaces,
    and 20 characters or more, or 6 or more mixing letters and digits (`tok-9f8e7d6c`,
    `T0123ABCD`; not `upstream`, `Bearer`, `2016-06-01` or `123456789`)."""
    if len(text) < _MIN_SECRET_WORD or any(char.isspace() for char in text):
        return False
    mixed = any(char.isdigit() for char in text) and any(char.isalpha() for char in text)
    return mixed or len(text) >= 20


def shown_url(url: str) -> str:
    """`scheme://host[:port]/***`: what a preview shows; a webhook URL's path is often
    its credential, so only the host is shown (and `/***` when there is a path)."""
    parts = urlsplit(url)
    masked = mask_url(url)
    if parts.path in ("", "/"):
        return masked
    return masked[: len(masked) - len(parts.path)] + "/" + MASK


def mask_url(url: str) -> str:
    """`scheme://host[:port]/path`: no userinfo, no query, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret replaced by `***`, and each word of a secret that looks like
    a token (`Bearer tok-9f8e7d6c` hides `tok-9f8e7d6c` alone too, never `Bearer`)."""
    for piece in _pieces(secrets):
        text = text.replace(piece, MASK)
    return text


def _pieces(secrets: Iterable[str]) -> list[str]:
    """What `redact` replaces for `secrets`, longest first."""
    pieces: set[str] = set()
    for secret in secrets:
        if len(secret) < _MIN_SECRET:
            continue
        pieces.add(secret)
        words = re.split(r"[\s,;]+", secret)
        pieces.update(word for word in words if token_like(word))
    return sorted(pieces, key=len, reverse=True)


@lru_cache(maxsize=64)
def redactor(secrets: tuple[str, ...]) -> Callable[[str], str]:
    """`redact` for these secrets, worked out once: one pattern of every piece (longest
    first, so the longest at a place wins), for text redacted again and again (each
    attempt's headers and bodies, `sinks.exchange`)."""
    pieces = _pieces(secrets)
    if not pieces:
        return _unchanged
    pattern = re.compile("|".join(re.escape(piece) for piece in pieces))
    return functools.partial(pattern.sub, MASK)


def _unchanged(text: str) -> str:
    return text


def scrubbed(value: Any, secrets: Sequence[str]) -> Any:
    """A JSON-able message with every secret in its text (keys too) replaced by `***`."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {scrubbed(key, secrets): scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(item, secrets) for item in value]
    return value
