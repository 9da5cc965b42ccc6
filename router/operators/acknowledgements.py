"""Acknowledging an alert (DESIGN.md sections 12 and 16), one way for every surface: the
Slack button, the console, `POST /admin/deliveries/{id}/acknowledge` and
`revring-router ack`. An acknowledgement is recorded on the delivery's call (a digest:
on the digest), so one on any delivery of a call, in any state, counts for the call and
its rules and stops their escalations; the first one counts, later ones answer with it
and are not audited again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from router.operators.audit import AuditTrail
from router.store import AcknowledgedKind, Acknowledgement, DeliveryView


class DeliveryReads(Protocol):
    async def get_delivery(self, delivery_id: str) -> DeliveryView | None: ...


def acknowledgement_key(view: DeliveryView) -> tuple[AcknowledgedKind, str]:
    """What an acknowledgement of this delivery is recorded on: its call, or the digest."""
    return ("digest", view.id) if view.kind == "digest" else ("call", view.event_id)


def acknowledgement_target(view: DeliveryView) -> str:
    """The audit's target of an acknowledgement of this delivery."""
    kind, target_id = acknowledgement_key(view)
    return f"{kind}:{target_id}"


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
    """Record who acknowledged `view` (`user_id`, by default the audit's `actor`), audited
    once: only the acknowledgement that counts is recorded in the audit."""
    kind, target_id = acknowledgement_key(view)
    new = Acknowledgement(
        kind,
        target_id,
        actor if user_id is None else user_id,
        actor if user_name is None else user_name,
        channel,
        now,
    )
    stored = await trail.acknowledge(actor, new, acknowledgement_target(view), details)
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
