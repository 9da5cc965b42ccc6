"""Acknowledging an alert (DESIGN.md sections 12 and 16), one way for every surface: the
Slack button, the console, `POST /admin/deliveries/{id}/acknowledge` and
`revring-router ack`. An acknowledgement is recorded on the delivery's call and rule (a
digest: on the digest, of its rule), so one on any delivery of a call for a rule, in any
state, counts for that call and rule and stops that rule's escalation, and no other
rule's; the first one of each counts, later ones answer with it and are not audited
again. One recorded before acknowledgements were per rule (rule `ALL_RULES`) counts for
every rule of its call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from router.operators.audit import AuditTrail
from router.store import ALL_RULES, AcknowledgedKind, Acknowledgement, DeliveryView


class DeliveryReads(Protocol):
    async def get_delivery(self, delivery_id: str) -> DeliveryView | None: ...


def acknowledgement_key(view: DeliveryView) -> tuple[AcknowledgedKind, str, str]:
    """What an acknowledgement of this delivery is recorded on: its call and rule, or the
    digest (and its rule)."""
    if view.kind == "digest":
        return "digest", view.id, view.rule
    return "call", view.event_id, view.rule


def acknowledgement_target(view: DeliveryView) -> str:
    """The audit's target of an acknowledgement of this delivery: `call:<id>/rule:<rule>`,
    or `digest:<id>` (a digest has one rule)."""
    kind, target_id, rule = acknowledgement_key(view)
    return f"digest:{target_id}" if kind == "digest" else f"call:{target_id}/rule:{rule}"


def counting_for(
    view: DeliveryView, acknowledgements: Iterable[Acknowledgement]
) -> Acknowledgement | None:
    """The one of `acknowledgements` that counts for `view` (of its call and rule, or an
    old one of every rule of its call), the earliest when several do; None when none."""
    kind, target_id, rule = acknowledgement_key(view)
    counting = [
        found
        for found in acknowledgements
        if (found.kind, found.target_id) == (kind, target_id) and found.rule in (rule, ALL_RULES)
    ]
    return min(counting, key=lambda found: found.at, default=None)


@dataclass(frozen=True)
class Acknowledged:
    """The delivery acknowledged, the acknowledgement that counts, and whether this
    request made it (False: someone had acknowledged first)."""

    view: DeliveryView
    acknowledgement: Acknowledgement
    first: bool


async def acknowledge_view(
    trail: AuditTrail,
    view: DeliveryView,
    actor: str,
    now: float,
    *,
    user_id: str | None = None,
    user_name: str | None = None,
    channel: str = "",
    details: Mapping[str, Any] | None = None,
) -> Acknowledged:
    """Record who acknowledged `view`'s call and rule (`user_id`, by default the audit's
    `actor`), audited once, naming the rule: only the acknowledgement that counts is
    recorded in the audit."""
    kind, target_id, rule = acknowledgement_key(view)
    new = Acknowledgement(
        kind,
        target_id,
        rule,
        actor if user_id is None else user_id,
        actor if user_name is None else user_name,
        channel,
        now,
    )
    audited = {**(details or {}), "rule": view.rule}
    stored = await trail.acknowledge(actor, new, acknowledgement_target(view), audited)
    return Acknowledged(view, stored, stored == new)


async def acknowledge_delivery(
    trail: AuditTrail,
    store: DeliveryReads,
    delivery_id: str,
    actor: str,
    now: float,
    *,
    channel: str = "",
) -> Acknowledged | None:
    """Acknowledge the delivery `delivery_id` as `actor` (a console user, `token`,
    `cli:<os user>`); None when no such delivery exists."""
    view = await store.get_delivery(delivery_id)
    if view is None:
        return None
    details = {"delivery": view.id, "sink": view.sink, "rule": view.rule, "via": channel}
    return await acknowledge_view(trail, view, actor, now, channel=channel, details=details)
