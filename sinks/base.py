"""The one small interface every sink implements, and the outcomes it may raise.

A sink turns a `DeliveryRequest` into one message and sends it. `send` returns
a `SendResult` when the destination accepted the message, or raises:

    DeliveryError
     ├── Retryable(reason, retry_after=None)   try again later (5xx, 429, timeouts,
     │                                         connection errors, SMTP 4xx, Slack ratelimited)
     └── Permanent(reason)                     never succeeds as is (other 4xx, SMTP 5xx,
                                               Slack channel_not_found, a template that fails)

The delivery engine alone decides what happens next (reschedule, dead letter);
a sink never sleeps, never retries on its own beyond a short connection blip,
and never writes to the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from router.core.missing_values import tallied
from router.core.retry import RetrySettings
from router.core.template_fields import FieldRead
from router.core.templates import TemplateRenderError, event_context
from router.core.units import Rate, RateLimit

if TYPE_CHECKING:
    import aiohttp


class DeliveryError(Exception):
    """A send that did not succeed; `reason` is safe to store and show (no secrets)."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class Retryable(DeliveryError):
    """A failure that may pass later; `retry_after` (seconds) comes from the destination."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(reason, status_code=status_code)
        self.retry_after = retry_after


class Permanent(DeliveryError):
    """A failure that will not pass by retrying the same message."""


def window_time(timestamp: float) -> str:
    """A digest window bound: unix seconds as ISO 8601 UTC text."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Digest:
    """The calls gathered by a grouped rule, delivered as one message."""

    group_key: Mapping[str, Any]
    window_start: str
    window_end: str
    calls: list[Mapping[str, Any]]

    @property
    def count(self) -> int:
        return len(self.calls)


@dataclass(frozen=True)
class DeliveryRequest:
    """What a sink needs to build and send one message."""

    delivery_id: str
    event_id: str
    sink: str
    rule: str
    event: Mapping[str, Any]
    attempt: int = 1
    digest: Digest | None = None
    payload: bytes | None = None
    """The event's body exactly as received, for sinks that forward it verbatim."""


# What templates see besides the call's fields and `event` (see `template_context`);
# a digest's own values only in a digest's delivery.
DIGEST_NAMES = frozenset({"calls", "count", "group_key", "window_start", "window_end"})
DELIVERY_NAMES = DIGEST_NAMES | {"rule", "sink", "delivery_id"}


def template_context(request: DeliveryRequest) -> dict[str, Any]:
    """What every sink's templates see for one delivery: the call (see `event_context`),
    `rule`, `sink`, `delivery_id`, and for a digest `calls`, `count`, `group_key`,
    `window_start`, `window_end`."""
    extra: dict[str, Any] = {
        "rule": request.rule,
        "sink": request.sink,
        "delivery_id": request.delivery_id,
    }
    digest = request.digest
    if digest is not None:
        extra.update(
            calls=digest.calls,
            count=digest.count,
            group_key=dict(digest.group_key),
            window_start=digest.window_start,
            window_end=digest.window_end,
        )
    return event_context(request.event, **extra)


class RendersText(Protocol):
    """A compiled template (or a wrapper of one, like a secret header value), and the
    paths of the values it reads (`router.core.template_fields`)."""

    @property
    def reads(self) -> tuple[FieldRead, ...]: ...

    def render(self, context: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True)
class TemplateTrial:
    """One of a sink's templates rendered for a sample delivery (`check`): what is wrong
    with it (it cannot render, or renders something the sink cannot send), and the
    missing values it printed, by name (`router.core.missing_values`)."""

    setting: str
    template: RendersText
    problem: str | None = None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendResult:
    """A successful send: the destination's status and anything worth keeping."""

    status_code: int | None = None
    detail: str | None = None


@dataclass
class SinkResources:
    """Shared clients handed to every sink; `http` is one pooled aiohttp session."""

    http: aiohttp.ClientSession | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sample_request(
    sample: Mapping[str, Any], *, rule: str = "sample-rule", digest: Digest | None = None
) -> DeliveryRequest:
    """A delivery of a sample call by `rule` (a digest's when `digest` is given), to try
    templates with."""
    return DeliveryRequest(
        delivery_id="sample-delivery",
        event_id=str(sample.get("id")),
        sink="sample-sink",
        rule=rule,
        event=sample,
        digest=digest,
    )


class SinkConfig(BaseModel):
    """Settings every sink type accepts; each sink module subclasses it with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    type: str
    rate_limit: RateLimit | None = None
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    retry: RetrySettings | None = None

    sink_class: ClassVar[type[Sink]]

    def missing_settings(self) -> list[str]:
        """Required settings that came out empty; non-empty means *unconfigured*."""
        return []

    def secret_values(self) -> list[str]:
        """Every secret string the settings hold, to scrub from text that might echo one
        (a reason, a preview): each `SecretStr` value and the literal text of each secret
        header, at any depth. A sink whose URL is a secret adds its parts (`url_secrets`)."""
        found: list[str] = []

        def collect(value: Any) -> None:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif callable(getattr(value, "secret_literals", None)):
                found.extend(value.secret_literals())
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    collect(getattr(value, name, None))
            elif isinstance(value, Mapping):
                for item in value.values():
                    collect(item)
            elif isinstance(value, list | tuple):
                for item in value:
                    collect(item)

        collect(self)
        return [value for value in found if value]

    def setting_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Settings `check` warns about, each as (its path under the sink, the problem)."""
        return []

    def templates(self) -> dict[str, RendersText]:
        """Every template this sink renders, by the setting that holds it."""
        return {}

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        """What is wrong with a template's output beyond failing to render, if anything."""
        return None

    def try_templates(
        self, request: DeliveryRequest, *, skip: Collection[str] = ()
    ) -> list[TemplateTrial]:
        """Each of this sink's templates (but those of the settings in `skip`) rendered
        for `request` (a sample delivery)."""
        context = template_context(request)
        trials = []
        for name, template in self.templates().items():
            if name in skip:
                continue
            with tallied() as missing:
                try:
                    problem = self.rendered_problem(name, template.render(context))
                except TemplateRenderError as exc:
                    problem = str(exc)
            trials.append(TemplateTrial(name, template, problem, tuple(missing.names)))
        return trials

    def sample_problems(
        self, sample: Mapping[str, Any], *, rule: str = "sample-rule", digest: Digest | None = None
    ) -> list[str]:
        """Why each of this sink's templates that cannot render a sample call cannot,
        rendered as a delivery of `rule` (a digest's when `digest` is given) would be."""
        request = sample_request(sample, rule=rule, digest=digest)
        return [
            f"{trial.setting}: {trial.problem}"
            for trial in self.try_templates(request)
            if trial.problem is not None
        ]

    def effective_rate_limit(self) -> Rate | None:
        """The rate limit in force: the configured one, else the sink type's default."""
        return self.rate_limit

    def effective_concurrency(self) -> int:
        return self.concurrency or 4


class Sink(ABC):
    """One configured destination (a `sinks:` entry of rules.yaml)."""

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        self.name = name
        self.config = config
        self.resources = resources

    @abstractmethod
    def render(self, request: DeliveryRequest) -> Any:
        """The message exactly as it would be sent, JSON-able; pure, no I/O.

        Raises `Permanent` when the message cannot be built (a template failing
        on this event), which the engine treats like any permanent failure.
        """

    @abstractmethod
    async def send(self, request: DeliveryRequest) -> SendResult:
        """Send one message; return on success, raise `Retryable` or `Permanent`."""

    # A sink whose `send` is `transmit(build(request))`: the engine may call `build` in a
    # parse worker process (`router.engine.render_apart`) for a large call.
    builds_apart: ClassVar[bool] = False

    def build(self, request: DeliveryRequest) -> Any:
        """The message `transmit` sends for `request`, built in full (templates rendered,
        encoded): pure, no I/O, picklable, and raising what `send` raises for the same
        reasons. The default builds nothing: `transmit` gets the request itself."""
        return request

    async def transmit(self, message: Any) -> SendResult:
        """Send what `build` returned; return on success, raise `Retryable` or `Permanent`."""
        return await self.send(message)

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release anything the sink holds of its own (shared resources are not its)."""
