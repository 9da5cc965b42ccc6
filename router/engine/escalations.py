"""Escalation timers (DESIGN.md section 16): a call's alert that nobody acknowledged
within its rule's `escalate.after` goes to the rule's `escalate.to` sinks.

The timers live in the store, written with the call's deliveries. `EscalationTimers`
polls the due ones in batches (one claim per batch, never a read per delivery), leases
them as a delivery is leased, so exactly one replica holds each, decides what the rule's
time intervals and the silences in force say now, and settles each in one transaction
that also reads whether the call was acknowledged meanwhile (`Escalations.fire_escalation`):
fired once, or done without firing. A worker that dies holding a timer lets its lease
expire; a restarted one frees its own at once (`QueueStore.open`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.config import Runtime
from router.core.metrics import Metrics
from router.engine.health import StoreHealth, is_store_failure
from router.engine.records import new_delivery_id
from router.operators import OperatorControls
from router.rules import rule_mute_reason
from router.store import DueEscalation, EscalationOutcome, Escalations

log = logging.getLogger("router.engine.escalations")

Clock = Callable[[], float]


@dataclass(frozen=True)
class EscalationSettings:
    batch: int = 64  # timers claimed at once
    lease_seconds: float = 30.0
    idle_poll: float = 5.0  # longest sleep (other replicas' timers, clock drift)


@dataclass(frozen=True)
class Decision:
    """What a due timer should do now, before the store reads the acknowledgement."""

    outcome: EscalationOutcome
    sinks: tuple[str, ...]  # escalated: the sinks to send to


def decide(
    due: DueEscalation,
    runtime: Runtime,
    controls: OperatorControls | None,
    now: float,
) -> Decision:
    """Escalate to the timer's sinks unless the rule is muted by a time interval now, or
    a silence in force covers the call for a sink (that sink is skipped; all of them:
    `silenced`). A rule no longer in rules.yaml still escalates as written."""
    instant = datetime.fromtimestamp(now, UTC)
    if runtime.loaded:
        config = runtime.config
        rule = next((r for r in config.rules if r.name == due.rule), None)
        if rule is not None and rule_mute_reason(rule, config.time_intervals, instant):
            return Decision("muted", ())
    sinks = due.to
    if controls is not None and controls.silences:
        call: Any = _decoded(due.payload)
        calls: list[Mapping[str, Any]] = [call] if isinstance(call, dict) else []
        sinks = tuple(
            sink for sink in sinks if controls.silence_before_send(calls, sink, now, None) is None
        )
        if not sinks:
            return Decision("silenced", ())
    return Decision("escalated", sinks)


def _decoded(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


class EscalationTimers:
    """Fires the store's due escalation timers, on the clock it is given."""

    def __init__(
        self,
        runtime: Runtime,
        store: Escalations,
        metrics: Metrics,
        settings: EscalationSettings | None = None,
        *,
        owner: str | None = None,
        clock: Clock = time.time,
        controls: OperatorControls | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.settings = settings or EscalationSettings()
        self.owner = owner or f"escalator-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.controls = controls
        self.health = health or StoreHealth()
        self.stopping = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def fire_due(self) -> list[tuple[DueEscalation, EscalationOutcome, list[str]]]:
        """Claim and settle every timer due now, a batch at a time; answers what each
        came to (those another worker took over meanwhile are left out)."""
        fired = []
        while not self.stopping:
            now = self.clock()
            batch = await self.store.claim_escalations(
                self.settings.batch, self.owner, self.settings.lease_seconds, now
            )
            for due in batch:
                settled = await self._settle(due, self.clock())
                if settled is not None:
                    fired.append((due, *settled))
            if len(batch) < self.settings.batch:
                break
        return fired

    async def _settle(
        self, due: DueEscalation, now: float
    ) -> tuple[EscalationOutcome, list[str]] | None:
        decision = decide(due, self.runtime, self.controls, now)
        new = [(new_delivery_id(), sink) for sink in decision.sinks]
        settled = await self.store.fire_escalation(due, self.owner, now, decision.outcome, new)
        if settled is None:
            return None
        outcome, sinks = settled
        if outcome == "escalated":
            self.metrics.child(self.metrics.escalations, due.rule).inc()
            log.info(
                "escalated: nobody acknowledged in time",
                extra={"rule": due.rule, "delivery_id": due.delivery_id, "sinks": sinks},
            )
        return settled

    async def next_sleep(self) -> float:
        """Seconds until the earliest timer is due, at most `idle_poll`."""
        due = await self.store.next_escalation_due()
        if due is None:
            return self.settings.idle_poll
        return max(0.0, min(self.settings.idle_poll, due - self.clock()))

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self.fire_due()
                sleep = await self.next_sleep()
                self.health.succeeded()
            except Exception as exc:
                if is_store_failure(exc):
                    self.health.failed(exc)
                else:
                    log.exception("escalation timers failed")
                sleep = self.settings.idle_poll
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), sleep)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="escalation-timers")

    async def stop(self) -> None:
        self.stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
