"""Verify mode (`ROUTER_VERIFY_CALLS=revring`): route a posted call only once RevRing's
API confirms it, with RevRing's fields rather than the posted ones.

The webhook stores each call held (verification `pending`, no delivery) and answers
200 at once. The `Verifier` task fetches held calls in batches of 100 with batch-get:
a call RevRing knows is routed with RevRing's body (`verified`); one it does not know
is kept for audit and never routed (`not_verified`, counted in
`events_rejected_total{reason="not_verified"}`). While the API cannot be reached, held
calls wait in the store (each checked again later, with backoff) and flow when it
answers. `release` routes a held or not-verified call by hand, with its posted body.
The price: routing waits one API round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from router.config import Runtime
from router.core import tracing
from router.core.metrics import Metrics, muted_reason_label
from router.engine import MutingMoment, Rejection, prepare
from router.engine.records import call_record
from router.revring.api import BATCH_SIZE, RevRingApi, RevRingApiError
from router.rules import CompiledRule
from router.store import AuditRecord, ConsoleReads, HeldCall, HeldCalls

if TYPE_CHECKING:
    from router.operators import OperatorControls

log = logging.getLogger("router.revring.verify")

HOLDABLE = ("pending", "not_verified")  # what `release` accepts


@dataclass(frozen=True)
class VerifySettings:
    poll: float = 1.0  # seconds between looks for held calls (another replica's, retries)
    initial_backoff: float = 2.0  # a held call's next check after the API failed once
    max_backoff: float = 60.0


def retry_delay(settings: VerifySettings, attempts: int) -> float:
    """Seconds until a held call is checked again after `attempts` failed checks (>= 1)."""
    return min(settings.max_backoff, settings.initial_backoff * 2.0 ** min(attempts - 1, 30))


Step = Literal["idle", "done", "more", "unreachable"]


class Verifier:
    """The background task that confirms held calls with RevRing's API."""

    def __init__(
        self,
        store: HeldCalls,
        api: RevRingApi,
        runtime: Runtime,
        metrics: Metrics,
        settings: VerifySettings | None = None,
        controls: OperatorControls | None = None,
    ) -> None:
        self.store, self.api, self.runtime, self.metrics = store, api, runtime, metrics
        self.settings = settings or VerifySettings()
        self.controls = controls  # silences in force when a verified call is routed
        self._wake = asyncio.Event()
        self._unreachable = False

    def wake(self) -> None:
        """A call was held: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # a call held during the step sets it again
            try:
                step = await self.step(time.time())
            except Exception:
                log.exception("verifying held calls failed; trying again")
                step = "unreachable"
            if step == "more":
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll)

    async def step(self, now: float) -> Step:
        """Check one batch of due held calls."""
        held = await self.store.due_held(now, BATCH_SIZE)
        if not held:
            return "idle"
        try:
            fetched = await self.api.batch_get([call.event_id for call in held])
        except RevRingApiError as error:
            await self._postpone(held, now, error)
            return "unreachable"
        if self._unreachable:
            self._unreachable = False
            log.info("RevRing's API answers again: routing held calls")
        rules = self.runtime.config.rules
        for call in held:
            body = fetched.calls.get(call.event_id)
            if body is not None:
                await self._route(call, body, rules)
        if fetched.unknown:
            count = await self.store.mark_not_verified(fetched.unknown)
            if count:
                self.metrics.events_rejected.labels("not_verified").inc(count)
                log.warning(
                    "%d posted call(s) unknown to RevRing: kept, not routed (not_verified)",
                    count,
                )
        return "more" if len(held) == BATCH_SIZE else "done"

    async def _postpone(self, held: Sequence[HeldCall], now: float, error: Exception) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning("cannot verify calls with RevRing's API (%s): they wait", error)
        by_delay: dict[float, list[str]] = {}
        for call in held:
            delay = retry_delay(self.settings, call.verify_attempts + 1)
            by_delay.setdefault(delay, []).append(call.event_id)
        for delay, ids in by_delay.items():
            await self.store.postpone_verification(ids, now + delay)

    def _muting(self, call: HeldCall) -> MutingMoment:
        """Time intervals as of the call's arrival, and the silences in force now."""
        now = time.time()
        silences = self.controls.active_silences(now) if self.controls is not None else []
        instant = datetime.fromtimestamp(call.received_at, UTC)
        return MutingMoment(self.runtime.config.time_intervals, silences, instant)

    async def _route(self, call: HeldCall, body: bytes, rules: Sequence[CompiledRule]) -> None:
        with tracing.span("verified call") as span:  # `router.core.tracing`
            span.set("router.event_id", call.event_id)
            await self._route_call(call, body, rules)

    async def _route_call(self, call: HeldCall, body: bytes, rules: Sequence[CompiledRule]) -> None:
        muting = self._muting(call)
        prepared = prepare(body, rules, muting)
        if isinstance(prepared, Rejection):
            # RevRing's own body does not validate (a shape this router does not know
            # yet): the call is real, so route it as posted rather than lose it.
            log.warning(
                "RevRing's body of call %s is not a valid post-call event (%s): routed as posted",
                call.event_id,
                prepared.message,
            )
            body, prepared = call.payload, prepare(call.payload, rules, muting)
            if isinstance(prepared, Rejection):
                return
        record = call_record(
            prepared, body, time.time(), trace_parent=tracing.current_traceparent()
        )
        result = await self.store.route_held(record, "verified")
        if result is not None:
            for name in prepared.matched:
                self.metrics.rule_matches.labels(name).inc()
            for sink, _, reason in prepared.muted:
                self.metrics.deliveries_muted.labels(sink, muted_reason_label(reason)).inc()


class ReleasingStore(HeldCalls, ConsoleReads, Protocol):
    """What `release` uses of the store: a call read back, and routed."""


@dataclass(frozen=True)
class Released:
    outcome: Literal["released", "unknown", "not_held"]
    deliveries: int = 0
    verification: str | None = None


async def release(
    store: ReleasingStore,
    rules: Sequence[CompiledRule],
    event_id: str,
    audit: AuditRecord | None = None,
) -> Released:
    """Route a held (`pending`) or `not_verified` call by hand, with its posted body;
    `audit`, the record of who did, is written with it."""
    view = await store.get_event(event_id)
    if view is None or view.payload is None:
        return Released("unknown")
    payload = view.payload
    if view.verification not in HOLDABLE:
        return Released("not_held", verification=view.verification)
    prepared = prepare(payload, rules)
    if isinstance(prepared, Rejection):  # it validated when it was posted
        return Released("not_held", verification=view.verification)
    result = await store.route_held(call_record(prepared, payload, time.time()), "released", audit)
    if result is None:  # verified or released meanwhile
        again = await store.get_event(event_id)
        return Released("not_held", verification=again.verification if again else None)
    return Released("released", result.deliveries, "released")
