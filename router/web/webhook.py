"""`POST /webhooks/revring`: authenticate, bound and read the request, hand the body to
intake (`router.engine.intake`), answer.

The answer is 200 only once the event and its deliveries are durable in the store;
its `deliveries` counts the deliveries created plus the digests the call joined.
Every other outcome is a 4xx naming the problem (or 503 when the store cannot take
the event): never a 500, whatever the input.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from router.core import tracing
from router.core.metrics import Metrics
from router.engine import IngestOutcome, Intake
from router.web.rejections import RejectionLog
from router.web.request_body import BodyLimits, BodyRefused, read_body


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


def outcome_answer(outcome: IngestOutcome) -> web.Response:
    """The webhook's answer for what became of a body."""
    if outcome.rejection is not None:
        extra = dict(outcome.rejection.extra)
        if outcome.rejection.reason == "store_unavailable":
            extra["event_id"] = outcome.event_id
        return problem(outcome.rejection.status, outcome.rejection.message, **extra)
    answer: dict[str, Any] = {
        "status": outcome.status,
        "event_id": outcome.event_id,
        "deliveries": outcome.deliveries,
    }
    if outcome.verification is not None:
        answer["verification"] = outcome.verification
    return json_answer(answer)


class WebhookHandler:
    """The webhook's HTTP side: the key, the body's limits and type; the rest is intake's.
    Every 4xx is counted in the log too (`router.web.rejections`)."""

    def __init__(
        self,
        intake: Intake,
        metrics: Metrics,
        api_keys: ApiKeys | None,
        body_limits: BodyLimits,
        rejections: RejectionLog | None = None,
    ) -> None:
        self.intake = intake
        self.metrics = metrics
        self.api_keys = api_keys  # None: authentication disabled (--no-auth)
        self._body_limits = body_limits
        self.rejections = rejections or RejectionLog()

    def close(self) -> None:
        """Log the rejections counted and not logged yet."""
        self.rejections.close()

    def _reject(self, status: int, reason: str, message: str, **extra: Any) -> web.Response:
        self.metrics.events_received.labels("rejected", "").inc()
        self.metrics.events_rejected.labels(reason).inc()
        self.rejections.rejected(status, reason)
        return problem(status, message, **extra)

    async def handle(self, request: web.Request) -> web.Response:
        """The webhook; traced (`router.core.tracing`), a span per request."""
        if not tracing.is_on():
            return await self._handle(request)
        with tracing.span("POST /webhooks/revring", kind="server") as span:
            answer = await self._handle(request, span)
            span.set("http.request.method", "POST")
            span.set("http.route", "/webhooks/revring")
            span.set("http.response.status_code", answer.status)
            if answer.status >= 400:
                span.failed(f"answered {answer.status}")
            return answer

    async def _handle(
        self, request: web.Request, span: tracing.SpanScope = tracing.NO_SPAN
    ) -> web.Response:
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
        outcome = await self.intake.ingest_posted(body)
        span.set("router.event_id", outcome.event_id)
        span.set("router.ingest_status", outcome.status)
        span.set("router.rules_matched", outcome.rules_matched)
        span.set("router.deliveries", outcome.deliveries)
        rejection = outcome.rejection
        if rejection is not None and rejection.status < 500:  # 5xx: the store's, logged there
            self.rejections.rejected(rejection.status, rejection.reason)
        return outcome_answer(outcome)
