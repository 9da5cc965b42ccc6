"""A pending delivery of a forgotten caller is cancelled for good, even one a running
delivery engine already holds in memory under its lease: it is never sent, and nothing
the lane does afterwards (its attempt, its lease) brings it back (DESIGN.md section 15).
On every store kind in `conftest.STORE_KINDS`, with a fake sink and a fake clock."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config.runtime import Runtime
from router.core.metrics import Metrics
from router.engine.delivery import DeliveryEngine, EngineSettings
from router.operators import AuditTrail, ForgetRequest, forget_caller
from router.store import ClaimedDelivery, IngestRecord, IngestResult, NewDelivery, Store
from sinks.base import DeliveryRequest, SendResult, Sink, SinkResources

T0 = 1_700_000_000.0
CALLER = "+14155550142"
WAIT = 10.0  # an upper bound for what the engine does at once, never a measurement
RULES = """
version: 1
sinks:
  crm: {type: log, path: /dev/null}
rules: []
"""


class RecordingSink(Sink[DeliveryRequest]):
    """Records what it is asked to send."""

    def __init__(self, real: Sink) -> None:
        super().__init__(real.name, real.config, real.resources)
        self.sent: list[str] = []

    def build(self, request: DeliveryRequest) -> DeliveryRequest:
        return request

    async def transmit(self, request: DeliveryRequest) -> SendResult:
        self.sent.append(request.delivery_id)
        return SendResult(200)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def engine(store: Store, tmp_path: Path) -> AsyncIterator[DeliveryEngine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    metrics = Metrics()
    runtime = Runtime(rules, metrics, SinkResources())
    runtime.load()
    runtime.sinks["crm"] = RecordingSink(runtime.sinks["crm"])
    settings = EngineSettings(lease_seconds=30.0, idle_poll=0.01)
    running = DeliveryEngine(
        runtime, store, metrics, settings, owner="w1", clock=Clock(), rng=random.Random(7)
    )
    await running.start()
    await until(lambda: "crm" in running.lanes)
    yield running
    await running.stop()


async def until(condition) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


def the_callers_call(event_id: str, delivery: NewDelivery) -> IngestRecord:
    body = {"id": event_id, "fromNumber": CALLER, "summary": "call me on (415) 555-0142"}
    return IngestRecord(event_id, json.dumps(body).encode(), T0, [delivery], from_number=CALLER)


async def settled(engine: DeliveryEngine) -> None:
    """The lane has no send in flight, and has looked at the store again after a lease
    would have run out."""
    lane = engine.lanes["crm"]
    await until(lambda: not lane.in_flight)
    assert isinstance(engine.clock, Clock)
    engine.clock.now += 3600
    for _ in range(3):
        lane.wake()
        await until(lambda: not lane._wake.is_set())


async def test_a_delivery_written_leased_is_not_sent_once_its_caller_is_forgotten(
    store: Store, engine: DeliveryEngine
) -> None:
    # The fast path: the ingest writes the delivery already leased to this engine, which
    # holds it in memory and sends it once the ingest's transaction is answered.
    assert engine._reserve("crm")
    leased = NewDelivery("d-1", "crm", "all", lease_owner="w1", lease_until=T0 + 30)
    record = the_callers_call("call-1", leased)
    await store.ingest(record)

    report = await forget_caller(store, ForgetRequest(CALLER), "test", AuditTrail(store))
    assert (report.counts.deliveries_deleted, report.counts.pending_cancelled) == (1, 1)
    engine.after_commit(record, IngestResult("accepted", 1))
    await settled(engine)

    sink = engine.runtime.sinks["crm"]
    assert isinstance(sink, RecordingSink)
    assert sink.sent == []
    assert await store.list_deliveries() == []
    assert await store.list_attempts("d-1") == []
    assert await store.get_event("call-1") is None


async def test_a_claimed_delivery_is_not_sent_once_its_caller_is_forgotten(
    store: Store, engine: DeliveryEngine
) -> None:
    # The lane's own claim: leased to this engine and held in memory, not sent yet.
    later = T0 + 600  # not due for the running lane before this test claims it
    record = the_callers_call("call-2", NewDelivery("d-2", "crm", "all"))
    await store.ingest(IngestRecord(**{**record.__dict__, "received_at": later}))
    [claimed] = await store.claim("crm", 1, "w1", 30.0, later)
    assert isinstance(claimed, ClaimedDelivery)

    await forget_caller(store, ForgetRequest(CALLER), "test", AuditTrail(store))
    lane = engine.lanes["crm"]
    lane.sending += 1
    lane.start_send(claimed, later)
    await settled(engine)

    sink = engine.runtime.sinks["crm"]
    assert isinstance(sink, RecordingSink)
    assert sink.sent == []
    assert await store.list_deliveries() == []
    assert await store.pending_sinks() == set()


async def test_a_delivery_of_another_caller_is_still_sent(
    store: Store, engine: DeliveryEngine
) -> None:
    """The check before a send lets a delivery still held go (the test above can fail)."""
    assert engine._reserve("crm")
    leased = NewDelivery("d-3", "crm", "all", lease_owner="w1", lease_until=T0 + 30)
    body = {"id": "call-3", "fromNumber": "+442071838750"}
    record = IngestRecord("call-3", json.dumps(body).encode(), T0, [leased])
    await store.ingest(record)

    await forget_caller(store, ForgetRequest(CALLER), "test", AuditTrail(store))
    engine.after_commit(record, IngestResult("accepted", 1))
    await settled(engine)

    sink = engine.runtime.sinks["crm"]
    assert isinstance(sink, RecordingSink)
    assert sink.sent == ["d-3"]
    [delivered] = await store.list_deliveries()
    assert delivered.status == "delivered"
