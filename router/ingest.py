"""`POST /webhooks/revring`: authenticate, bound, parse, validate, route, persist, answer.

The answer is 200 only once the event and its deliveries are durable in the store;
its `deliveries` counts the deliveries created plus the digests the call joined.
Every other outcome is a 4xx naming the problem (or 503 when the store cannot take
the event): never a 500, whatever the input.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from router.budget import ByteBudget
from router.delivery import DeliveryEngine, unleased
from router.events import KNOWN_STATUSES, EventRejected, parse_event
from router.health import StoreHealth, answer_within
from router.metrics import Metrics
from router.rules import CompiledRule, group_key, group_key_json, route
from router.runtime import Runtime
from router.store.base import GroupJoin, IngestRecord, IngestResult, Store

log = logging.getLogger("router.ingest")

MAX_BODY_BYTES = 1024 * 1024
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


_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19,}")


def decode_json(body: bytes) -> Any:
    """orjson for speed and strictness; the stdlib parser again, for exact values, when the
    body may hold an integer beyond 64 bits (orjson turns those into lossy floats)."""
    value = orjson.loads(body)
    if _LONG_DIGIT_RUN.search(body):
        return json.loads(body)
    return value


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


def prepare(body: bytes, rules: Sequence[CompiledRule]) -> Prepared | Rejection:
    """Decode, validate and route a body: pure CPU work, safe to run in a worker thread."""
    try:
        payload = decode_json(body)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return Rejection(400, "malformed_json", f"malformed JSON: {detail}")
    try:
        event = parse_event(payload)
    except EventRejected as exc:
        return Rejection(
            422, "invalid_event", "invalid post-call event", {"problems": exc.problems}
        )
    routed = route(rules, payload)
    targets = [
        (sink, rule.name, group_join(rule, payload)) for sink, rule in routed.deliveries.items()
    ]
    return Prepared(
        event.id,
        event.status,
        event.direction,
        tuple(event.unknown_values()),
        targets,
        tuple(rule.name for rule in routed.matched),
    )


@dataclass(frozen=True)
class IngestLimits:
    """How long a webhook body may take to arrive, how much parsing runs at once, and how
    long the store may take to commit a call."""

    body_timeout: float = 30.0  # seconds from the request head to the whole body
    max_parse_bytes: int = 2 * MAX_BODY_BYTES  # bodies decoded and validated at once
    inline_parse_bytes: int = 64 * 1024  # smaller bodies are parsed on the event loop
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
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.api_keys = api_keys  # None: authentication disabled (--no-auth)
        self.engine = engine  # sends fresh deliveries at once when their sink has room
        self.health = health or StoreHealth()
        self.limits = limits or IngestLimits()
        self._parse_budget = ByteBudget(self.limits.max_parse_bytes)
        # Larger bodies are parsed here, so the event loop answers other requests
        # meanwhile; the budget, not the thread count, bounds the work in flight.
        self._parsers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-parse")

    def close(self) -> None:
        self._parsers.shutdown(wait=False, cancel_futures=True)

    def _reject(self, status: int, reason: str, message: str, **extra: Any) -> web.Response:
        self.metrics.events_received.labels("rejected", "").inc()
        self.metrics.events_rejected.labels(reason).inc()
        return problem(status, message, **extra)

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is larger than MAX_BODY_BYTES."""
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return None
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, request: web.Request) -> web.Response:
        if self.api_keys is not None and not self.api_keys.accepts(
            request.headers.get("x-api-key")
        ):
            return self._reject(401, "unauthorized", "missing or wrong x-api-key header")
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                body = await self._read_body(request)
        except TimeoutError:
            answer = self._reject(
                408,
                "body_timeout",
                f"request body not received within {self.limits.body_timeout:g} seconds",
            )
            answer.force_close()
            return answer
        if body is None:
            return self._reject(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes")
        media_type = request.content_type.lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return self._reject(
                415, "not_json", f"expected Content-Type: application/json, got {media_type!r}"
            )
        rules = self.runtime.config.rules if self.runtime.loaded else ()
        async with self._parse_budget.hold(len(body)):
            if len(body) <= self.limits.inline_parse_bytes:
                outcome = prepare(body, rules)
            else:
                loop = asyncio.get_running_loop()
                outcome = await loop.run_in_executor(self._parsers, prepare, body, rules)
        if isinstance(outcome, Rejection):
            return self._reject(outcome.status, outcome.reason, outcome.message, **outcome.extra)
        for name in outcome.unknown_fields:
            self.metrics.unknown_values.labels(name).inc()
        return await self._accept(outcome, body)

    async def _accept(self, prepared: Prepared, body: bytes) -> web.Response:
        if not self.runtime.loaded:
            return self._reject(503, "not_ready", "rules.yaml is not loaded")
        event_id, status = prepared.event_id, prepared.status
        received_at = time.time()
        engine = self.engine
        if engine is None:
            deliveries = unleased(prepared.targets)
        else:
            deliveries = engine.plan(prepared.targets, received_at)
        record = IngestRecord(event_id, body, received_at, deliveries, status, prepared.direction)
        result: IngestResult | None = None
        try:
            result = await answer_within(self.store.ingest(record), self.limits.store_timeout)
        except Exception as exc:
            self.health.failed(exc)  # logged once per outage, not once per request
            self.metrics.events_rejected.labels("store_unavailable").inc()
            return problem(503, "store unavailable, try again", event_id=event_id)
        finally:  # also when cancelled (the client went away): no send slot is kept
            if engine is not None:
                engine.after_commit(record, result)
        if result.status == "accepted":
            self.health.succeeded()  # a duplicate wrote nothing: it proves nothing
            for name in prepared.matched:
                self.metrics.rule_matches.labels(name).inc()
        status_label = status if status in KNOWN_STATUSES else "other"
        self.metrics.events_received.labels(result.status, status_label).inc()
        return json_answer(
            {"status": result.status, "event_id": event_id, "deliveries": result.deliveries}
        )
