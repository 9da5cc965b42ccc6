"""Deliveries of large calls built in the parse worker processes (`router.engine.parse_workers`).

Decoding a 1 MiB stored body holds the interpreter lock for tens of milliseconds, and
the sink's templates walk what it decodes to. For a call (or a digest) over the inline
limit, a worker decodes it the way the engine would (`delivery_request`), checks the
silences, and has the sink build its message there (`Sink.build`: templates rendered,
message encoded); the router's event loop only sends what comes back
(`Sink.transmit`). The worker builds the sink from the same rules.yaml text and
variables (so with the same settings, configured as the router's is), with no shared
resources (building a message uses none).

Every sink type builds this way, but only for the sink the running rules.yaml built,
of the class its settings name: others (a sink replaced by a reload while a send was
under way, a test's stand-in) are built here. Failures keep their meaning: a
`Retryable` or `Permanent` raised by `build` in the worker is raised by the send here.
A worker that died twice is the router's failure, not the sink's: the engine tries the
delivery again without spending an attempt (a few times; then the message may be what
kills the workers, and a loss is a `Retryable` attempt, bounded by the retry policy),
and never counts it toward the sink's breaker.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from router.config import Runtime
from router.core.missing_values import note_elsewhere, tallied
from router.engine.parse_workers import ParseWorkers, RulesSource, WorkerLost, compiled_config
from router.engine.requests import ReadySend, delivery_request
from router.operators import KnownSilence, OperatorControls, silence_before_send, to_silence
from router.store import ClaimedDelivery, SilenceRecord
from sinks.base import Permanent, Retryable, SendResult, Sink, SinkResources
from sinks.registry import build_sink, sink_class

WORKER_LOST = "the message could not be built: its parse worker died twice"


@dataclass(frozen=True)
class BuildTask:
    rules: RulesSource
    delivery: ClaimedDelivery
    payloads: list[bytes] | None  # a digest's calls
    silences: tuple[SilenceRecord, ...]  # every silence the engine knows of
    now: float


@dataclass(frozen=True)
class Failure:
    """A `DeliveryError` raised by `Sink.build` (`kind` its class name), or, `kind`
    anything else, an unexpected exception of that class."""

    kind: str
    reason: str = ""
    status_code: int | None = None
    retry_after: float | None = None

    @classmethod
    def of(cls, exc: Exception) -> Failure:
        if isinstance(exc, Retryable):
            return cls("Retryable", exc.reason, exc.status_code, exc.retry_after)
        if isinstance(exc, Permanent):
            return cls("Permanent", exc.reason, exc.status_code)
        return cls(type(exc).__name__)

    def error(self) -> Exception:
        if self.kind == "Retryable":
            return Retryable(
                self.reason, status_code=self.status_code, retry_after=self.retry_after
            )
        if self.kind == "Permanent":
            return Permanent(self.reason, status_code=self.status_code)
        # The engine names an unexpected error by its class: one of the same name.
        return type(self.kind, (Exception,), {})()


@dataclass(frozen=True)
class Built:
    """What a worker made of a delivery: muted by a silence, or a message, or a failure;
    and how many values its templates printed that the call lacked."""

    silence_reason: str | None
    message: Any
    failure: Failure | None
    digest_count: int | None
    missing_values: int = 0


# ---- in the worker process -------------------------------------------------------------

_sinks: dict[tuple[str, str], Sink] = {}


def _sink(source: RulesSource, name: str) -> Sink:
    if (source.key, name) not in _sinks:
        if any(key != source.key for key, _ in _sinks):
            _sinks.clear()  # built from an older rules.yaml
        settings = compiled_config(source).sinks[name]
        _sinks[(source.key, name)] = build_sink(name, settings, SinkResources())
    return _sinks[(source.key, name)]


def build_in_worker(task: BuildTask) -> tuple[int, Built]:
    """The delivery's message as the sink would build it (and the pid that built it)."""
    delivery = task.delivery
    sink = _sink(task.rules, delivery.sink)
    request = delivery_request(delivery, task.payloads)
    count = None if request.digest is None else request.digest.count
    known = [KnownSilence(record, to_silence(record)) for record in task.silences]
    calls = request.digest.calls if request.digest is not None else [request.event]
    replayed = delivery.retry_started_at > delivery.created_at
    replayed_at = delivery.retry_started_at if replayed else None
    silence = silence_before_send(known, calls, delivery.sink, task.now, replayed_at)
    if silence is not None:
        return os.getpid(), Built(silence.reason, None, None, count)
    with tallied() as missing:
        try:
            message = sink.build(request)
        except Exception as exc:
            return os.getpid(), Built(None, None, Failure.of(exc), count, missing.count)
    return os.getpid(), Built(None, message, None, count, missing.count)


# ---- in the router ---------------------------------------------------------------------


class RenderApart:
    """Which deliveries are built in `workers`, and their `ReadySend` once built."""

    def __init__(self, workers: ParseWorkers, runtime: Runtime, inline_bytes: int) -> None:
        self.workers = workers
        self.runtime = runtime
        self.inline_bytes = inline_bytes
        self.last_pid: int | None = None  # the process that built the last message

    def takes(self, sink: Sink, delivery: ClaimedDelivery, payloads: list[bytes] | None) -> bool:
        if self.workers.unavailable is not None:
            return False  # built here, as without workers
        size = len(delivery.payload)
        if payloads:
            size += sum(map(len, payloads))
        if size <= self.inline_bytes or not self.runtime.loaded:
            return False
        if self.runtime.sinks.get(delivery.sink) is not sink:
            return False
        settings = self.runtime.config.sinks.get(delivery.sink)
        return settings is not None and type(sink) is sink_class(settings)

    async def ready(
        self,
        sink: Sink,
        delivery: ClaimedDelivery,
        payloads: list[bytes] | None,
        controls: OperatorControls | None,
        now: float,
    ) -> ReadySend:
        source = self.workers.source_of(self.runtime.config)
        assert source is not None
        records = tuple(known.record for known in controls.silences) if controls else ()
        task = BuildTask(source, delivery, payloads, records, now)
        try:
            built = await self.workers.call(build_in_worker, task)
        except WorkerLost:
            send = functools.partial(_fail, Retryable(WORKER_LOST))
            return ReadySend(send, worker_lost=True)
        self.last_pid = self.workers.last_pid
        if built.failure is not None:
            send = functools.partial(_fail, built.failure.error(), built.missing_values)
        else:
            send = functools.partial(_transmit, sink, built.message, built.missing_values)
        return ReadySend(send, built.silence_reason, built.digest_count)


# The missing values a worker's render printed are noted when the engine sends, in the
# tally it counts a send's (see `DeliveryEngine`), as if the render had been here.


async def _transmit(sink: Sink, message: Any, missing_values: int) -> SendResult:
    note_elsewhere(missing_values)
    return await sink.transmit(message)


async def _fail(error: Exception, missing_values: int = 0) -> SendResult:
    note_elsewhere(missing_values)
    raise error
