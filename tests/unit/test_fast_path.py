"""The engine's fast path (`plan` / `after_commit`) and its wake-ups, on the in-memory
store with a fake clock: send slots are never lost, a commit wakes only its sinks'
lanes, and a sink that cannot send costs the store no writes while it waits."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from router.config.runtime import Runtime
from router.core.metrics import Metrics
from router.engine.delivery import DeliveryEngine, EngineSettings
from router.engine.health import StoreHealth
from router.engine.intake import Intake
from router.engine.prepare import Prepared, Target
from router.store import IngestRecord, NewDelivery, Store, open_store
from router.store.errors import StoreUnavailable
from router.web.webhook import outcome_answer
from sinks.base import DeliveryRequest, SendResult, Sink, SinkResources
from tests.unit.test_delivery_engine import T0, WAIT, FakeClock, looked_again

RULES = """
version: 1
defaults:
  retry: {max_attempts: 10, initial_delay: 10s, max_delay: 1h, max_age: 1h}
sinks:
  crm: {type: log, path: /dev/null, concurrency: 2}
  ops: {type: log, path: /dev/null, concurrency: 2}
  later: {type: http, url: ""}
rules: []
"""


class GatedSink(Sink[DeliveryRequest]):
    """Holds every send until `gate` is set, so sends stay in flight while a test looks."""

    def __init__(self, real: Sink) -> None:
        super().__init__(real.name, real.config, real.resources)
        self.gate = asyncio.Event()
        self.sent: list[str] = []
        self.requests: list[DeliveryRequest] = []

    def build(self, request: DeliveryRequest) -> DeliveryRequest:
        return request

    async def transmit(self, request: DeliveryRequest) -> SendResult:
        self.sent.append(request.delivery_id)
        self.requests.append(request)
        await self.gate.wait()
        return SendResult(200)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES)
        self.metrics = Metrics()
        self.runtime = Runtime(rules, self.metrics, SinkResources())
        self.runtime.load()
        self.sinks = {name: GatedSink(self.runtime.sinks[name]) for name in ("crm", "ops")}
        self.runtime.sinks.update(self.sinks)
        self.store: Store = open_store("memory://")
        # Intake and the engine share one clock, as the app gives them, starting at real time.
        self.clock = FakeClock(time.time())
        # Idle lanes poll rarely: every store write in a test has a cause the test knows.
        settings = EngineSettings(lease_seconds=30.0, idle_poll=60.0, unconfigured_check=0.01)
        self.engine = DeliveryEngine(
            self.runtime,
            self.store,
            self.metrics,
            settings,
            owner="w1",
            clock=self.clock,
            rng=random.Random(7),
        )
        self.intake = Intake(
            self.runtime,
            self.store,
            self.metrics,
            self.engine,
            health=StoreHealth(),
            clock=self.clock,
        )

    async def start(self) -> None:
        await self.store.open()
        self.writes = 0  # write transactions asked of the store (the memory store's reads
        real_write = self.store.connector.write  # share its one connection, so its
        # commit counter counts them too)

        async def counting_write(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            return await real_write(*args, **kwargs)

        self.store.connector.write = counting_write  # type: ignore[method-assign]
        await self.engine.start()
        await until(lambda: {"crm", "ops", "later"} <= set(self.engine.lanes))

    async def stop(self) -> None:
        for sink in self.sinks.values():
            sink.gate.set()
        self.intake.close()
        await self.engine.stop()
        await self.store.close()

    async def post(self, event_id: str, *sinks: str) -> int:
        """Ingest one call routed to `sinks` the way the webhook does; the answer's status."""
        prepared = Prepared(
            event_id, "completed", "outbound", (), [Target(s, "r", None) for s in sinks], ()
        )
        outcome = await self.intake._accept(prepared, b'{"id": "%s"}' % event_id.encode())
        return outcome_answer(outcome).status

    def sending(self, sink: str) -> int:
        return self.engine.lanes[sink].sending


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    started = Harness(tmp_path)
    await started.start()
    yield started
    await started.stop()


async def until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    async def poll() -> None:
        while True:
            outcome = condition()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


async def test_a_fresh_delivery_is_written_leased_and_sent_without_a_claim(harness) -> None:
    assert await harness.post("call-1", "crm") == 200
    await until(lambda: harness.sinks["crm"].sent != [])
    assert harness.sending("crm") == 1
    [view] = await harness.store.list_deliveries()
    assert harness.sinks["crm"].sent == [view.id]

    harness.sinks["crm"].gate.set()
    await until(lambda: harness.sending("crm") == 0)

    async def delivered() -> bool:
        return (await harness.store.get_delivery(view.id)).status == "delivered"

    await until(delivered)


async def test_a_delivery_sent_at_once_uses_the_body_the_webhook_decoded(harness) -> None:
    """The webhook decoded a small body to route it; the delivery sent right after the
    commit gets those objects instead of decoding the stored payload a second time."""
    decoded = {"id": "call-1", "status": "COMPLETED"}
    prepared = Prepared(
        "call-1", "COMPLETED", "OUTBOUND", (), [Target("crm", "r", None)], (), decoded=decoded
    )
    outcome = await harness.intake._accept(prepared, b'{"id": "call-1", "status": "COMPLETED"}')
    assert outcome_answer(outcome).status == 200
    await until(lambda: harness.sinks["crm"].requests != [])
    assert harness.sinks["crm"].requests[0].event is decoded


async def test_a_store_failure_gives_the_slot_back(harness, monkeypatch) -> None:
    async def failing_ingest(record: IngestRecord) -> Any:
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(harness.store, "ingest", failing_ingest)
    assert await harness.post("call-1", "crm", "ops") == 503
    assert (harness.sending("crm"), harness.sending("ops")) == (0, 0)


async def test_a_cancelled_ingest_gives_the_slot_back(harness, monkeypatch) -> None:
    async def hanging_ingest(record: IngestRecord) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(harness.store, "ingest", hanging_ingest)
    posting = asyncio.create_task(harness.post("call-1", "crm"))
    await until(lambda: harness.sending("crm") == 1)
    posting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await posting
    assert harness.sending("crm") == 0


async def test_a_duplicate_takes_no_slot(harness) -> None:
    assert await harness.post("call-1", "crm") == 200
    await until(lambda: harness.sinks["crm"].sent != [])
    assert await harness.post("call-1", "crm") == 200  # answered as a duplicate
    assert harness.sending("crm") == 1  # the first call's send only
    assert len(await harness.store.list_deliveries()) == 1

    harness.sinks["crm"].gate.set()
    await until(lambda: harness.sending("crm") == 0)
    assert len(harness.sinks["crm"].sent) == 1


async def test_a_full_sink_waits_in_the_store_and_its_slots_are_not_overdrawn(harness) -> None:
    for number in range(4):
        assert await harness.post(f"call-{number}", "crm") == 200
    views = await harness.store.list_deliveries()
    assert len(views) == 4
    await until(lambda: len(harness.sinks["crm"].sent) == 2)
    assert harness.sending("crm") == 2  # concurrency 2: two sent at once, two wait

    harness.clock.now = time.time() + 1  # the waiting ones are due
    harness.sinks["crm"].gate.set()

    async def all_delivered() -> bool:
        return {v.status for v in await harness.store.list_deliveries()} == {"delivered"}

    await until(all_delivered)
    assert harness.sending("crm") == 0


async def test_a_sink_removed_by_a_reload_before_the_commit_gets_its_delivery_back(
    harness, monkeypatch
) -> None:
    real_ingest = harness.store.ingest

    async def reload_then_ingest(record: IngestRecord) -> Any:
        del harness.runtime.sinks["crm"]  # as a reload without the sink would leave it
        return await real_ingest(record)

    monkeypatch.setattr(harness.store, "ingest", reload_then_ingest)
    assert await harness.post("call-1", "crm") == 200
    assert harness.sending("crm") == 0
    assert harness.sinks["crm"].sent == []
    [view] = await harness.store.list_deliveries()

    async def put_back() -> bool:  # deferred: pending, no attempt, no lease left
        claimed = await harness.store.claim("crm", 5, "w2", 30.0, time.time() + 1)
        return [c.id for c in claimed] == [view.id]

    await until(put_back)


async def test_a_sink_unconfigured_by_a_reload_is_never_asked_to_build_or_send(
    harness, monkeypatch
) -> None:
    """Sinks do not check their settings: the engine sends nothing to an unconfigured one,
    not a delivery reserved before the reload, nor one claimed after it."""
    unconfigured = GatedSink(harness.runtime.sinks["later"])  # url: "" (missing_settings)
    unconfigured.gate.set()
    built: list[str] = []
    monkeypatch.setattr(unconfigured, "build", lambda request: built.append(request.event_id))
    real_ingest = harness.store.ingest

    async def reload_then_ingest(record: IngestRecord) -> Any:
        harness.runtime.sinks["crm"] = unconfigured  # a reload emptied crm's url meanwhile
        return await real_ingest(record)

    monkeypatch.setattr(harness.store, "ingest", reload_then_ingest)
    assert await harness.post("call-1", "crm") == 200  # reserved, then given back
    monkeypatch.setattr(harness.store, "ingest", real_ingest)
    assert await harness.post("call-2", "crm") == 200  # no slot: written to wait
    harness.clock.now = time.time() + 1  # both due
    lane = harness.engine.lanes["crm"]
    for _ in range(5):  # the lane looks again each unconfigured_check (0.01 s) and on wakes
        lane.wake()
        await asyncio.sleep(0.03)
    assert (built, unconfigured.sent, harness.sending("crm")) == ([], [], 0)
    views = await harness.store.list_deliveries(sink="crm")
    assert sorted((v.status, v.attempts) for v in views) == [("pending", 0)] * 2


async def test_a_commit_wakes_only_the_lanes_of_its_sinks(harness, monkeypatch) -> None:
    woken: list[str] = []
    for name, lane in harness.engine.lanes.items():
        monkeypatch.setattr(lane, "wake", lambda name=name: woken.append(name))

    await harness.store.ingest(IngestRecord("call-1", b"{}", T0, [NewDelivery("d1", "crm", "r")]))
    assert woken == ["crm"]

    woken.clear()  # written leased (the fast path): no lane has anything to claim
    await harness.store.ingest(
        IngestRecord("call-2", b"{}", T0, [NewDelivery("d2", "ops", "r", None, "w1", T0 + 30)])
    )
    assert woken == []


async def test_an_unconfigured_sink_costs_no_store_writes_while_it_waits(harness) -> None:
    for number in range(3):
        assert await harness.post(f"call-{number}", "later") == 200
    writes = harness.writes
    lane = harness.engine.lanes["later"]
    for _ in range(5):  # the lane looks again each unconfigured_check (0.01 s) and on wakes
        lane.wake()
        await looked_again(lane)
    assert harness.writes == writes
    views = await harness.store.list_deliveries(sink="later")
    assert [(v.status, v.attempts) for v in views] == [("pending", 0)] * 3

    harness.clock.now = time.time() + 3601  # past max_age (1h): they go dead, in one write
    lane.wake()

    async def all_dead() -> bool:
        return {v.status for v in await harness.store.list_deliveries(sink="later")} == {"dead"}

    await until(all_dead)
    assert harness.writes == writes + 1
    views = await harness.store.list_deliveries(sink="later")
    assert {(v.attempts, v.last_error) for v in views} == {(0, "sink not configured")}


# --- order: a fresh delivery waits behind older ones; a few leased ahead ---


class OneAtATimeSink(GatedSink):
    """Holds every send until the test lets one go (`let_one_go`), oldest send first."""

    def __init__(self, real: Sink) -> None:
        super().__init__(real)
        self.turns = asyncio.Semaphore(0)
        self.answered: list[str] = []

    async def transmit(self, request: DeliveryRequest) -> SendResult:
        self.sent.append(request.event_id)
        await self.turns.acquire()
        self.answered.append(request.event_id)
        return SendResult(200)

    def let_one_go(self) -> None:
        self.turns.release()


class HeldClaims:
    """The store's claims, held until `open` is set; `count` of claims asked for."""

    def __init__(self, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.count = 0
        real_claim = harness.store.claim

        async def held_claim(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            await self.open.wait()
            return await real_claim(*args, **kwargs)

        monkeypatch.setattr(harness.store, "claim", held_claim)


def one_at_a_time(harness: Harness) -> OneAtATimeSink:
    sink = OneAtATimeSink(harness.runtime.sinks["crm"])  # concurrency 2
    harness.runtime.sinks["crm"] = sink
    return sink


async def test_a_fresh_delivery_waits_behind_those_already_waiting(harness, monkeypatch) -> None:
    """A slot that frees up while deliveries of the sink wait in the store goes to the
    oldest of them, not to a call that arrives at that moment: before, the fresh call
    took it (the fast path) and the waiting ones waited for the burst to end."""
    sink = one_at_a_time(harness)
    lane = harness.engine.lanes["crm"]
    lane.wake()
    await looked_again(lane)  # its claims found nothing waiting
    claims = HeldClaims(harness, monkeypatch)  # the lane cannot claim for now
    for number in range(4):
        assert await harness.post(f"call-{number}", "crm") == 200
    await until(lambda: sink.sent == ["call-0", "call-1"])  # concurrency 2: two wait
    sink.let_one_go()
    await until(lambda: harness.sending("crm") == 1)  # a slot is free, the claim held

    assert await harness.post("call-4", "crm") == 200
    await asyncio.sleep(0.05)
    assert sink.sent == ["call-0", "call-1"]  # call-4 did not take the free slot
    assert harness.sending("crm") == 1

    claims.open.set()
    for _ in range(4):
        sink.let_one_go()
    await until(lambda: len(sink.answered) == 5)
    assert sink.sent == ["call-0", "call-1", "call-2", "call-3", "call-4"]
    await until(lambda: harness.sending("crm") == 0)


async def test_without_waiting_deliveries_a_fresh_one_is_still_sent_without_a_claim(
    harness, monkeypatch
) -> None:
    lane = harness.engine.lanes["crm"]
    lane.wake()
    await looked_again(lane)
    claims = HeldClaims(harness, monkeypatch)
    claims.open.set()
    asked = claims.count
    assert await harness.post("call-1", "crm") == 200
    await until(lambda: harness.sinks["crm"].sent != [])
    assert claims.count == asked


async def test_deliveries_leased_ahead_are_sent_as_slots_free_and_given_back_on_stop(
    harness,
) -> None:
    """With deliveries waiting, the lane leases up to `concurrency` more than it sends;
    a send that ends starts the next of those at once; the rest go back on shutdown,
    no attempt spent, for the next start or another worker to take."""
    sink = one_at_a_time(harness)
    lane = harness.engine.lanes["crm"]
    for number in range(6):
        assert await harness.post(f"call-{number}", "crm") == 200
    await until(lambda: len(lane.ready) == 2)  # concurrency 2: two sent, two leased ahead
    assert sink.sent == ["call-0", "call-1"]
    assert [d.event_id for d in lane.ready] == ["call-2", "call-3"]
    # Leased: another worker cannot claim them, only the two still waiting.
    later = time.time() + 1
    others = await harness.store.claim("crm", 10, "w2", 30.0, later)
    assert sorted(d.event_id for d in others) == ["call-4", "call-5"]
    for delivery in others:
        await harness.store.defer(delivery.id, "w2", later)

    sink.let_one_go()
    await until(lambda: sink.sent[2:] == ["call-2"])  # from those leased ahead

    stopping = asyncio.create_task(harness.engine.stop())
    for _ in range(3):  # the three in flight end; nothing new starts while stopping
        sink.let_one_go()
    await stopping
    assert sink.sent[:3] == ["call-0", "call-1", "call-2"]
    views = {v.event_id: v for v in await harness.store.list_deliveries(sink="crm")}
    back = await harness.store.claim("crm", 10, "w3", 30.0, time.time() + 60)
    left = {views[d.event_id].event_id for d in back}
    assert left == {f"call-{n}" for n in range(6)} - set(sink.answered)
    assert all(views[e].attempts == 0 for e in left)


class PausedByHand:
    """Operator controls with `sinks` paused by hand (for an hour)."""

    def __init__(self, *sinks: str) -> None:
        self.sinks = set(sinks)

    def pause_of(self, sink: str, now: float) -> Any:
        return SimpleNamespace(until=now + 3600) if sink in self.sinks else None

    silences: tuple[()] = ()


async def test_deliveries_leased_ahead_go_back_when_the_sink_is_paused_by_hand(harness) -> None:
    sink = one_at_a_time(harness)
    lane = harness.engine.lanes["crm"]
    for number in range(6):
        assert await harness.post(f"call-{number}", "crm") == 200
    await until(lambda: len(lane.ready) == 2)

    harness.engine.controls = PausedByHand("crm")  # type: ignore[assignment]
    lane.wake()
    await until(lambda: not lane.ready)
    for _ in range(2):  # the two in flight end; nothing else starts while paused
        sink.let_one_go()
    await until(lambda: harness.sending("crm") == 0)
    await asyncio.sleep(0.05)
    assert sink.sent == ["call-0", "call-1"]
    back = await harness.store.claim("crm", 10, "w2", 30.0, time.time() + 60)
    assert sorted(d.event_id for d in back) == [f"call-{n}" for n in range(2, 6)]


async def test_a_wake_up_while_the_lane_looks_is_not_lost(harness, monkeypatch) -> None:
    """A delivery written to wait while the lane is in the middle of a look (its claim and
    its read of the next due time both done, finding nothing) is sent at once: the wake-up
    it brings is not cleared by the sleep that ends the look (60 s here)."""
    lane = harness.engine.lanes["crm"]
    lane.wake()
    await looked_again(lane)
    looked = asyncio.Event()
    go_on = asyncio.Event()
    real_next_due = harness.store.next_due_at

    async def held_next_due(sink: str) -> float | None:
        found = await real_next_due(sink)
        looked.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(harness.store, "next_due_at", held_next_due)
    lane.wake()
    await asyncio.wait_for(looked.wait(), WAIT)  # the look found nothing due
    await harness.store.ingest(
        IngestRecord("call-1", b"{}", harness.clock(), [NewDelivery("d1", "crm", "r")])
    )
    go_on.set()
    await until(lambda: harness.sinks["crm"].sent == ["d1"])
