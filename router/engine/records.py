"""The record a call is stored as: the call's row and one delivery row per target, for
the webhook, verify mode and a release alike."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from router.engine.prepare import Prepared, Target
from router.store import IngestRecord, NewDelivery


def new_delivery_id() -> str:
    """32 hex digits that sort by creation time (then random): new rows land at the end
    of the store's indexes instead of at random places, which costs fewer page writes."""
    return f"{time.time_ns():016x}{secrets.randbits(64):016x}"


def unleased(targets: Iterable[Target]) -> list[NewDelivery]:
    """The deliveries of `targets`, each to wait in the store for a claim."""
    return [NewDelivery(new_delivery_id(), sink, rule, group) for sink, rule, group in targets]


def call_record(
    prepared: Prepared,
    body: bytes,
    received_at: float,
    deliveries: Sequence[NewDelivery] | None = None,
    *,
    decoded: Any = None,
    trace_parent: str | None = None,
) -> IngestRecord:
    """What storing a routed call writes: the call as received, `deliveries` for its
    targets (by default each waiting for a claim), and a muted delivery for each muted
    target. `decoded`: the body's JSON data, for the delivery sent right after the commit;
    `trace_parent`: the call's trace, which its deliveries' attempts join."""
    if deliveries is None:
        deliveries = unleased(prepared.targets)
    muted = [
        NewDelivery(new_delivery_id(), sink, rule, muted_reason=reason)
        for sink, rule, reason in prepared.muted
    ]
    return _record(prepared, body, received_at, [*deliveries, *muted], decoded, trace_parent)


def held_record(prepared: Prepared, body: bytes, received_at: float) -> IngestRecord:
    """What storing a call held for verification writes: the call, no delivery yet."""
    return _record(prepared, body, received_at, [], None)


def _record(
    prepared: Prepared,
    body: bytes,
    received_at: float,
    deliveries: list[NewDelivery],
    decoded: Any,
    trace_parent: str | None = None,
) -> IngestRecord:
    return IngestRecord(
        prepared.event_id,
        body,
        received_at,
        deliveries,
        prepared.status,
        prepared.direction,
        **prepared.columns,
        escalations=prepared.escalations if deliveries else (),
        decoded=decoded,
        trace_parent=trace_parent,
    )
