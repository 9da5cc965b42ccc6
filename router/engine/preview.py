"""What a call would do, without sending anything: the rules it matches, the delivery each
sink would get (sent, or muted by a time interval or a silence, and why), and each sent
delivery's rendered message. Pure: the same answer for `revring-router route --render`
and the console's rules playground.

A preview never carries a usable credential: each sink's `preview` masks its own (an
HTTP request's signature shows as `v1,***`, its secret headers as `***`, PagerDuty's
routing key as `***`) and every secret value of its settings (tokens, keys, passwords,
the secret parts of its URL) wherever a template put it; here the value of each
environment variable rules.yaml names whose name says it is a secret (`*_TOKEN`,
`*_KEY`, `*_SECRET`, `*_PASSWORD`...) is replaced by `***` too."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.config import Config, digest_of_one, missing_paths
from router.core.missing_values import tallied
from router.rules import CompiledRule, Silence, mute_decisions, route
from sinks.base import DeliveryError, DeliveryRequest, Digest, SinkResources, template_context
from sinks.registry import build_sink
from sinks.secrets import redact, scrubbed

# Environment variables whose values are secrets, by their names.
_SECRET_NAME = re.compile(r"secret|token|passw|pwd|key|auth|credential|cookie|session", re.I)
MIN_VARIABLE_SECRET = 8  # characters; shorter values of such variables are not scrubbed


@dataclass(frozen=True)
class SinkPreview:
    """One sink's delivery of the call: the rule that routes it there, and the message."""

    sink: str
    sink_type: str
    rule: CompiledRule
    missing_settings: list[str]  # non-empty: the sink is not configured
    digest: Digest | None  # a grouped rule: the digest this call would open, alone
    muted_reason: str | None = None  # `time_interval:NAME` or `silence:ID`: not sent
    message: Any = None  # what the sink's `preview` returns (secrets masked)
    render_error: str | None = None  # set instead of `message` when rendering fails
    missing_values: tuple[str, ...] = ()  # values the call lacks that rendered empty


@dataclass(frozen=True)
class Preview:
    event: Mapping[str, Any]
    matched: tuple[CompiledRule, ...]
    deliveries: tuple[SinkPreview, ...]


def preview(
    config: Config,
    event: Mapping[str, Any],
    at: datetime | None = None,
    *,
    render: bool = True,
    silences: Sequence[Silence] = (),
) -> Preview:
    """Route `event` through `config` as if it arrived at `at` (default now), muting what
    its time intervals and `silences` mute then, and with `render`, render each sent
    delivery's message the way the delivery engine would."""
    instant = at or datetime.now(UTC)
    now = instant.timestamp()
    routed = route(config.rules, event)
    decisions = mute_decisions(routed, config.time_intervals, instant, event, silences)
    resources = SinkResources()
    body = json.dumps(event).encode()
    named_secrets = [
        value
        for name, value in config.variables.items()
        if _SECRET_NAME.search(name) and len(value) >= MIN_VARIABLE_SECRET
    ]
    deliveries = []
    for sink_name, decision in decisions.items():
        settings = config.sinks[sink_name]
        rule = decision.rule
        digest = digest_of_one(rule, event, now)
        message: Any = None
        error: str | None = None
        missing: list[str] = []
        if render and decision.muted_reason is None:
            request = DeliveryRequest(
                delivery_id="preview",
                event_id=str(event.get("id")),
                sink=sink_name,
                rule=rule.name,
                event=event,
                digest=digest,
                payload=None if digest is not None else body,
            )
            with tallied() as printed:
                try:
                    message = scrubbed(
                        build_sink(sink_name, settings, resources).preview(request), named_secrets
                    )
                except DeliveryError as exc:
                    error = redact(exc.reason, named_secrets)
            if printed.count:
                reads = [read for t in settings.templates().values() for read in t.reads]
                context = template_context(request)
                missing = missing_paths(reads, list(printed.names), context)
        deliveries.append(
            SinkPreview(
                sink=sink_name,
                sink_type=settings.type,
                rule=rule,
                missing_settings=settings.missing_settings(),
                digest=digest,
                muted_reason=decision.muted_reason,
                message=message,
                render_error=error,
                missing_values=tuple(missing),
            )
        )
    return Preview(event=event, matched=tuple(routed.matched), deliveries=tuple(deliveries))


def lookup(event: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted field path of the event (None when absent)."""
    node: Any = event
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node
