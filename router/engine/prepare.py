"""What a webhook body becomes before it is stored (`prepare`): decoded, validated,
routed and muted. Pure CPU work with no I/O, so it runs on the event loop for a small
body and in a parse worker process (`router.engine.parse_workers`) for a large one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from router.core.events import EventRejected, PostCallEvent, TooDeep, decode_json, parse_event
from router.core.phones import e164
from router.rules import (
    CompiledRule,
    Silence,
    TimeInterval,
    group_key,
    group_key_json,
    mute_decisions,
    route,
)
from router.store import EscalationPlan, GroupJoin, searchable_text


class Target(NamedTuple):
    """A delivery routing asks for: to `sink`, for the rule named `rule`, joining a digest
    when the rule groups calls."""

    sink: str
    rule: str
    group: GroupJoin | None


class MutedTarget(NamedTuple):
    """A delivery recorded muted, not sent: `reason` is a silence or a time interval."""

    sink: str
    rule: str
    reason: str


def group_join(rule: CompiledRule, event: dict[str, Any]) -> GroupJoin | None:
    """How a delivery of `rule` joins a digest, or None for an ungrouped rule."""
    if rule.group is None:
        return None
    key = group_key_json(group_key(rule.group, event))
    return GroupJoin(key, rule.group.window, rule.group.max)


@dataclass(frozen=True)
class Rejection:
    """A body refused before it reached the store: the answer and the metric's reason."""

    status: int
    reason: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """What a valid body becomes, holding none of the decoded JSON: the decoded
    objects of a large body are many times its size and are freed before the store
    write (which may wait)."""

    event_id: str
    status: str
    direction: str
    unknown_fields: tuple[str, ...]
    targets: list[Target]
    matched: tuple[str, ...]  # rule names
    muted: tuple[MutedTarget, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)  # `IngestRecord`'s call columns
    # The body as JSON data, kept only for a small body (`prepare(keep_decoded=True)`), so
    # the delivery sent right after the commit does not decode it again.
    decoded: Any = field(default=None, compare=False, repr=False)
    # The timers of the escalating rules that sent the call somewhere (DESIGN.md 16).
    escalations: tuple[EscalationPlan, ...] = ()


def escalation_plans(
    matched: Sequence[CompiledRule], targets: Sequence[Target]
) -> tuple[EscalationPlan, ...]:
    """An `EscalationPlan` for each matched rule with `escalate` that has a target (a
    rule muted, or whose sinks all went to earlier rules, has nothing to escalate)."""
    sending = {target.rule for target in targets}
    return tuple(
        EscalationPlan(rule.name, rule.escalate.after, rule.escalate.to)
        for rule in matched
        if rule.escalate is not None and rule.name in sending
    )


def call_columns(event: PostCallEvent, payload: Any) -> dict[str, str]:
    """The fields the store keeps in columns of their own, for the console's filters and
    for finding calls by number or words."""
    return {
        "agent_id": event.agentId,
        "organization_id": event.organizationId,
        "hangup_cause": event.hangupCause or "",
        "from_number": e164(event.fromNumber) or "",
        "to_number": e164(event.toNumber) or "",
        "search_text": searchable_text(payload),
    }


@dataclass(frozen=True)
class MutingMoment:
    """What mutes a call received at `instant`: the time intervals of rules.yaml and the
    silences in force (DESIGN.md sections 6 and 9)."""

    intervals: Mapping[str, TimeInterval]
    silences: Sequence[Silence]
    instant: datetime


def prepare(
    body: bytes,
    rules: Sequence[CompiledRule],
    muting: MutingMoment | None = None,
    *,
    keep_decoded: bool = False,
) -> Prepared | Rejection:
    """Decode, validate and route a body: pure CPU work, safe to run in a worker thread.
    With `muting`, a sink whose every matching rule is muted, or that a silence covers,
    gets a muted delivery instead of a target. `keep_decoded` keeps the JSON data in the
    result (for small bodies: a large one's objects are freed before the store write)."""
    try:
        payload = decode_json(body, refuse_deep=True)
    except TooDeep as exc:
        return Rejection(
            422, "invalid_event", "invalid post-call event", {"problems": exc.problems}
        )
    except ValueError as exc:
        return Rejection(400, "malformed_json", f"malformed JSON: {exc}")
    try:
        event = parse_event(payload)
    except EventRejected as exc:
        return Rejection(
            422, "invalid_event", "invalid post-call event", {"problems": exc.problems}
        )
    routed = route(rules, payload)
    targets, muted = [], []
    if muting is None or not routed.deliveries:  # nothing to mute: no decisions made
        chosen = routed.deliveries
    else:
        decisions = mute_decisions(
            routed, muting.intervals, muting.instant, payload, muting.silences
        )
        chosen = {sink: decision.rule for sink, decision in decisions.items()}
        muted = [
            MutedTarget(sink, decision.rule.name, decision.muted_reason)
            for sink, decision in decisions.items()
            if decision.muted_reason is not None
        ]
    muted_sinks = {sink for sink, _, _ in muted}
    targets = [
        Target(sink, rule.name, group_join(rule, payload))
        for sink, rule in chosen.items()
        if sink not in muted_sinks
    ]
    return Prepared(
        event.id,
        event.status,
        event.direction,
        tuple(event.unknown_values()),
        targets,
        tuple(rule.name for rule in routed.matched),
        tuple(muted),
        call_columns(event, payload),
        payload if keep_decoded else None,
        escalation_plans(routed.matched, targets),
    )
