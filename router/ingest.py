"""`POST /webhooks/revring`: authenticate, bound, parse, validate, route, persist, answer.

The answer is 200 only once the event and its deliveries are durable in the store;
its `deliveries` counts the deliveries created plus the digests the call joined.
Every other outcome is a 4xx naming the problem (or 503 when the store cannot take
the event): never a 500, whatever the input.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web

from router.budget import ByteBudget
from router.controls import OperatorControls
from router.delivery import DeliveryEngine, new_delivery_id, unleased
from router.events import (
    KNOWN_STATUSES,
    EventRejected,
    PostCallEvent,
    TooDeep,
    decode_json,
    parse_event,
)
from router.health import StoreHealth, answer_within
from router.metrics import Metrics, muted_reason_label
from router.muting import Silence, mute_decisions
from router.parse_workers import (
    ParseTask,
    ParseWorkers,
    WorkerLost,
    active_silence_records,
    default_worker_count,
)
from router.request_body import MAX_BODY_BYTES, BodyLimits, BodyRefused, read_body
from router.rules import CompiledRule, group_key, group_key_json, route
from router.runtime import Runtime
from router.store.base import GroupJoin, IngestRecord, IngestResult, NewDelivery, Store
from router.time_intervals import TimeInterval

log = logging.getLogger("router.ingest")

DEFAULT_STORE_TIMEOUT = 5.0


def header_bytes(value: str | None) -> bytes:
    """A header value as the bytes that came on the wire. aiohttp decodes header bytes
    that are not UTF-8 with `surrogateescape`; a plain `.encode()` of those raises."""
    return (value or "").encode("utf-8", "surrogateescape")


class ApiKeys:
    """The keys accepted in `x-api-key`; compared in constant time, all of them every time."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [key.encode() for key in keys if key]

    @classmethod
    def from_env(cls, value: str | None) -> ApiKeys:
        return cls([part.strip() for part in (value or "").split(",")])

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __repr__(self) -> str:
        count = len(self._keys)
        return f"ApiKeys({count} key{'s' if count != 1 else ''})"

    def accepts(self, presented: str | None) -> bool:
        candidate = header_bytes(presented)
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched


def json_answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def problem(status: int, error: str, **extra: Any) -> web.Response:
    return json_answer({"error": error, **extra}, status)


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
    targets: list[tuple[str, str, GroupJoin | None]]  # (sink, rule name, digest)
    matched: tuple[str, ...]  # rule names
    muted: tuple[tuple[str, str, str], ...] = ()  # (sink, rule name, reason): not sent
    columns: dict[str, str] = field(default_factory=dict)  # `IngestRecord`'s call columns
    # The body as JSON data, kept only for a small body (`prepare(keep_decoded=True)`), so
    # the delivery sent right after the commit does not decode it again.
    decoded: Any = field(default=None, compare=False, repr=False)


def call_columns(event: PostCallEvent) -> dict[str, str]:
    """The fields the store keeps in columns of their own, for the console's filters."""
    return {
        "agent_id": event.agentId,
        "organization_id": event.organizationId,
        "hangup_cause": event.hangupCause or "",
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
    if muting is None:
        chosen = routed.deliveries
    else:
        decisions = mute_decisions(
            routed, muting.intervals, muting.instant, payload, muting.silences
        )
        chosen = {sink: decision.rule for sink, decision in decisions.items()}
        muted = [
            (sink, decision.rule.name, decision.muted_reason)
            for sink, decision in decisions.items()
            if decision.muted_reason is not None
        ]
    muted_sinks = {sink for sink, _, _ in muted}
    targets = [
        (sink, rule.name, group_join(rule, payload))
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
        call_columns(event),
        payload if keep_decoded else None,
    )


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one body: stored (`accepted`), already stored (`duplicate`), or
    refused (`rejected`, with the rejection: a bad body, or the store unavailable)."""

    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None
    deliveries: int = 0
    rejection: Rejection | None = None
    verification: str | None = None  # verify mode: "pending" (routed once RevRing confirms)

    def answer(self) -> web.Response:
        """The webhook's answer for this outcome."""
        if self.rejection is not None:
            extra = dict(self.rejection.extra)
            if self.rejection.reason == "store_unavailable":
                extra["event_id"] = self.event_id
            return problem(self.rejection.status, self.rejection.message, **extra)
        answer: dict[str, Any] = {
            "status": self.status,
            "event_id": self.event_id,
            "deliveries": self.deliveries,
        }
        if self.verification is not None:
            answer["verification"] = self.verification
        return json_answer(answer)


@dataclass(frozen=True)
class IngestLimits:
    """How long a webhook body may take to arrive, how much parsing runs at once, and how
    long the store may take to commit a call."""

    body_timeout: float = 30.0  # seconds from the request head to the whole body
    max_parse_bytes: int = 2 * MAX_BODY_BYTES  # bodies decoded and validated at once
    inline_parse_bytes: int = 64 * 1024  # smaller bodies are parsed on the event loop
    # Larger ones in this many processes (`router.parse_workers`); 0: in one thread of
    # this process, where the interpreter lock still holds the loop during each call.
    parse_workers: int = field(default_factory=default_worker_count)
    # A store that does not commit a call within this is unavailable: 503, so a
    # sender's connections are not all stuck behind a frozen database.
    store_timeout: float = DEFAULT_STORE_TIMEOUT


class WebhookHandler:
    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        metrics: Metrics,
        api_keys: ApiKeys | None,
        engine: DeliveryEngine | None = None,
        limits: IngestLimits | None = None,
        *,
        health: StoreHealth | None = None,
        verify_calls: bool = False,
        on_held: Callable[[], None] | None = None,
        controls: OperatorControls | None = None,
    ) -> None:
        # Verify mode: a posted call is stored held (no deliveries) and routed once
        # RevRing's API confirms it (`router.verify`); `on_held` wakes the verifier.
        self.verify_calls = verify_calls
        self.on_held = on_held
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.api_keys = api_keys  # None: authentication disabled (--no-auth)
        self.engine = engine  # sends fresh deliveries at once when their sink has room
        self.health = health or StoreHealth()
        self.controls = controls  # silences in force; None: only time intervals mute
        self.limits = limits or IngestLimits()
        self._parse_budget = ByteBudget(self.limits.max_parse_bytes)
        self._body_limits = BodyLimits(self.limits.body_timeout)
        # Larger bodies are parsed here, so the event loop answers other requests
        # meanwhile; the budget, not the thread count, bounds the work in flight.
        self._parsers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-parse")
        workers = self.limits.parse_workers
        self.parse_workers = ParseWorkers(workers) if workers > 0 else None

    async def start_parse_workers(self) -> None:
        """Start the parse processes now rather than with the first large body."""
        if self.parse_workers is None:
            return
        try:
            await self.parse_workers.start()
        except Exception as exc:  # the first large body tries again
            log.warning("parse workers did not start: %s", exc)

    def close(self) -> None:
        self._parsers.shutdown(wait=False, cancel_futures=True)
        if self.parse_workers is not None:
            self.parse_workers.close()

    def _reject(self, status: int, reason: str, message: str, **extra: Any) -> web.Response:
        self.metrics.events_received.labels("rejected", "").inc()
        self.metrics.events_rejected.labels(reason).inc()
        return problem(status, message, **extra)

    async def handle(self, request: web.Request) -> web.Response:
        if self.api_keys is not None and not self.api_keys.accepts(
            request.headers.get("x-api-key")
        ):
            return self._reject(401, "unauthorized", "missing or wrong x-api-key header")
        try:
            body = await read_body(request, self._body_limits)
        except BodyRefused as refused:
            answer = self._reject(refused.status, refused.reason, refused.message)
            if refused.closes_connection:
                answer.force_close()
            return answer
        media_type = request.content_type.lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return self._reject(
                415, "not_json", f"expected Content-Type: application/json, got {media_type!r}"
            )
        return (await self.ingest_body(body, hold=self.verify_calls)).answer()

    async def ingest_body(self, body: bytes, *, hold: bool = False) -> IngestOutcome:
        """A body that passed the HTTP checks, as the webhook takes it: decode, validate,
        route, store (a repeated call id is a duplicate), count. `backfill` and
        `POST /admin/backfill` ingest RevRing's bodies through here too."""
        rules = self.runtime.config.rules if self.runtime.loaded else ()
        muting = self._muting_now()
        async with self._parse_budget.hold(len(body)):
            if len(body) <= self.limits.inline_parse_bytes:
                outcome = prepare(body, rules, muting, keep_decoded=True)
            elif self.parse_workers is not None:
                outcome = await self._prepare_elsewhere(body, rules, muting)
            else:
                loop = asyncio.get_running_loop()
                outcome = await loop.run_in_executor(self._parsers, prepare, body, rules, muting)
        if isinstance(outcome, Rejection):
            return self._rejected(outcome)
        for name in outcome.unknown_fields:
            self.metrics.unknown_values.labels(name).inc()
        if hold:
            return await self._hold(outcome, body)
        return await self._accept(outcome, body)

    async def _hold(self, prepared: Prepared, body: bytes) -> IngestOutcome:
        """Store the call held for verification, with no delivery: the answer never
        waits for RevRing's API."""
        record = IngestRecord(
            prepared.event_id,
            body,
            time.time(),
            [],
            prepared.status,
            prepared.direction,
            **prepared.columns,
        )
        try:
            result = await answer_within(self.store.ingest_held(record), self.limits.store_timeout)
        except Exception as exc:
            self.health.failed(exc)
            self.metrics.events_rejected.labels("store_unavailable").inc()
            unavailable = Rejection(503, "store_unavailable", "store unavailable, try again")
            return IngestOutcome("rejected", prepared.event_id, 0, unavailable)
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
        (`router.parse_workers`); a worker failing otherwise (a bug) falls back to this
        process's parse thread, so the answer is the same."""
        assert self.parse_workers is not None
        config = self.runtime.config if self.runtime.loaded else None
        instant = muting.instant
        silences = active_silence_records(self.controls, instant)
        task = ParseTask(body, self.parse_workers.source_of(config), silences, instant)
        try:
            return await self.parse_workers.prepare(task)
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

    def _muting_now(self) -> MutingMoment:
        """Muting is decided as of the moment the call came in."""
        now = time.time()
        silences = self.controls.active_silences(now) if self.controls is not None else []
        intervals = self.runtime.config.time_intervals if self.runtime.loaded else {}
        return MutingMoment(intervals, silences, datetime.fromtimestamp(now, UTC))

    async def _accept(self, prepared: Prepared, body: bytes) -> IngestOutcome:
        if not self.runtime.loaded:
            return self._rejected(Rejection(503, "not_ready", "rules.yaml is not loaded"))
        event_id, status = prepared.event_id, prepared.status
        received_at = time.time()
        engine = self.engine
        if engine is None:
            deliveries = unleased(prepared.targets)
        else:
            deliveries = engine.plan(prepared.targets, received_at)
        muted = [
            NewDelivery(new_delivery_id(), sink, rule, muted_reason=reason)
            for sink, rule, reason in prepared.muted
        ]
        record = IngestRecord(
            event_id,
            body,
            received_at,
            [*deliveries, *muted],
            status,
            prepared.direction,
            **prepared.columns,
            decoded=prepared.decoded,
        )
        result: IngestResult | None = None
        try:
            result = await answer_within(self.store.ingest(record), self.limits.store_timeout)
        except Exception as exc:
            self.health.failed(exc)  # logged once per outage, not once per request
            self.metrics.events_rejected.labels("store_unavailable").inc()
            unavailable = Rejection(503, "store_unavailable", "store unavailable, try again")
            return IngestOutcome("rejected", event_id, 0, unavailable)
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
        return IngestOutcome(result.status, event_id, result.deliveries)
