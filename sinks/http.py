"""The `http` sink: the call as received (or a body template) to any HTTP/CRM endpoint.

Building a request and judging a response are pure functions (`build_request`,
`sign`, `classify_response`, `describe_transport_error`); `PostingSink.transmit`, which
the `pagerduty` and `teams` sinks share, is the one place that does I/O. Every request
carries `Idempotency-Key: <delivery id>` and, with a `signing_secret`, the Standard
Webhooks headers (`webhook-id` is the delivery id too), so a receiver can drop the
duplicates at-least-once brings.

Secrets (the URL, header values, the signing secret) stay out of `repr`, out of a
preview (the URL is cut to scheme://host, its path shown as `/***`; header values
show as `***`; the signature as `v1,***`, since a real one would let anyone who can
preview a body forge a signed request), and out of every failure reason (which never
names the URL, and is scrubbed of any secret a server echoes back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from abc import abstractmethod
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_chain,
    wait_fixed,
    wait_none,
)

from router import __version__
from router.core import tracing
from router.core.phones import mask_phone_numbers
from router.core.retry import parse_retry_after
from router.core.template_fields import FieldRead
from router.core.templates import (
    JsonTemplate,
    Template,
    TemplateKind,
    TemplateRenderError,
    compile_template,
    strip_line_breaks,
)
from router.core.units import format_duration
from router.store import StepOutcome
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
    Sink,
    SinkConfig,
    SinkResources,
    TemplateTrial,
    TimedSinkConfig,
    template_context,
)
from sinks.exchange import (
    SUCCESS_BODY_LIMIT,
    Exchange,
    SentRequest,
    request_seen,
    response_seen,
)
from sinks.http_steps import (
    AnswerNotJson,
    HttpStep,
    StepsMessage,
    capture,
    pending_steps,
    reference_problems,
    render_error,
    shown_captures,
    step_name_problems,
    steps_view,
    unknown_steps,
)
from sinks.notices import notice_bytes
from sinks.oauth2 import OAuth2Grants, OAuth2Settings
from sinks.secrets import MASK, redact, shown_url, url_secrets
from sinks.tokens import Authenticator, GrantSource, TokenProvider

USER_AGENT = f"revring-router/{__version__}"
RESPONSE_BODY_LIMIT = 64 * 1024
REASON_EXCERPT_CHARS = 200
RETRYABLE_STATUSES = frozenset({408, 425, 429})
BLIP_RETRY_WAITS: tuple[float, ...] = (0.1, 0.3)
SIGNATURE_HEADER = "webhook-signature"

_RESERVED_HEADERS = frozenset(
    {
        "idempotency-key",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_JINJA_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class SecretHeaderTemplate:
    """A compiled `header`-kind template whose source may hold an interpolated secret.

    Its source is kept private: `repr`/`str` (and so the config's repr and any log of
    it) show only a mask. Rendering strips CR/LF like any header template.
    """

    __slots__ = ("_template",)

    def __init__(self, source: str) -> None:
        self._template = Template(source, TemplateKind.HEADER)

    @property
    def reads(self) -> tuple[FieldRead, ...]:
        return self._template.reads

    def render(self, context: Mapping[str, Any]) -> str:
        return self._template.render(context)

    def secret_literals(self) -> list[str]:
        """The literal text of the template (where `${SECRETS}` land), for redaction only."""
        return [part.strip() for part in _JINJA_BLOCK.split(self._template.source) if part.strip()]

    def __repr__(self) -> str:
        return f"SecretHeaderTemplate({MASK!r})"

    __str__ = __repr__


def _compile_secret_header(value: Any) -> SecretHeaderTemplate:
    if isinstance(value, SecretHeaderTemplate):
        return value
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"a header value must be a string; got {type(value).__name__}")
    # compile_template's own errors name only the Jinja problem, never the source.
    compile_template(value, TemplateKind.HEADER)
    return SecretHeaderTemplate(value)


HeaderValue = Annotated[SecretHeaderTemplate, BeforeValidator(_compile_secret_header)]


def signing_key(secret: str) -> bytes:
    """The HMAC key of a signing secret: `whsec_<base64>` decoded, else the UTF-8 bytes."""
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ signing_secret must be base64 after whsec_") from None
        if not key:
            raise ValueError("a whsec_ signing_secret must not be empty after whsec_")
        return key
    return secret.encode("utf-8")


def _checked_header_names(value: Mapping[str, Any]) -> None:
    for name in value:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the router; remove it from headers")
        if name.lower() == "content-type":
            raise ValueError("set the Content-Type with content_type, not in headers")


class HttpStepConfig(HttpStep):
    """One of `steps` (`sinks.http_steps.HttpStep`), its header values secret like the
    sink's own."""

    headers: dict[str, HeaderValue] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretHeaderTemplate]) -> Any:
        _checked_header_names(value)
        return value


_AUTH_SETS_HEADER = "auth sets the Authorization header of every step; remove this header"


def _authorization_header(headers: Mapping[str, Any]) -> str | None:
    """The name `Authorization` is given under in `headers` (any case), if it is."""
    return next((name for name in headers if name.lower() == "authorization"), None)


def _has_userinfo(url_template: str) -> bool:
    """Whether a (step's) URL template writes credentials before its host (`user:pw@`)."""
    try:
        return "@" in urlsplit(_JINJA_BLOCK.sub("x", url_template)).netloc
    except ValueError:  # not a URL one can split (a bad IPv6 host): checked when sent
        return False


class HttpSinkConfig(TimedSinkConfig):
    type: Literal["http"]
    url: SecretStr | None = None
    steps: list[HttpStepConfig] | None = None
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    body: JsonTemplate | None = None
    content_type: str = "application/json"
    signing_secret: SecretStr | None = None
    success_codes: list[int] | None = None
    retry_on: list[int] = Field(default_factory=list)
    auth: OAuth2Settings | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        text = "" if value is None else value.get_secret_value()
        if text:
            parts = urlsplit(text)
            try:
                parts.port  # noqa: B018 - raises on a port out of range
            except ValueError:
                raise ValueError("url has an invalid port") from None
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or any(char.isspace() for char in text)
            ):
                raise ValueError("url must be an http:// or https:// URL with a host")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretHeaderTemplate]) -> Any:
        _checked_header_names(value)
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[HttpStepConfig] | None) -> list[HttpStepConfig] | None:
        if value is not None:
            problems = step_name_problems(value)
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @field_validator("content_type")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or strip_line_breaks(value) != value:
            raise ValueError("content_type must be one non-empty line")
        return value

    @field_validator("success_codes", "retry_on")
    @classmethod
    def _status_codes(cls, value: list[int] | None) -> list[int] | None:
        for code in value or ():
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _decodable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            signing_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> HttpSinkConfig:
        if self.steps is not None:
            if self.url is not None:
                raise ValueError("give either url (one request) or steps, not both")
            given = {"body", "method"} & self.model_fields_set
            if given:
                raise ValueError(
                    f"with steps, set {' and '.join(sorted(given))} on each step, not the sink"
                )
            return self
        if self.url is None:
            raise ValueError("an http sink needs a url (one request) or steps")
        has_userinfo = "@" in urlsplit(self.url.get_secret_value()).netloc
        has_header = any(name.lower() == "authorization" for name in self.headers)
        if has_userinfo and has_header:
            raise ValueError("give credentials either in the url or in an Authorization header")
        if self.auth is not None and (has_userinfo or has_header):
            raise ValueError(
                "auth sets the Authorization header; remove the credentials from the url"
                " and the Authorization header from headers"
            )
        return self

    @property
    def target(self) -> str:
        """The one request's URL (a secret); empty for a sink with steps."""
        return "" if self.url is None else self.url.get_secret_value()

    def missing_settings(self) -> list[str]:
        if self.steps is not None:  # a step's url empty (`${CRM_URL:-}` unset): it waits
            missing = [f"steps.{i}.url" for i, step in enumerate(self.steps) if not step.url.source]
        else:
            missing = [] if self.target else ["url"]
        if self.auth is not None:
            missing += self.auth.missing_settings()
        return missing

    def setting_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [*reference_problems(self.steps or ()), *self._step_credential_problems()]

    def _step_credential_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """What a single request's `_one_kind_of_credentials` refuses, for steps: with
        `auth`, any Authorization header (the sink's or a step's) and credentials in a
        step's url; without, credentials in a step's url beside an Authorization header."""
        if self.steps is None:
            return []
        problems: list[tuple[tuple[str | int, ...], str]] = []
        sink_header = _authorization_header(self.headers)
        if self.auth is not None and sink_header is not None:
            problems.append((("headers", sink_header), _AUTH_SETS_HEADER))
        for index, step in enumerate(self.steps):
            step_header = _authorization_header(step.headers)
            in_url = _has_userinfo(step.url.source)
            if self.auth is not None:
                if step_header is not None:
                    problems.append((("steps", index, "headers", step_header), _AUTH_SETS_HEADER))
                if in_url:
                    problems.append(
                        (
                            ("steps", index, "url"),
                            "auth sets the Authorization header; remove the credentials"
                            " from the url",
                        )
                    )
            elif in_url and (step_header or sink_header) is not None:
                problems.append(
                    (
                        ("steps", index, "url"),
                        "give credentials either in the url or in an Authorization header",
                    )
                )
        return problems

    def trial_context(self, request: DeliveryRequest) -> dict[str, Any]:
        context = super().trial_context(request)
        if self.steps is not None:
            context["steps"] = unknown_steps(self.steps)
        return context

    def signing_key(self) -> bytes | None:
        """The HMAC key, or None when requests are not signed (no or empty secret)."""
        if self.signing_secret is None or not self.signing_secret.get_secret_value():
            return None
        return signing_key(self.signing_secret.get_secret_value())

    def templates(self) -> dict[str, RendersText]:
        named: dict[str, RendersText] = {
            f"headers.{name}": template for name, template in self.headers.items()
        }
        if self.body is not None:
            named["body"] = self.body
        for index, step in enumerate(self.steps or ()):
            named.update(
                (f"steps.{index}.{setting}", template)
                for setting, template in step.templates().items()
            )
        return named

    def try_templates(
        self, request: DeliveryRequest, *, skip: Collection[str] = ()
    ) -> list[TemplateTrial]:
        secrets = self.secret_values()
        return [
            replace(trial, problem=redact(trial.problem, secrets)) if trial.problem else trial
            for trial in super().try_templates(request, skip=skip)
        ]

    def secret_values(self) -> list[str]:
        found = super().secret_values() + url_secrets(self.target)
        for step in self.steps or ():
            # A step's URL is a template, not a secret: only what looks secret in it is.
            literal = _JINJA_BLOCK.sub("", step.url.source)
            found += [part for part in url_secrets(literal) if "://" not in part]
        return found


@dataclass(frozen=True)
class OutgoingRequest:
    """One HTTP request, fully built; `url` and `secret_headers` values are secrets."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secret_headers: frozenset[str]
    timeout: float | None = None  # this request's own (a step's), else the sink's


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def default_body(request: DeliveryRequest) -> bytes:
    """The body when there is no `body` template: the call exactly as received (else as
    parsed), a digest as one document listing its calls. The broker sinks send it too."""
    if request.digest is not None:
        digest = request.digest
        document: Any = {
            "rule": request.rule,
            "group_key": dict(digest.group_key),
            "window_start": digest.window_start,
            "window_end": digest.window_end,
            "count": digest.count,
            "calls": list(digest.calls),
        }
    elif request.payload is not None:
        return request.payload
    else:
        document = request.event
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def build_request(
    config: HttpSinkConfig, request: DeliveryRequest, *, now: float
) -> OutgoingRequest:
    """The request for one delivery at time `now`; raises `Permanent` when a template fails."""
    # The context is built only for a sink that has templates: the plain forwarding sink
    # sends the body as received and needs none.
    context = template_context(request) if config.body is not None or config.headers else {}
    if request.notice is not None:  # a dead delivery's notice: always its JSON
        body = notice_bytes(request.notice)
    elif config.body is None:
        body = default_body(request)
    else:
        try:
            body = config.body.render(context).encode("utf-8")
        except TemplateRenderError as exc:
            raise Permanent(redact(f"body: {exc}", config.secret_values())) from None
    content_type = "application/json" if request.notice is not None else config.content_type
    headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    secret_headers = set()
    for name, template in config.headers.items():
        try:
            value = template.render(context)
        except TemplateRenderError as exc:
            raise Permanent(redact(f"headers.{name}: {exc}", config.secret_values())) from None
        for existing in [key for key in headers if key.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
        secret_headers.add(name)
    headers["Idempotency-Key"] = request.delivery_id
    key = config.signing_key()
    if key is not None:
        timestamp = int(now)
        headers["webhook-id"] = request.delivery_id
        headers["webhook-timestamp"] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(key, request.delivery_id, timestamp, body)
    return OutgoingRequest(config.method, config.target, headers, body, frozenset(secret_headers))


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def body_excerpt(body: bytes, limit: int = REASON_EXCERPT_CHARS) -> str:
    """The start of a response body as one line of at most `limit` characters."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_success(status: int, success_codes: Iterable[int] | None) -> bool:
    """Any 2xx, or exactly the configured `success_codes`."""
    return status in success_codes if success_codes is not None else 200 <= status < 300


def classify_response(
    status: int,
    *,
    body: bytes = b"",
    retry_after: str | None = None,
    success_codes: Iterable[int] | None = None,
    retry_on: Iterable[int] = (),
    now: float = 0.0,
    secrets: Iterable[str] = (),
) -> SendResult | DeliveryError:
    """What a response status means: success, or the failure to raise (not raised here)."""
    summary = _status_text(status)
    if is_success(status, success_codes):
        return SendResult(status_code=status, detail=summary)
    excerpt = mask_phone_numbers(redact(body_excerpt(body), secrets))
    reason = f"{summary}: {excerpt}" if excerpt else summary
    if status in RETRYABLE_STATUSES or status >= 500 or status in set(retry_on):
        return Retryable(
            reason, status_code=status, retry_after=parse_retry_after(retry_after, now)
        )
    if 300 <= status < 400:
        reason = f"{summary}: redirects are not followed; point url at the final address"
    elif 200 <= status < 300:
        reason = f"{summary}: not one of success_codes"
    return Permanent(reason, status_code=status)


def describe_transport_error(exc: BaseException, *, timeout: float, host: str) -> Retryable:
    """A failure before any response (connect, TLS, DNS, timeout, reset) as a safe reason."""
    if isinstance(exc, TimeoutError):
        return Retryable(f"timeout after {format_duration(timeout)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
        return Retryable(f"TLS error: certificate not accepted for host {host}: {detail}")
    if isinstance(exc, aiohttp.ClientSSLError):
        cause = exc.os_error
        detail = getattr(cause, "reason", None) or type(cause).__name__
        return Retryable(f"TLS error: handshake with host {host} failed: {detail}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Retryable(f"DNS lookup failed for host {host}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Retryable(f"connection refused by host {host}")
        detail = exc.os_error.strerror or type(exc.os_error).__name__
        return Retryable(f"cannot connect to host {host}: {detail}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Retryable(f"server {host} disconnected before answering")
    if isinstance(exc, ConnectionResetError) or (
        isinstance(exc, OSError) and isinstance(exc.__cause__, ConnectionResetError)
    ):
        return Retryable(f"connection reset by host {host}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Retryable(f"response from host {host} was cut off")
    return Retryable(f"HTTP client error talking to host {host}: {type(exc).__name__}")


def is_connection_blip(exc: BaseException) -> bool:
    """Refused, reset or dropped connections: worth a quick retry in-process."""
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError):
        return False
    if isinstance(exc, aiohttp.ClientConnectorError):
        return isinstance(exc.os_error, ConnectionRefusedError | ConnectionResetError)
    return isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError)


def _parsed_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read: text
        return body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Answer:
    """A destination's response: its status, its `Retry-After`, the start of its body (all
    of it, up to `RESPONSE_BODY_LIMIT`, when the sink judges by it: `reads_body`), its
    headers, and whether `body` is the whole body."""

    status: int
    retry_after: str | None
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    complete: bool = True


class PostingSink(Sink[OutgoingRequest]):
    """What every sink that sends one HTTP request per delivery shares: `transmit` through
    the pooled session (or one of its own), quick in-process retries after a connection
    blip (tenacity), transport failures turned into `Retryable`s whose reasons name at
    most the host (after `reason_prefix`), and the answer judged by the sink (`judge`)."""

    config: TimedSinkConfig
    blip_retry_waits: tuple[float, ...] = BLIP_RETRY_WAITS
    reason_prefix: ClassVar[str] = ""  # `teams: `: where a failure's reason says it came from

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        self._own_session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=self.config.timeout)

    @abstractmethod
    def judge(self, answer: Answer, secrets: list[str]) -> SendResult | DeliveryError:
        """What the destination's answer means: success, or the failure to raise, its
        reason scrubbed of `secrets`."""

    def reads_body(self, status: int) -> bool:
        """Whether the body of an answer with `status` is worth reading (for a reason)."""
        return not 200 <= status < 300

    authenticator: Authenticator | None = None  # asked for the Authorization header

    async def transmit(self, outgoing: OutgoingRequest) -> SendResult:
        auth = self.authenticator
        if auth is None:
            return await self._transmit_once(outgoing, self.secrets())
        try:
            authorization = await auth.authorization()
            try:
                return await self._transmit_once(
                    authorized(outgoing, authorization), [*self.secrets(), *auth.secrets()]
                )
            except DeliveryError as failure:
                if failure.status_code != HTTPStatus.UNAUTHORIZED:
                    raise
            auth.rejected(authorization)  # expired early or revoked: renewed once
            authorization = await auth.authorization()
            return await self._transmit_once(
                authorized(outgoing, authorization), [*self.secrets(), *auth.secrets()]
            )
        except DeliveryError as failure:
            if not self.reason_prefix or failure.reason.startswith(self.reason_prefix):
                raise
            raise failure.with_reason(self.reason_prefix + failure.reason) from None

    async def _transmit_once(self, outgoing: OutgoingRequest, secrets: list[str]) -> SendResult:
        """Send, and keep the exchange: in full for a failure, and for a success its heads
        with the response's body only when small (`sinks.exchange`), captured after the
        answer so that a success masks no body."""
        if tracing.is_on():  # the attempt's span is the request's parent: `traceparent`
            outgoing = replace(outgoing, headers=tracing.with_trace_headers(outgoing.headers))
        try:
            answer = await self.post(outgoing, secrets=secrets)
        except DeliveryError as failure:
            failure.with_exchange(Exchange(self._request_seen(outgoing, secrets)))
            if not self.reason_prefix:
                raise
            raise failure.with_reason(self.reason_prefix + failure.reason) from None
        outcome = self.judge(answer, secrets)
        failed = isinstance(outcome, DeliveryError)
        exchange = Exchange(
            self._request_seen(outgoing, secrets, keep_body=failed),
            response_seen(
                answer.status,
                answer.headers,
                answer.body,
                secrets=secrets,
                complete=answer.complete,
                keep_body=failed or len(answer.body) <= SUCCESS_BODY_LIMIT,
            ),
        )
        if isinstance(outcome, DeliveryError):
            raise outcome.with_exchange(exchange)
        return replace(outcome, exchange=exchange)

    @staticmethod
    def _request_seen(
        outgoing: OutgoingRequest, secrets: list[str], *, keep_body: bool = True
    ) -> SentRequest:
        return request_seen(
            outgoing.method,
            outgoing.url,
            outgoing.headers.items(),
            outgoing.body,
            secrets=secrets,
            secret_headers=outgoing.secret_headers,
            keep_body=keep_body,
        )

    async def post(self, outgoing: OutgoingRequest, *, secrets: list[str]) -> Answer:
        """Send `outgoing`; the answer, whatever its status. Raises `Retryable` when no
        answer came (refused, reset, timeout, DNS, TLS) and `Permanent` when the client
        refuses the request; no reason names more of the URL than its host."""
        try:
            return await self._exchange_riding_out_blips(outgoing)
        except aiohttp.InvalidURL:
            raise Permanent("the url is not a valid HTTP URL") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            host = urlsplit(outgoing.url).hostname or "?"
            timeout = outgoing.timeout or self.config.timeout
            failure = describe_transport_error(exc, timeout=timeout, host=host)
            raise Retryable(redact(failure.reason, secrets)) from None
        except ValueError as exc:
            # aiohttp refuses some requests outright; its message may quote the URL.
            raise Permanent(f"the HTTP client refused the request: {type(exc).__name__}") from None

    async def _exchange_riding_out_blips(self, outgoing: OutgoingRequest) -> Answer:
        """The exchange, with quick in-process retries (tenacity) after a connection blip.
        The first try goes straight out: the retry machinery costs only when needed."""
        try:
            return await self._exchange(outgoing)
        except Exception as exc:
            if not is_connection_blip(exc) or not self.blip_retry_waits:
                raise
        first_wait, *later_waits = self.blip_retry_waits
        await asyncio.sleep(first_wait)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_connection_blip),
            stop=stop_after_attempt(len(self.blip_retry_waits)),
            wait=wait_chain(*(wait_fixed(seconds) for seconds in later_waits))
            if later_waits
            else wait_none(),
            reraise=True,
        )
        return await retrying(self._exchange, outgoing)

    async def _exchange(self, outgoing: OutgoingRequest) -> Answer:
        """One request and its answer; transport errors propagate."""
        async with self._session().request(
            outgoing.method,
            outgoing.url,
            headers=outgoing.headers,
            data=outgoing.body,
            timeout=self._timeout
            if outgoing.timeout is None
            else aiohttp.ClientTimeout(total=outgoing.timeout),
            allow_redirects=False,
            raise_for_status=False,
        ) as response:
            # The whole body (to a cap) when the sink judges by it; else (a success) only
            # a small body that came with the head: a success keeps no more.
            if self.reads_body(response.status):
                body = await _read_capped(response, RESPONSE_BODY_LIMIT)
                complete = len(body) < RESPONSE_BODY_LIMIT
            else:
                body, complete = _come_with_head(response, SUCCESS_BODY_LIMIT)
            return Answer(
                response.status,
                response.headers.get("Retry-After"),
                body,
                tuple(response.headers.items()),
                complete=complete,
            )

    def token_provider(self, grants: GrantSource) -> TokenProvider:
        """The sink's tokens from `grants`, through its session, shared by the store."""
        return TokenProvider(
            self.name,
            grants,
            session=self._session,
            store=self.resources.tokens,
            secrets=self.secrets(),
        )

    def _session(self) -> aiohttp.ClientSession:
        if self.resources.http is not None:
            return self.resources.http
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None


def authorized(outgoing: OutgoingRequest, authorization: str) -> OutgoingRequest:
    """`outgoing` with the `Authorization` header an `Authenticator` gave (a secret)."""
    headers = {
        name: value for name, value in outgoing.headers.items() if name.lower() != "authorization"
    }
    headers["Authorization"] = authorization
    return replace(
        outgoing, headers=headers, secret_headers=outgoing.secret_headers | {"Authorization"}
    )


class HttpSink(PostingSink):
    config: HttpSinkConfig
    config_class = HttpSinkConfig

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        if self.config.auth is not None:
            self.authenticator = self.token_provider(OAuth2Grants(self.config.auth))

    def reads_body(self, status: int) -> bool:
        return not is_success(status, self.config.success_codes)

    @classmethod
    def sending_class(cls, config: SinkConfig) -> type[Sink[Any]]:
        if isinstance(config, HttpSinkConfig) and config.steps is not None:
            return HttpStepsSink
        return cls

    def build(self, request: DeliveryRequest) -> OutgoingRequest:
        return build_request(self.config, request, now=time.time())

    def show(self, outgoing: OutgoingRequest) -> dict[str, Any]:
        headers = {
            name: MASK if name in outgoing.secret_headers else value
            for name, value in outgoing.headers.items()
        }
        if SIGNATURE_HEADER in headers:  # a real one would sign whatever body was typed in
            headers[SIGNATURE_HEADER] = "v1," + MASK
        if self.config.auth is not None:  # got from the token endpoint when sending
            headers["Authorization"] = f"Bearer {MASK}"
        return {
            "method": outgoing.method,
            "url": shown_url(outgoing.url),
            "headers": headers,
            "body": _parsed_body(outgoing.body),
        }

    def judge(self, answer: Answer, secrets: list[str]) -> SendResult | DeliveryError:
        return classify_response(
            answer.status,
            body=answer.body,
            retry_after=answer.retry_after,
            success_codes=self.config.success_codes,
            retry_on=self.config.retry_on,
            now=time.time(),
            secrets=secrets,
        )


def build_step_request(
    config: HttpSinkConfig,
    step: HttpStep,
    context: Mapping[str, Any],
    delivery_id: str,
    *,
    now: float,
    preview: bool = False,
) -> OutgoingRequest:
    """One step's request, its templates rendered for `context` (the call and the earlier
    steps' captures); raises `Permanent` naming the step when a template fails, or its
    URL is none (`preview`: it may hold placeholders, `sinks.http_steps.unknown_steps`)."""
    secrets = config.secret_values()

    def rendered(setting: str, template: RendersText) -> str:
        try:
            return template.render(context)
        except TemplateRenderError as exc:
            raise Permanent(redact(render_error(step, setting, exc), secrets)) from None

    url = rendered("url", step.url).strip()
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        parts = urlsplit("")
    if not preview and (parts.scheme not in ("http", "https") or not parts.hostname or " " in url):
        raise Permanent(f"step {step.name!r}: url did not render an http:// or https:// URL")
    body = b"" if step.body is None else rendered("body", step.body).encode("utf-8")
    headers = {"User-Agent": USER_AGENT}
    if step.body is not None:
        headers["Content-Type"] = config.content_type
    secret_headers = set()
    for name, template in [*config.headers.items(), *step.headers.items()]:
        value = rendered(f"headers.{name}", template)
        for existing in [key for key in headers if key.lower() == name.lower()]:
            del headers[existing]
            secret_headers.discard(existing)
        headers[name] = value
        secret_headers.add(name)
    key_of_step = f"{delivery_id}:{step.name}"
    headers["Idempotency-Key"] = key_of_step
    key = config.signing_key()
    if key is not None:
        timestamp = int(now)
        headers["webhook-id"] = key_of_step
        headers["webhook-timestamp"] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(key, key_of_step, timestamp, body)
    return OutgoingRequest(
        step.method, url, headers, body, frozenset(secret_headers), timeout=step.timeout
    )


class _StepRequests(HttpSink):
    """How an `HttpStepsSink` sends one step: the http sink's session, blip retries,
    judging and token (`authenticator`), with every answer read whole (to its cap: a
    step may capture from it)."""

    def reads_body(self, status: int) -> bool:
        return True

    def build(self, request: DeliveryRequest) -> OutgoingRequest:
        raise NotImplementedError("a step's request is built by HttpStepsSink")


class HttpStepsSink(Sink[StepsMessage]):
    """An `http` sink with `steps` (DESIGN.md section 17): the steps in order, from the
    first one earlier attempts did not finish (`DeliveryRequest.steps_done`); each step's
    outcome and captures reported with the attempt (`SendResult.steps`, or the failure's
    `steps`), which the engine stores for the next attempt to resume after. Delivered
    when the last step succeeds (or is skipped). With `auth`, every step carries the
    sink's one token (`authenticator`); a 401 renews it once and resends that step."""

    config: HttpSinkConfig
    config_class = HttpSinkConfig

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        self._requests = _StepRequests(name, config, resources)
        # `auth:`: every step's Authorization, one token for all of them (`sinks.tokens`).
        self.authenticator = self._requests.authenticator

    @property
    def steps(self) -> list[HttpStepConfig]:
        return self.config.steps or []

    def build(self, request: DeliveryRequest) -> StepsMessage:
        done = {
            name: (outcome, dict(captures))
            for name, (outcome, captures) in request.steps_done.items()
        }
        return StepsMessage(request.delivery_id, template_context(request), done)

    async def transmit(self, message: StepsMessage) -> SendResult:
        done = dict(message.done)
        outcomes = [
            StepOutcome(
                step.name,
                done[step.name][0],
                dict(done[step.name][1]),
                shown_captures(done[step.name][1]),
                earlier=True,
            )
            for step in self.steps[: pending_steps(self.steps, done)]
        ]
        last: SendResult | None = None
        secrets = self.secrets()
        for step in self.steps[pending_steps(self.steps, done) :]:
            context = {**message.context, "steps": steps_view(self.steps, done)}
            try:
                if step.when is not None and not step.when.holds(context):
                    done[step.name] = ("skipped", {})
                    outcomes.append(StepOutcome(step.name, "skipped"))
                    continue
                outgoing = build_step_request(
                    self.config, step, context, message.delivery_id, now=time.time()
                )
            except TemplateRenderError as exc:
                refused = Permanent(redact(render_error(step, "if", exc), secrets))
                raise self._failed(refused, step, outcomes) from None
            except Permanent as unbuilt:
                raise self._failed(unbuilt, step, outcomes) from None
            try:
                answer, judged, exchange = await self._send_step(outgoing)
            except DeliveryError as failure:  # no answer, or no token to send it with
                raise self._failed(failure, step, outcomes) from None
            if isinstance(judged, DeliveryError):
                raise self._failed(judged.with_exchange(exchange), step, outcomes) from None
            try:
                captures = capture(step, answer.body, complete=answer.complete)
            except AnswerNotJson as exc:
                unread = Permanent(f"{exc}", status_code=answer.status)
                raise self._failed(unread.with_exchange(exchange), step, outcomes) from None
            done[step.name] = ("done", captures)
            outcomes.append(
                StepOutcome(step.name, "done", captures, shown_captures(captures), exchange)
            )
            last = replace(judged, exchange=exchange)
        summary = ", ".join(f"{o.name} {o.outcome}" for o in outcomes if not o.earlier)
        if last is None:
            return SendResult(
                detail=f"steps: {summary or 'all done by earlier attempts'}", steps=tuple(outcomes)
            )
        return replace(last, detail=f"{last.detail}; steps: {summary}", steps=tuple(outcomes))

    async def _send_step(
        self, outgoing: OutgoingRequest
    ) -> tuple[Answer, SendResult | DeliveryError, Exchange]:
        """One step's request (the one place a step goes out), its answer judged, and the
        exchange as kept. With `auth`, the request carries the token; a 401 drops it, and
        the step alone is sent once more with a renewed one (the steps before it are not
        repeated). Raises a `DeliveryError` when no answer came (reporting what was sent)
        or no token could be had (the token endpoint's exchange; nothing sent)."""
        auth = self.authenticator
        if auth is None:
            return await self._exchange_step(outgoing, self.secrets())
        authorization = await auth.authorization()
        secrets = [*self.secrets(), *auth.secrets()]
        sent = await self._exchange_step(authorized(outgoing, authorization), secrets)
        judged = sent[1]
        if not isinstance(judged, DeliveryError) or judged.status_code != HTTPStatus.UNAUTHORIZED:
            return sent
        auth.rejected(authorization)  # expired early or revoked: renewed once
        renewed = await auth.authorization()
        secrets = [*secrets, *auth.secrets()]  # the refused token too, should it echo back
        return await self._exchange_step(authorized(outgoing, renewed), secrets)

    async def _exchange_step(
        self, outgoing: OutgoingRequest, secrets: list[str]
    ) -> tuple[Answer, SendResult | DeliveryError, Exchange]:
        if tracing.is_on():  # each step's request a child of the attempt: `traceparent`
            outgoing = replace(outgoing, headers=tracing.with_trace_headers(outgoing.headers))
        sent = request_seen(
            outgoing.method,
            outgoing.url,
            outgoing.headers.items(),
            outgoing.body,
            secrets=secrets,
            secret_headers=outgoing.secret_headers,
        )
        try:
            answer = await self._requests.post(outgoing, secrets=secrets)
        except DeliveryError as failure:
            raise failure.with_exchange(Exchange(sent)) from None
        got = response_seen(
            answer.status, answer.headers, answer.body, secrets=secrets, complete=answer.complete
        )
        return answer, self._requests.judge(answer, secrets), Exchange(sent, got)

    @staticmethod
    def _failed(
        failure: DeliveryError, step: HttpStep, outcomes: list[StepOutcome]
    ) -> DeliveryError:
        """`failure` told as the failure of `step`, reporting the steps so far."""
        prefix = f"step {step.name!r}: "
        named = failure.with_reason(
            failure.reason if failure.reason.startswith(prefix) else prefix + failure.reason
        )
        named.steps = (*outcomes, StepOutcome(step.name, "failed", exchange=failure.exchange))
        return named

    def show(self, message: StepsMessage) -> dict[str, Any]:
        """Every step as it would be sent, the values earlier answers will tell shown as
        placeholders (`sinks.http_steps.unknown_steps`); a step's `if` shown, not run."""
        context = {**message.context, "steps": unknown_steps(self.steps)}
        shown = []
        for step in self.steps:
            outgoing = build_step_request(
                self.config, step, context, message.delivery_id, now=time.time(), preview=True
            )
            headers = {
                name: MASK if name in outgoing.secret_headers else value
                for name, value in outgoing.headers.items()
            }
            if SIGNATURE_HEADER in headers:
                headers[SIGNATURE_HEADER] = "v1," + MASK
            if self.config.auth is not None:  # got from the token endpoint when sending
                headers["Authorization"] = f"Bearer {MASK}"
            entry: dict[str, Any] = {
                "name": step.name,
                "method": outgoing.method,
                "url": outgoing.url,  # a template, not a secret: what looks secret is masked
                "headers": headers,
                "body": _parsed_body(outgoing.body) if outgoing.body else None,
            }
            if step.when is not None:
                entry["if"] = step.when.source
            if step.capture:
                entry["capture"] = {name: expr.source for name, expr in step.capture.items()}
            shown.append(entry)
        return {"steps": shown}

    async def close(self) -> None:
        await self._requests.close()


def _come_with_head(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body when it is at most `limit` bytes and already here (it came with the head:
    a short answer), and whether it is whole; else nothing is read or waited for (b"",
    False). A body left unread that had all come keeps the connection reusable."""
    content = response.content
    if not content.is_eof():
        return b"", False
    body = content.read_nowait(limit + 1)
    return (body, True) if len(body) <= limit else (b"", False)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of a response body; a body that breaks off yields what came."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            chunk = await response.content.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError):
        pass
    return b"".join(chunks)
