"""The delivery engine on the in-memory store with a fake clock and a fake sink: what it
records after each outcome, with no socket, file or real time in the decisions."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from router.config.runtime import Runtime
from router.core.metrics import Metrics
from router.core.pacing import PauseSettings
from router.core.retry import backoff_delay
from router.engine.delivery import DeliveryEngine, EngineSettings, SinkLane
from router.store import IngestRecord, NewDelivery, Store, open_store
from sinks.base import DeliveryRequest, Retryable, SendResult, Sink, SinkResources

T0 = 1_700_000_000.0
SEED = 7
WAIT = 10.0  # an upper bound for what the engine does at once, never a measurement
RULES = """
version: 1
defaults:
  retry: {max_attempts: 10, initial_delay: 10s, max_delay: 1h, max_age: 1d}
sinks:
  crm: {type: log, path: /dev/null}
rules: []
"""


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSink(Sink[DeliveryRequest]):
    """Answers each send with the next scripted outcome (an exception is raised)."""

    def __init__(self, real: Sink, outcomes: list[SendResult | Exception]) -> None:
        super().__init__(real.name, real.config, real.resources)
        self.outcomes = outcomes
        self.sent: list[tuple[str, float]] = []
        self.clock: FakeClock | None = None

    def build(self, request: DeliveryRequest) -> DeliveryRequest:
        return request

    async def transmit(self, request: DeliveryRequest) -> SendResult:
        assert self.clock is not None
        self.sent.append((request.delivery_id, self.clock()))
        outcome = self.outcomes.pop(0) if self.outcomes else SendResult(200)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


Harness = tuple[DeliveryEngine, Store, FakeSink, FakeClock]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    started: list[tuple[DeliveryEngine, Store]] = []

    async def start(outcomes: list[SendResult | Exception], **pause: float) -> Harness:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES)
        metrics = Metrics()
        runtime = Runtime(rules, metrics, SinkResources())
        runtime.load()
        sink = FakeSink(runtime.sinks["crm"], outcomes)
        runtime.sinks["crm"] = sink
        store = open_store("memory://")
        await store.open()
        clock = FakeClock(T0)
        sink.clock = clock
        settings = EngineSettings(lease_seconds=30.0, idle_poll=0.01, pause=PauseSettings(**pause))
        engine = DeliveryEngine(
            runtime, store, metrics, settings, owner="w1", clock=clock, rng=random.Random(SEED)
        )
        await engine.start()
        started.append((engine, store))
        return engine, store, sink, clock

    yield start
    for engine, store in started:
        await engine.stop()
        await store.close()


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


async def looked_again(lane: SinkLane) -> None:
    """Wait until `lane`, woken, has looked at the store and the clock once more and gone
    back to sleep (each look starts a sleep by clearing the lane's wake-up)."""
    assert lane._wake.is_set(), "wake the lane first"

    async def asleep() -> bool:
        return not lane._wake.is_set()

    await until(asleep)


async def ingest(store: Store, event_id: str) -> None:
    delivery = NewDelivery(f"{event_id}:crm", "crm", "all")
    await store.ingest(IngestRecord(event_id, b'{"id": "x"}', T0, [delivery]))


async def test_a_retryable_failure_reschedules_at_the_clock_derived_time(harness) -> None:
    engine, store, sink, clock = await harness([Retryable("HTTP 503", status_code=503)])
    await ingest(store, "call-1")

    async def retried() -> bool:
        view = await store.get_delivery("call-1:crm")
        return view is not None and view.attempts == 1

    await until(retried)
    view = await store.get_delivery("call-1:crm")
    policy = engine.runtime.config.retry_policy("crm")
    expected_delay = backoff_delay(policy, 1, random.Random(SEED))
    assert (view.status, view.last_error) == ("pending", "HTTP 503")
    assert view.next_attempt_at == T0 + expected_delay
    [attempt] = await store.list_attempts("call-1:crm")
    assert (attempt.outcome, attempt.status_code, attempt.started_at) == ("retry", 503, T0)

    clock.now = view.next_attempt_at  # due again: the engine sends it once more
    engine.wake()

    async def delivered() -> bool:
        return (await store.get_delivery("call-1:crm")).status == "delivered"

    await until(delivered)
    assert sink.sent == [("call-1:crm", T0), ("call-1:crm", T0 + expected_delay)]


async def test_a_breaker_pause_holds_the_lane_until_it_ends(harness) -> None:
    failures: list[SendResult | Exception] = [Retryable("HTTP 503") for _ in range(2)]
    engine, store, sink, clock = await harness(failures, failures_to_pause=2, first_pause=600.0)
    await ingest(store, "call-1")
    await ingest(store, "call-2")

    lane = engine.lanes["crm"]

    async def both_failed() -> bool:
        views = await store.list_deliveries()
        done = all(view.attempts == 1 for view in views) and len(views) == 2
        return done and not lane.in_flight

    await until(both_failed)
    assert lane.breaker.paused_until == T0 + 600.0

    # Both are due again long before the pause ends: the lane holds them, no attempt spent.
    clock.now = T0 + 300.0
    engine.wake()  # a lane sleeps until the pause ends by the fake clock: look again now
    await looked_again(lane)
    assert lane.holding and not lane.in_flight  # nothing claimed
    assert len(sink.sent) == 2
    assert {view.attempts for view in await store.list_deliveries()} == {1}

    clock.now = T0 + 600.0  # the pause is over: a probe goes out, then the rest
    engine.wake()

    async def all_delivered() -> bool:
        return {view.status for view in await store.list_deliveries()} == {"delivered"}

    await until(all_delivered)
    assert [at for _, at in sink.sent[2:]] == [T0 + 600.0, T0 + 600.0]
