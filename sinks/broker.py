"""What the message broker sinks (`rabbitmq`, `redis_stream`, `nats`) share: their common
settings (a broker URL, a `body` template), the message they build (`BrokerMessage`:
where it goes, its body, the delivery id and the `rule`, `sink`, `event_id` it carries),
and the one connection each sink holds (`BrokerConnection`: opened on first use, shared
by the sink's lanes, reopened after a failure no sooner than a backoff allows, closed
with the sink).

The body is the call JSON exactly as received (a digest: one document listing its calls,
as the `http` sink sends it), or the `body` template (JSON kind). Building is pure and the
message pickles (`sinks.base`). Failures are `Retryable` unless the message itself can
never be sent; no reason or stored exchange holds a credential of the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from router.core.templates import JsonTemplate, TemplateRenderError
from sinks.base import (
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
    Sink,
    SinkConfig,
    SinkResources,
    TimedSinkConfig,
    template_context,
)
from sinks.exchange import Exchange, request_seen, response_seen
from sinks.http import default_body
from sinks.notices import notice_bytes
from sinks.secrets import MASK, mask_url, redact, url_secrets

CONTENT_TYPE = "application/json"
# Waits before another connection attempt after a failed one: doubling, at most the cap.
FIRST_BACKOFF = 0.2
BACKOFF_CAP = 5.0


def checked_broker_url(value: SecretStr, schemes: tuple[str, ...]) -> SecretStr:
    """`value` if it is a URL with one of `schemes` and a host (an empty one is allowed:
    the sink is then unconfigured); else a `ValueError` that never quotes it."""
    text = value.get_secret_value()
    if not text:
        return value
    expected = " or ".join(f"{scheme}://" for scheme in schemes)
    if any(char.isspace() for char in text):
        raise ValueError(f"url must be a URL starting with {expected}, without spaces")
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("url has an invalid port") from None
    if parts.scheme not in schemes:
        raise ValueError(f"url must start with {expected} (got scheme {parts.scheme!r})")
    if not parts.hostname:
        raise ValueError(f"url must be a URL starting with {expected}, with a host")
    return value


def broker_url_secrets(url: str) -> list[str]:
    """The secret parts of a broker URL (`sinks.secrets.url_secrets`: the URL as written,
    its credentials, secret-looking query values and path segments), but not the URL
    without its credentials: `amqp://host:5672/vhost` names a server, not a key."""
    shown = shown_broker_url(url)
    secrets = [
        secret
        for secret in url_secrets(url)
        if "://" not in secret or (secret == url and url != shown)
    ]
    password = urlsplit(url).password
    if password and unquote(password) != password:
        secrets.append(unquote(password))
    return secrets


def connection_name(sink: str) -> str:
    """The name the sink's connection shows in the broker's client lists
    (`revring-router:<sink>`), in characters every broker takes in one."""
    return "revring-router:" + re.sub(r"[^A-Za-z0-9_.:-]", "_", sink)


def shown_broker_url(url: str) -> str:
    """The URL without credentials or query: `amqp://host:5672/vhost`."""
    return mask_url(url) if url else ""


class BrokerSinkConfig(TimedSinkConfig):
    """Settings every broker sink has: `url` (a secret: it may hold credentials), an
    optional `body` template; `timeout` bounds one publish and its confirmation."""

    url: SecretStr
    body: JsonTemplate | None = None

    def missing_settings(self) -> list[str]:
        return [] if self.url.get_secret_value() else ["url"]

    def secret_values(self) -> list[str]:
        url = self.url.get_secret_value()
        others = [secret for secret in super().secret_values() if secret != url]
        return others + broker_url_secrets(url)

    def templates(self) -> dict[str, RendersText]:
        return {} if self.body is None else {"body": self.body}


@dataclass(frozen=True)
class BrokerMessage:
    """One message, fully built: `destination` (routing key, stream, subject), `body`, and
    the values it carries besides (`id`: the delivery id; `rule`, `sink`, `event_id`)."""

    destination: str
    body: bytes
    delivery_id: str
    rule: str
    sink: str
    event_id: str

    def carried(self) -> dict[str, str]:
        """`rule`, `sink` and `event_id`: the headers (or fields) every message carries."""
        return {"rule": self.rule, "sink": self.sink, "event_id": self.event_id}


def render_part(
    config: BrokerSinkConfig, setting: str, template: RendersText, context: dict[str, Any]
) -> str:
    """`template` rendered for a delivery; `Permanent` (scrubbed) when it fails."""
    try:
        return template.render(context)
    except TemplateRenderError as exc:
        raise Permanent(redact(f"{setting}: {exc}", config.secret_values())) from None


def build_message(
    config: BrokerSinkConfig,
    request: DeliveryRequest,
    destination: Callable[[dict[str, Any]], str] | None = None,
) -> BrokerMessage:
    """The message for one delivery: `destination` given the template context (when it
    needs one), the body as received or as `body` renders (a notice, `on_dead`: its
    JSON, whatever `body` says). `Permanent` when a template
    fails or the destination is not one the broker takes."""
    needs_context = config.body is not None or destination is not None
    context = template_context(request) if needs_context else {}
    where = destination(context) if destination is not None else ""
    if request.notice is not None:  # a dead delivery's notice (or a group): its JSON
        body = notice_bytes(request.notice)
    elif config.body is None:
        body = default_body(request)
    else:
        body = render_part(config, "body", config.body, context).encode("utf-8")
    return BrokerMessage(
        where, body, request.delivery_id, request.rule, request.sink, request.event_id
    )


def sent_record(
    config: BrokerSinkConfig,
    verb: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    secrets: list[str],
) -> Exchange:
    """What was published, as stored with the attempt: `verb` (`PUBLISH`, `XADD`), the
    target described without credentials, the headers or fields, the body (`secrets`, the
    sink's, masked)."""
    where = f"{shown_broker_url(config.url.get_secret_value())} {target}"
    sent = request_seen(verb, where, headers.items(), body, secrets=secrets, target_is_url=False)
    return Exchange(sent)


def confirmed(sent: Exchange, answer: str, *, secrets: list[str]) -> SendResult:
    """A publish the broker confirmed: the result, its exchange holding `answer`."""
    got = response_seen(None, (), answer, secrets=secrets)
    return SendResult(detail=answer, exchange=Exchange(sent.request, got))


def failure_reason(config: BrokerSinkConfig, text: str) -> str:
    """`text` fit to store and show: every secret of the settings masked."""
    return redact(text, config.secret_values())


Client = TypeVar("Client")


class BrokerConnection(Generic[Client]):
    """The one connection a sink holds to its broker, shared by its lanes.

    `get()` returns the open client, opening it on first use. After a failed open, or
    after `drop()` (a publish failed on it), the next opening waits for a backoff
    (`FIRST_BACKOFF`, doubling, at most `BACKOFF_CAP`): until then `get()` raises
    `Retryable` at once, so many deliveries to a broker that is down cost one connection
    attempt, not one each. `close()` (the sink's) closes it for good.
    """

    def __init__(
        self,
        name: str,
        open_client: Callable[[], Awaitable[Client]],
        close_client: Callable[[Client], Awaitable[None]],
        is_open: Callable[[Client], bool],
        *,
        timeout: float,
        describe: Callable[[BaseException], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._open = open_client
        self._close = close_client
        self._is_open = is_open
        self._timeout = timeout
        self._describe = describe
        self._clock = clock
        self._client: Client | None = None
        self._lock: asyncio.Lock | None = None
        self._failures = 0
        self._next_try = 0.0
        self._last_failure = ""
        self._closed = False

    async def get(self) -> Client:
        if self._client is not None and self._is_open(self._client):
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._closed:
                raise Retryable(f"{self._name}: the sink was closed (reloaded or stopping)")
            if self._client is not None:
                if self._is_open(self._client):
                    return self._client
                await self._discard()
            wait = self._next_try - self._clock()
            if wait > 0:
                raise Retryable(
                    f"{self._name} unreachable ({self._last_failure}); next connection"
                    f" attempt in {wait:.1f}s"
                )
            try:
                async with asyncio.timeout(self._timeout):
                    client = await self._open()
            except Exception as exc:
                self._failed(self._describe(exc))
                raise Retryable(f"{self._name}: {self._last_failure}") from None
            self._failures = 0
            self._client = client
            return client

    def _failed(self, reason: str) -> None:
        self._failures += 1
        self._last_failure = reason
        delay = min(BACKOFF_CAP, FIRST_BACKOFF * 2 ** (self._failures - 1))
        self._next_try = self._clock() + delay

    async def drop(self, client: Client, reason: str) -> None:
        """Give up `client` after a publish failed on it; the next `get()` reopens."""
        if self._client is client:
            self._failed(reason)
            await self._discard()

    async def _discard(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # A broken connection may fail to close; it is given up either way.
            with contextlib.suppress(Exception):
                await self._close(client)

    async def close(self) -> None:
        self._closed = True
        await self._discard()


class BrokerSink(Sink[BrokerMessage], Generic[Client]):
    """What the broker sinks share: one connection of their own (`BrokerConnection`,
    named `broker` in reasons), opened on first use by `_open`, checked by `_is_open`,
    closed by `_shut`, and for good by `close()` (reload, stop)."""

    config: BrokerSinkConfig
    broker: ClassVar[str]

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        url = self.config.url.get_secret_value()
        self._connection: BrokerConnection[Client] = BrokerConnection(
            self.broker,
            self._open,
            self._shut,
            self._is_open,
            timeout=self.config.timeout,
            describe=lambda exc: connection_failure(exc, url, self.secrets()),
        )

    async def _open(self) -> Client:
        raise NotImplementedError

    async def _shut(self, client: Client) -> None:
        raise NotImplementedError

    def _is_open(self, client: Client) -> bool:
        return True

    async def close(self) -> None:
        await self._connection.close()


def connection_failure(exc: BaseException, url: str, secrets: list[str]) -> str:
    """Why opening or using a connection failed, in words that name at most the host."""
    host = urlsplit(url).hostname or "?"
    if isinstance(exc, TimeoutError):
        return f"no answer from {host} in time"
    if _caused_by(exc, errno.ECONNREFUSED, ConnectionRefusedError):
        return f"connection refused by {host}"
    if _caused_by(exc, errno.ECONNRESET, ConnectionResetError):
        return f"connection reset by {host}"
    detail = " ".join(str(exc).split())[:200]
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return redact(text, [*secrets, url]).replace(url, MASK)


def shown_body(body: bytes) -> Any:
    """A body as a preview shows it: the JSON document, else the text."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", errors="replace")


def _caused_by(exc: BaseException, code: int, kind: type[OSError]) -> bool:
    """Whether `exc` is, wraps or was raised from an `OSError` of `kind` (or `code`): the
    clients wrap socket errors (`AMQPConnectionError(111, …)`)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind) or (isinstance(item, OSError) and item.errno == code):
            return True
        if item.args and item.args[0] == code and not isinstance(item, OSError):
            return True
        pending += [item.__cause__, item.__context__, *item.args]
    return False
