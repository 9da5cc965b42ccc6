"""Access tokens for sinks that authenticate with a token endpoint (OAuth2, a Google
service account): the one piece every HTTP-style sink asks for an `Authorization` header
before each request and tells about a 401 (`Authenticator`), DESIGN.md section 17.

`TokenProvider` keeps the token in memory and answers from there while it is fresh
(more than a fifth of its lifetime left: no store read, no request). Otherwise one
renewal runs for every request of the process waiting for a token (single-flight): it
reads the store first (`router.store.OutboundTokens`: another replica, or this one
before a restart, may hold a fresh token), and only then asks the token endpoint for a
grant (`GrantSource.grant`: client credentials, a refresh token, a signed assertion),
keeping the answer and any rotated refresh token in the store. A 401 from the
destination (`rejected`) drops the token it was given, so the next request renews.

Judging a token endpoint's answer is pure (`token_answer`): a 4xx is `Permanent`, a 5xx,
a 429 or an answer that is not a token is `Retryable`, each reason starting with
`sink 'NAME' auth:` and holding no secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote_plus, urlencode, urlsplit

import aiohttp

from router.core.phones import mask_phone_numbers
from router.core.retry import parse_retry_after
from router.store import OutboundToken, OutboundTokens, StoreError
from sinks.base import DeliveryError, Permanent, Retryable
from sinks.exchange import Exchange, request_seen, response_seen
from sinks.secrets import redact

log = logging.getLogger(__name__)

RENEW_WHEN_LEFT = 0.2  # of a token's lifetime: renewed when less than this is left
DEFAULT_LIFETIME = 3600.0  # seconds, when the endpoint does not say (`expires_in`)
TOKEN_TIMEOUT = 10.0
TOKEN_ANSWER_LIMIT = 64 * 1024
ERROR_EXCERPT_CHARS = 200
FORM = "application/x-www-form-urlencoded"


class Authenticator(Protocol):
    """What a sink asks before each request, and tells about a 401."""

    async def authorization(self) -> str:
        """The `Authorization` header's value (`Bearer …`); raises `Retryable` or
        `Permanent` (reason `sink 'NAME' auth: …`) when no token can be had."""
        ...

    def rejected(self, authorization: str) -> None:
        """The destination answered 401 to `authorization`: the next ask renews."""
        ...

    def secrets(self) -> list[str]:
        """The tokens it holds now, to mask wherever they might show."""
        ...


@dataclass(frozen=True)
class Grant:
    """One request to the token endpoint: its form, its extra headers (`Authorization:
    Basic …` for `client_secret_basic`), and the secrets in them, to mask."""

    form: Mapping[str, str]
    headers: Mapping[str, str]
    secrets: tuple[str, ...]
    refresh_token: str | None = None  # the one this grant spends, if any


class GrantSource(Protocol):
    """How a sink's auth settings get a token."""

    @property
    def token_url(self) -> str: ...

    @property
    def auth_key(self) -> str:
        """A hash of the settings: a token is reused only for the settings it was got with."""
        ...

    def grant(self, refresh_token: str | None, now: float) -> Grant:
        """The request for a new token; `refresh_token` the latest one the server gave
        (None: none rotated yet)."""
        ...


def settings_hash(*parts: str | None) -> str:
    """A stable hash of auth settings (their secrets included, never stored as such)."""
    text = json.dumps(list(parts), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def is_fresh(token: OutboundToken, now: float) -> bool:
    """Whether `token` has more than a fifth of its lifetime left at `now`."""
    lifetime = max(token.expires_at - token.obtained_at, 0.0)
    return now < token.expires_at - lifetime * RENEW_WHEN_LEFT


@dataclass(frozen=True)
class TokenAnswer:
    access_token: str
    lifetime: float
    refresh_token: str | None


def token_answer(
    sink: str,
    status: int,
    body: bytes,
    *,
    retry_after: str | None = None,
    now: float = 0.0,
    secrets: Iterable[str] = (),
) -> TokenAnswer | DeliveryError:
    """What a token endpoint's answer means: the token, or the failure to raise."""
    prefix = f"sink '{sink}' auth: token endpoint answered {status}"
    if 200 <= status < 300:
        document = _json_object(body)
        if document is None:
            return Retryable(f"{prefix} with something that is not JSON")
        access = document.get("access_token")
        if not isinstance(access, str) or not access.strip():
            return Retryable(f"{prefix} without an access_token")
        lifetime = _lifetime(document.get("expires_in"))
        if lifetime is None:
            return Retryable(f"{prefix} with an expires_in that is not a number of seconds")
        refresh = document.get("refresh_token")
        return TokenAnswer(access, lifetime, refresh if isinstance(refresh, str) else None)
    reason = f"{prefix} {_error_text(body, secrets)}".rstrip()
    if status in (408, 425, 429) or status >= 500:
        wait = parse_retry_after(retry_after, now)
        return Retryable(reason, status_code=status, retry_after=wait)
    return Permanent(reason, status_code=status)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _lifetime(expires_in: Any) -> float | None:
    if expires_in is None:
        return DEFAULT_LIFETIME
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in)
        except ValueError:
            return None
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return None
    if not math.isfinite(expires_in) or expires_in < 0:
        return None
    return float(expires_in)


def _error_text(body: bytes, secrets: Iterable[str]) -> str:
    """`invalid_grant: why` from an OAuth2 error answer, else the start of the body; one
    line, secrets and phone numbers masked."""
    document = _json_object(body)
    if document is not None and isinstance(document.get("error"), str):
        text = document["error"]
        description = document.get("error_description")
        if isinstance(description, str) and description.strip():
            text = f"{text}: {description}"
    elif document is not None and isinstance(document.get("error"), dict):  # Google's shape
        text = str(document["error"].get("message") or document["error"].get("status") or "")
    else:
        text = body.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > ERROR_EXCERPT_CHARS:
        text = text[: ERROR_EXCERPT_CHARS - 1] + "…"
    return mask_phone_numbers(redact(text, secrets))


class TokenProvider:
    """A sink's token: kept in memory, shared through the store, renewed by one fetch
    at a time (see the module). `session` gives the sink's HTTP session; `store` is
    None where there is none (a preview, a test): the token is then this process's."""

    def __init__(
        self,
        sink: str,
        grants: GrantSource,
        *,
        session: Callable[[], aiohttp.ClientSession],
        store: OutboundTokens | None,
        secrets: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        self.sink = sink
        self.grants = grants
        self._session = session
        self._store = store
        self._settings_secrets = list(secrets)
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: OutboundToken | None = None
        self._refresh_token: str | None = None  # the latest a server rotated to
        self._rejected: str | None = None  # an access token the destination refused
        self._renewal: asyncio.Future[OutboundToken] | None = None

    async def authorization(self) -> str:
        token = self._token
        if token is None or not is_fresh(token, self._clock()):
            token = await self._renewed()
        return f"Bearer {token.access_token}"

    def rejected(self, authorization: str) -> None:
        token = self._token
        if token is not None and authorization == f"Bearer {token.access_token}":
            self._rejected = token.access_token
            self._token = None

    def secrets(self) -> list[str]:
        held = [self._token.access_token] if self._token is not None else []
        if self._refresh_token:
            held.append(self._refresh_token)
        return held

    async def _renewed(self) -> OutboundToken:
        """The renewal in flight, or a new one; a waiter cancelled leaves it running."""
        if self._renewal is None:
            renewal = asyncio.ensure_future(self._renew())
            renewal.add_done_callback(self._renewal_done)
            self._renewal = renewal
        return await asyncio.shield(self._renewal)

    def _renewal_done(self, renewal: asyncio.Future[OutboundToken]) -> None:
        self._renewal = None
        if not renewal.cancelled():
            renewal.exception()  # retrieved: every waiter raises it

    async def _renew(self) -> OutboundToken:
        stored = await self._stored()
        now = self._clock()
        if stored is not None and stored.access_token != self._rejected and is_fresh(stored, now):
            return self._adopt(stored)
        refresh = (stored.refresh_token if stored else None) or self._refresh_token
        try:
            return await self._grant(refresh, stored)
        except Permanent:
            # Another replica may have spent the refresh token and stored the one it got.
            again = await self._stored()
            if again is None or again.refresh_token in (None, refresh):
                raise
            if again.access_token != self._rejected and is_fresh(again, self._clock()):
                return self._adopt(again)
            return await self._grant(again.refresh_token, again)

    def _adopt(self, token: OutboundToken) -> OutboundToken:
        self._token = token
        if token.refresh_token:
            self._refresh_token = token.refresh_token
        return token

    async def _stored(self) -> OutboundToken | None:
        if self._store is None:
            return None
        try:
            return await self._store.outbound_token(self.sink, self.grants.auth_key)
        except StoreError as exc:
            log.warning("sink %r auth: cannot read the stored token: %s", self.sink, exc)
            return None

    async def _grant(self, refresh: str | None, stored: OutboundToken | None) -> OutboundToken:
        now = self._clock()
        grant = self.grants.grant(refresh, now)
        secrets = [*self._settings_secrets, *grant.secrets, *self.secrets()]
        if stored is not None:
            secrets += [stored.access_token, *filter(None, [stored.refresh_token])]
        status, headers, body = await self._ask(grant, secrets)
        outcome = token_answer(
            self.sink,
            status,
            body,
            retry_after=headers.get("Retry-After"),
            now=now,
            secrets=secrets,
        )
        if isinstance(outcome, DeliveryError):
            shown = b"" if 200 <= status < 300 else body  # a bad token answer may hold one
            raise outcome.with_exchange(self._exchange(grant, secrets, status, headers, shown))
        token = OutboundToken(
            self.sink,
            self.grants.auth_key,
            outcome.access_token,
            now,
            now + outcome.lifetime,
            outcome.refresh_token or refresh,  # the latest rotated one (None: none yet)
        )
        self._rejected = None
        self._adopt(token)
        if outcome.refresh_token:
            self._refresh_token = outcome.refresh_token
        await self._keep(token)
        return token

    async def _keep(self, token: OutboundToken) -> None:
        if self._store is None:
            return
        try:
            await self._store.keep_outbound_token(token)
        except StoreError as exc:
            log.warning("sink %r auth: cannot store the token it got: %s", self.sink, exc)

    async def _ask(self, grant: Grant, secrets: list[str]) -> tuple[int, Mapping[str, str], bytes]:
        headers = {"Accept": "application/json", **grant.headers}
        try:
            async with self._session().post(
                self.grants.token_url,
                data=dict(grant.form),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.content.read(TOKEN_ANSWER_LIMIT)
                return response.status, dict(response.headers), body
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            host = urlsplit(self.grants.token_url).hostname or "?"
            reason = f"sink '{self.sink}' auth: token endpoint: {_transport_failure(exc, host)}"
            raise Retryable(redact(reason, secrets)) from None
        except ValueError as exc:
            reason = f"sink '{self.sink}' auth: the HTTP client refused the token request"
            raise Permanent(f"{reason}: {type(exc).__name__}") from None

    def _exchange(
        self,
        grant: Grant,
        secrets: list[str],
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Exchange:
        secrets = [*secrets, *(quote_plus(secret) for secret in secrets)]  # as in the form
        sent = request_seen(
            "POST",
            self.grants.token_url,
            [("Content-Type", FORM), *grant.headers.items()],
            urlencode(dict(grant.form)),
            secrets=secrets,
            secret_headers=frozenset(grant.headers),
        )
        return Exchange(sent, response_seen(status, headers.items(), body, secrets=secrets))


def _transport_failure(exc: BaseException, host: str) -> str:
    """Why no answer came from the token endpoint, naming at most its host."""
    if isinstance(exc, TimeoutError):
        return f"no answer from host {host} in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to host {host}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"host {host} disconnected before answering"
    return f"HTTP client error talking to host {host}: {type(exc).__name__}"
