"""The one small interface every sink implements, and the outcomes it may raise.

The delivery engine sends a delivery as `transmit(build(request))`. `build` turns a
`DeliveryRequest` into the message, in full (templates rendered, encoded): it does no
I/O and uses nothing shared (it may read the clock, for a Date header or a signature), and
its message pickles, because for a large call it runs in a parse worker process
(`router.engine.render_apart`). `transmit` sends the message and returns a `SendResult`
when the destination accepted it, or raises (as `build` does when a template fails on
the call); either reports the `exchange` when something was sent (the request and the
answer, masked by `sinks.exchange`), which the engine stores with the attempt:

    DeliveryError
     ├── Retryable(reason, retry_after=None)   try again later (5xx, 429, timeouts,
     │                                         connection errors, SMTP 4xx, Slack ratelimited)
     └── Permanent(reason)                     never succeeds as is (other 4xx, SMTP 5xx,
                                               Slack channel_not_found, a template that fails)

`preview(request)` shows what would be sent, never a usable secret: the sink's `show`
of the built message, every secret of its settings replaced by `***`.

The delivery engine alone decides what happens next (reschedule, dead letter), and
whether a sink may send at all: never while its settings leave it unconfigured
(`SinkConfig.missing_settings`). A sink never checks that itself, never sleeps, never
retries on its own beyond a short connection blip, and never writes to the store but
for the access tokens it gets (`SinkResources.tokens`, `sinks.tokens`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from router.core.missing_values import tallied
from router.core.retry import RetrySettings
from router.core.template_fields import FieldRead
from router.core.templates import TemplateRenderError, event_context
from router.core.units import Duration, Rate, RateLimit
from router.store import StepOutcome, StepOutcomeKind
from sinks.exchange import Exchange
from sinks.secrets import redact, scrubbed

if TYPE_CHECKING:
    import aiohttp

    from router.store import OutboundTokens


class DeliveryError(Exception):
    """A send that did not succeed; `reason` is safe to store and show (no secrets)."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.exchange: Exchange | None = None  # what was sent and answered, if anything
        self.steps: tuple[StepOutcome, ...] = ()  # an `http` sink's steps, if it has any

    def with_reason(self, reason: str) -> DeliveryError:
        """The same failure (its kind, status, wait, exchange, steps) told with another reason."""
        again = type(self)(reason, status_code=self.status_code).with_exchange(self.exchange)
        again.steps = self.steps
        return again

    def with_exchange(self, exchange: Exchange | None) -> Self:
        """This failure, reporting `exchange` (the request sent and any answer)."""
        self.exchange = exchange
        return self


class Retryable(DeliveryError):
    """A failure that may pass later; `retry_after` (seconds) comes from the destination."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(reason, status_code=status_code)
        self.retry_after = retry_after

    def with_reason(self, reason: str) -> Retryable:
        again = Retryable(reason, retry_after=self.retry_after, status_code=self.status_code)
        again.steps = self.steps
        return again.with_exchange(self.exchange)


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
    notice: Mapping[str, Any] | None = None
    """A notice of a dead delivery (`on_dead`, `sinks.notices`): the sink shows it instead
    of a call alert; `event` is then the dead delivery's call, its numbers masked."""
    steps_done: Mapping[str, tuple[StepOutcomeKind, Mapping[str, Any]]] = field(
        default_factory=dict
    )
    """An `http` sink's steps done (or skipped) by earlier attempts, with their captures."""


# What templates see besides the call's fields and `event` (see `template_context`);
# a digest's own values only in a digest's delivery.
DIGEST_NAMES = frozenset({"calls", "count", "group_key", "window_start", "window_end"})
DELIVERY_NAMES = DIGEST_NAMES | {"rule", "sink", "delivery_id", "steps"}


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
    """A successful send: the destination's status and anything worth keeping; `exchange`
    the request sent and the answer (masked: `sinks.exchange`), stored with the attempt."""

    status_code: int | None = None
    detail: str | None = None
    exchange: Exchange | None = None
    steps: tuple[StepOutcome, ...] = ()  # an `http` sink's steps, if it has any


@dataclass(frozen=True)
class ThreadParent:
    """The first message of a thread (`thread_by`): where it was posted, the message as
    posted (to rewrite with the count), and the replies it has had so far."""

    channel: str
    ts: str
    message: Mapping[str, Any]
    replies: int = 0


class ThreadRegistry(Protocol):
    """Where a chat sink keeps its threads' parents (the store, for the service), so that
    alerts of one thread key reply to the first one's message across restarts and
    replicas. `hold` serializes a key's sends within the process (a second alert of a
    key waits for the first to post its parent, so they never make two); across replicas
    `start` is insert-if-absent, and the loser's message simply stands alone."""

    def hold(self, sink: str, thread_key: str) -> AbstractAsyncContextManager[None]: ...

    async def current(self, sink: str, thread_key: str, lasts: float) -> ThreadParent | None:
        """The thread of the key started less than `lasts` seconds ago, or None."""
        ...

    async def start(self, sink: str, thread_key: str, parent: ThreadParent, lasts: float) -> bool:
        """Record `parent` as the key's thread, unless a live one is recorded already."""
        ...

    async def replied(self, sink: str, thread_key: str, ts: str) -> int | None:
        """Count one more reply in the thread of parent `ts`: the replies now, or None
        when that thread is no longer the key's."""
        ...

    async def gone(self, sink: str, thread_key: str, ts: str) -> None:
        """The destination says the parent `ts` is gone: the key's next alert starts anew."""
        ...


@dataclass(slots=True, kw_only=True)
class SinkResources:
    """Clients the process shares among its sinks, one typed slot per kind of client. The
    app makes and closes them (`router.web.app`) and keeps them across reloads (a reload
    makes new sinks, never new clients). A sink uses the slot it needs and never closes
    it; an empty slot (a test, a preview, a parse worker: building a message uses none)
    means the sink opens a client of its own, which its `close()` releases.

    A kind of client added later gets a slot of its own, typed as what it holds: for a
    message broker, its open connections (one per sink) keyed by the settings each was
    opened with, so a reload that keeps a sink's settings keeps its connection.
    """

    http: aiohttp.ClientSession | None = None  # one pooled session for every HTTP sink
    # Where sinks keep the access tokens they get (the store: shared by replicas); empty,
    # each sink keeps its own in memory (`sinks.tokens`).
    tokens: OutboundTokens | None = None
    # Threads' parents, kept in the store (`router.engine.threads`); None: no threading.
    threads: ThreadRegistry | None = None


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
    # Sinks told when a delivery of this one goes dead (`sinks.notices`, DESIGN.md 16).
    on_dead: tuple[str, ...] = ()

    @field_validator("on_dead", mode="before")
    @classmethod
    def _one_or_many_sinks(cls, value: Any) -> Any:
        if value is None:
            return ()
        return [value] if isinstance(value, str) else value

    @field_validator("on_dead")
    @classmethod
    def _distinct_sinks(cls, sinks: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(sinks))

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
        context = self.trial_context(request)
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

    def trial_context(self, request: DeliveryRequest) -> dict[str, Any]:
        """What this sink's templates see when tried on `request` (`template_context`)."""
        return template_context(request)

    def setting_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Settings `check` refuses that no single setting's validation can see (they
        refer to each other), each as (its path under the sink, the problem)."""
        return []

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


Message = TypeVar("Message")


class Sink(ABC, Generic[Message]):
    """One configured destination (a `sinks:` entry of rules.yaml)."""

    config_class: ClassVar[type[SinkConfig]]  # its settings, which name its `type:`

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        self.name = name
        self.config = config
        self.resources = resources
        self._secrets: list[str] | None = None

    @classmethod
    def sending_class(cls, config: SinkConfig) -> type[Sink[Any]]:
        """The class that sends for `config` of this sink's type: this one, unless some
        settings need another (an `http` sink with `steps`)."""
        return cls

    @abstractmethod
    def build(self, request: DeliveryRequest) -> Message:
        """The message `transmit` sends for `request`, built in full: no I/O, nothing
        shared, picklable. Raises `Permanent` when it cannot be built (a template failing
        on this call), which the engine treats like any permanent failure."""

    @abstractmethod
    async def transmit(self, message: Message) -> SendResult:
        """Send what `build` returned; return on success, raise `Retryable` or `Permanent`."""

    def show(self, message: Message) -> Any:
        """A built message as people read it, JSON-able, with what the sink knows to be a
        credential masked where it stands (a signature, a routing key, header values)."""
        return message

    def preview(self, request: DeliveryRequest) -> Any:
        """What would be sent for `request` (`show` of the built message) with every
        secret of the settings (`SinkConfig.secret_values`) replaced by `***` wherever a
        template put it; raises what `build` raises, its reason scrubbed the same way."""
        secrets = self.secrets()
        try:
            shown = self.show(self.build(request))
        except DeliveryError as failure:
            raise failure.with_reason(redact(failure.reason, secrets)) from None
        return scrubbed(shown, secrets)

    def secrets(self) -> list[str]:
        """The settings' secret strings, to scrub from what the sink shows or reports
        (worked out once: a sink's settings never change, a reload makes new sinks)."""
        if self._secrets is None:
            self._secrets = self.config.secret_values()
        return self._secrets

    async def close(self) -> None:
        """Release anything the sink holds of its own (shared resources are not its)."""


class TimedSinkConfig(SinkConfig):
    """Settings of a sink whose every send is bounded by its `timeout` (one HTTP request,
    one SMTP conversation)."""

    timeout: Duration = 10.0

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value
