"""Intake: a body that passed the HTTP checks becomes a stored call and its deliveries
(or a rejection naming the problem). The body is prepared on the event loop when small,
in a parse worker process when large (`router.engine.parse_workers`), under a budget of
bytes in flight; the call is written within the store's time limit; fresh deliveries are
handed to the delivery engine's fast path. The webhook, backfill and verify mode all
take calls through here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from router.config import Runtime
from router.core import tracing
from router.core.events import KNOWN_STATUSES
from router.core.metrics import Metrics, muted_reason_label
from router.engine.budget import ByteBudget
from router.engine.delivery import DeliveryEngine
from router.engine.health import StoreHealth, answer_within
from router.engine.parse_workers import (
    ParseTask,
    ParseWorkers,
    WorkerLost,
    WorkersUnavailable,
    active_silence_records,
    default_worker_count,
)
from router.engine.prepare import MutingMoment, Prepared, Rejection, prepare
from router.engine.records import call_record, held_record, unleased
from router.operators import OperatorControls
from router.rules import CompiledRule
from router.store import Ingest, IngestResult

log = logging.getLogger("router.engine.intake")

MAX_BODY_BYTES = 1024 * 1024  # a larger webhook body is refused (413)
DEFAULT_STORE_TIMEOUT = 5.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class IngestLimits:
    """How long a webhook body may take to arrive, how much parsing runs at once, and how
    long the store may take to commit a call."""

    body_timeout: float = 30.0  # seconds from the request head to the whole body
    max_parse_bytes: int = 2 * MAX_BODY_BYTES  # bodies decoded and validated at once
    inline_parse_bytes: int = 64 * 1024  # smaller bodies are parsed on the event loop
    # Larger ones in this many processes (`router.engine.parse_workers`); 0: in one thread
    # of this process, where the interpreter lock still holds the loop during each call.
    parse_workers: int = field(default_factory=default_worker_count)
    # A store that does not commit a call within this is unavailable: 503, so a
    # sender's connections are not all stuck behind a frozen database.
    store_timeout: float = DEFAULT_STORE_TIMEOUT


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one body: stored (`accepted`), already stored (`duplicate`), or
    refused (`rejected`, with the rejection: a bad body, or the store unavailable)."""

    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None
    deliveries: int = 0
    rejection: Rejection | None = None
    verification: str | None = None  # verify mode: "pending" (routed once RevRing confirms)
    rules_matched: int = 0


STORE_UNAVAILABLE = Rejection(503, "store_unavailable", "store unavailable, try again")


class Intake:
    """Stores calls and plans their deliveries, on the clock it is given."""

    def __init__(
        self,
        runtime: Runtime,
        store: Ingest,
        metrics: Metrics,
        engine: DeliveryEngine | None = None,
        limits: IngestLimits | None = None,
        *,
        workers: ParseWorkers | None = None,
        health: StoreHealth | None = None,
        clock: Clock = time.time,
        hold: bool = False,
        on_held: Callable[[], None] | None = None,
        controls: OperatorControls | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.engine = engine  # sends fresh deliveries at once when their sink has room
        self.limits = limits or IngestLimits()
        self.workers = workers  # large bodies are prepared there; None: in a thread here
        self.health = health or StoreHealth()
        self.clock = clock
        # Verify mode: a call is stored held (no deliveries) and routed once RevRing's
        # API confirms it (`router.revring.verify`); `on_held` wakes the verifier.
        self.hold = hold
        self.on_held = on_held
        self.controls = controls  # silences in force; None: only time intervals mute
        self._parse_budget = ByteBudget(self.limits.max_parse_bytes)
        # Without workers, larger bodies are parsed here, so the event loop answers other
        # requests meanwhile; the budget, not the thread count, bounds the work in flight.
        self._parsers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-parse")

    def close(self) -> None:
        self._parsers.shutdown(wait=False, cancel_futures=True)

    async def ingest_posted(self, body: bytes) -> IngestOutcome:
        """A body posted to the webhook: in verify mode, held until RevRing confirms it."""
        return await self.ingest_body(body, hold=self.hold)

    async def ingest_body(self, body: bytes, *, hold: bool = False) -> IngestOutcome:
        """Decode, validate, route, store (a repeated call id is a duplicate), count.
        `hold`: store the call held for verification. `backfill` ingests RevRing's own
        bodies through here too."""
        rules = self.runtime.config.rules if self.runtime.loaded else ()
        muting = self._muting_now()
        # The span `parse` covers decoding, validation and matching the rules (one pass);
        # `route` planning the deliveries; `commit` the store's write (`router.core.tracing`).
        inline = len(body) <= self.limits.inline_parse_bytes
        share = self._parse_budget.take_now(len(body)) if inline else None
        if share is not None:  # most calls: a small body and room in the budget, no wait
            try:
                with tracing.span("parse") as parsing:
                    outcome = prepare(body, rules, muting, keep_decoded=True)
                    if isinstance(outcome, Rejection):
                        parsing.failed(outcome.message)
            finally:
                self._parse_budget.give_back(share)
        else:
            outcome = await self._prepare_in_turn(body, rules, muting, inline)
        if isinstance(outcome, Rejection):
            return self._rejected(outcome)
        for name in outcome.unknown_fields:
            self.metrics.unknown_values.labels(name).inc()
        if hold:
            return await self._hold(outcome, body)
        return await self._accept(outcome, body)

    async def _prepare_in_turn(
        self, body: bytes, rules: Sequence[CompiledRule], muting: MutingMoment, inline: bool
    ) -> Prepared | Rejection:
        """`prepare` once the budget has room for the body: here for a small one, in a
        parse worker or this process's parse thread for a large one."""
        async with self._parse_budget.hold(len(body)):
            with tracing.span("parse") as parsing:
                if inline:
                    outcome = prepare(body, rules, muting, keep_decoded=True)
                elif self.workers is not None:
                    parsing.set("router.parse.where", "worker")
                    outcome = await self._prepare_elsewhere(body, rules, muting)
                else:
                    loop = asyncio.get_running_loop()
                    outcome = await loop.run_in_executor(
                        self._parsers, prepare, body, rules, muting
                    )
                if isinstance(outcome, Rejection):
                    parsing.failed(outcome.message)
        return outcome

    async def _hold(self, prepared: Prepared, body: bytes) -> IngestOutcome:
        """Store the call held for verification, with no delivery: the answer never
        waits for RevRing's API."""
        record = held_record(prepared, body, self.clock())
        try:
            result = await answer_within(self.store.ingest_held(record), self.limits.store_timeout)
        except Exception as exc:
            return self._store_failed(exc, prepared.event_id)
        if result.status == "accepted":
            self.health.succeeded()
            if self.on_held is not None:
                self.on_held()
        status_label = prepared.status if prepared.status in KNOWN_STATUSES else "other"
        self.metrics.child(self.metrics.events_received, result.status, status_label).inc()
        return IngestOutcome(result.status, prepared.event_id, 0, verification="pending")

    async def _prepare_elsewhere(
        self, body: bytes, rules: Sequence[CompiledRule], muting: MutingMoment
    ) -> Prepared | Rejection:
        """`prepare` in a parse worker process. A body whose worker died twice gets a 503
        (`router.engine.parse_workers`); workers that cannot start, or a worker failing
        otherwise (a bug), fall back to this process's parse thread, so the answer is the
        same."""
        assert self.workers is not None
        config = self.runtime.config if self.runtime.loaded else None
        instant = muting.instant
        silences = active_silence_records(self.controls, instant)
        task = ParseTask(body, self.workers.source_of(config), silences, instant)
        try:
            return await self.workers.prepare(task)
        except WorkersUnavailable:
            pass  # logged once by the workers, shown by /readyz
        except WorkerLost:
            return Rejection(503, "parse_failed", "the body could not be parsed, try again")
        except Exception:
            log.exception("parse worker failed; parsing in this process")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._parsers, prepare, body, rules, muting)

    def _rejected(self, rejection: Rejection, event_id: str | None = None) -> IngestOutcome:
        self.metrics.events_received.labels("rejected", "").inc()
        self.metrics.events_rejected.labels(rejection.reason).inc()
        return IngestOutcome("rejected", event_id, 0, rejection)

    def _store_failed(self, error: Exception, event_id: str) -> IngestOutcome:
        self.health.failed(error)  # logged once per outage, not once per request
        self.metrics.events_rejected.labels("store_unavailable").inc()
        return IngestOutcome("rejected", event_id, 0, STORE_UNAVAILABLE)

    def _muting_now(self) -> MutingMoment:
        """Muting is decided as of the moment the call came in."""
        now = self.clock()
        silences = self.controls.active_silences(now) if self.controls is not None else []
        intervals = self.runtime.config.time_intervals if self.runtime.loaded else {}
        return MutingMoment(intervals, silences, datetime.fromtimestamp(now, UTC))

    async def _accept(self, prepared: Prepared, body: bytes) -> IngestOutcome:
        if not self.runtime.loaded:
            return self._rejected(Rejection(503, "not_ready", "rules.yaml is not loaded"))
        event_id, status = prepared.event_id, prepared.status
        received_at = self.clock()
        engine = self.engine
        trace_parent = tracing.current_traceparent()  # the request's span: attempts join it
        with tracing.span("route") as routing:
            routing.set("router.event_id", event_id)
            routing.set("router.call_status", status)
            routing.set("router.rules_matched", len(prepared.matched))
            if engine is None:
                deliveries = unleased(prepared.targets)
            else:
                deliveries = engine.plan(prepared.targets, received_at)
            record = call_record(
                prepared,
                body,
                received_at,
                deliveries,
                decoded=prepared.decoded,
                trace_parent=trace_parent,
            )
        result: IngestResult | None = None
        try:
            with tracing.span("commit"):
                result = await answer_within(self.store.ingest(record), self.limits.store_timeout)
        except Exception as exc:
            return self._store_failed(exc, event_id)
        finally:  # also when cancelled (the client went away): no send slot is kept
            if engine is not None:
                engine.after_commit(record, result)
        if result.status == "accepted":
            self.health.succeeded()  # a duplicate wrote nothing: it proves nothing
            for name in prepared.matched:
                self.metrics.child(self.metrics.rule_matches, name).inc()
            for sink, _, reason in prepared.muted:
                self.metrics.deliveries_muted.labels(sink, muted_reason_label(reason)).inc()
        status_label = status if status in KNOWN_STATUSES else "other"
        self.metrics.child(self.metrics.events_received, result.status, status_label).inc()
        return IngestOutcome(
            result.status, event_id, result.deliveries, rules_matched=len(prepared.matched)
        )
