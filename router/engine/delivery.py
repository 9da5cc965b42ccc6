"""Delivery workers: claim due deliveries, send them through their sink, record the outcome.

One *lane* per sink, so sinks never wait on each other: a dead CRM cannot delay a
Slack alert. A lane sends only what its limits allow now (its `concurrency`, its
`rate_limit` token bucket, and its breaker, which pauses a sink that keeps failing
and then probes it with one delivery). Deliveries waiting on any of those stay in
the store, untouched: they spend no attempts. A healthy sink without a rate limit whose
deliveries queue up has a few more leased ahead (`SinkLane.ready`, at most its
`concurrency`), so a slot that frees up is filled at once instead of after a claim; and
while deliveries of a sink wait in the store, a fresh one waits behind them instead of
taking a free slot first (`SinkLane.backlog`): a sink's deliveries go out in the order
they became due, so none waits for a burst to end. So do those of a sink whose settings
leave it unconfigured (`missing_settings`): its lane claims nothing, and a delivery
written leased for it just before a reload unconfigured it is given back, so a sink is
never asked to send without its settings. Leases are renewed while a send is in
flight; a crashed worker's leases expire and another worker takes them over. Just before
a send the lane reads that it still holds the delivery: one cancelled meanwhile (its
caller forgotten, DESIGN.md section 15) or taken over is not sent. Notices of dead
deliveries (`on_dead`) pending for a sink go out together as one message, one such
message at a time per lane (`router.engine.notices`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from router.config import Runtime
from router.core import tracing
from router.core.metrics import Metrics
from router.core.missing_values import tallied
from router.core.pacing import PauseSettings, SinkBreaker, TokenBucket
from router.core.retry import decide_after_failure
from router.core.units import Rate
from router.engine.health import StoreHealth, is_store_failure
from router.engine.notices import NoticeMaker
from router.engine.prepare import Target
from router.engine.records import new_delivery_id
from router.engine.render_apart import RenderApart
from router.engine.requests import (
    ReadySend,
    build_and_transmit,
    delivery_request,
    notices_request,
)
from router.operators import OperatorControls
from router.rules import Silence
from router.store import (
    WORKER_HEARTBEAT_SECONDS,
    AttemptRecord,
    ClaimedDelivery,
    DeadDelivery,
    DeliveryQueue,
    Exchange,
    IngestRecord,
    IngestResult,
    NewDelivery,
    NewNotice,
    StepOutcome,
)
from sinks.base import (
    DeliveryRequest,
    Permanent,
    Retryable,
    SendResult,
    Sink,
)

log = logging.getLogger("router.engine.delivery")

Clock = Callable[[], float]


@dataclass
class EngineSettings:
    lease_seconds: float = 30.0
    idle_poll: float = 5.0  # longest sleep when nothing is due (other replicas, clock drift)
    claim_batch: int = 64
    unconfigured_check: float = 30.0
    # On SIGTERM, sends in flight finish by this long after the stop began (the requests
    # in progress are answered within it too): inside Docker's default 10 s stop timeout.
    shutdown_grace: float = 8.0
    pause: PauseSettings = field(default_factory=PauseSettings)
    # Notices (`on_dead`) to one sink go out together: each waits this long after it is
    # written for others of the same burst, and one message carries up to `notice_batch`.
    notice_window: float = 2.0
    notice_batch: int = 100


@dataclass(frozen=True)
class _Sent:
    """What one send got: `failure` (retryable, reason) or None, and what it saw."""

    failure: tuple[bool, str] | None
    status_code: int | None
    detail: str | None
    retry_after: float | None
    exchange: Exchange | None
    steps: tuple[StepOutcome, ...]
    duration: float


@dataclass(frozen=True)
class AttemptOutcome:
    """What one send came to, before the store records it."""

    record: AttemptRecord
    next_attempt_at: float | None
    retry_after: float | None


class DeliveryEngine:
    def __init__(
        self,
        runtime: Runtime,
        store: DeliveryQueue,
        metrics: Metrics,
        settings: EngineSettings | None = None,
        owner: str | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self.settings = settings or EngineSettings()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self.health = health or StoreHealth()
        self.lanes: dict[str, SinkLane] = {}
        self.stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.live_workers = 1  # engines sharing the store; each takes 1/n of every rate limit
        # Silences re-checked before each send, and sinks paused by hand (none: neither).
        self.controls: OperatorControls | None = None
        # Builds the messages of large calls in parse worker processes; None: here.
        self.render_apart: RenderApart | None = None
        # Notices of dead deliveries (`on_dead`); the app sets its ROUTER_PUBLIC_URL.
        self.notices = NoticeMaker(self._on_dead_targets, hold=self.settings.notice_window)
        self.stop_began: float | None = None  # the event loop's time of SIGTERM (`serve`)

    async def start(self) -> None:
        self.store.on_new_deliveries(self.new_deliveries)
        self.runtime.on_reload(self._on_reload)
        self._supervisor = asyncio.create_task(self._supervise(), name="delivery-supervisor")
        self._renewer = asyncio.create_task(self._renew_leases(), name="lease-renewer")
        self._heartbeat = asyncio.create_task(self._beat(), name="worker-heartbeat")

    def wake(self) -> None:
        """Every lane looks again (a reload, a shutdown). (The supervisor is not woken: it
        only matters when the set of sinks changes, on reload or by polling.)"""
        for lane in self.lanes.values():
            lane.wake()

    def new_deliveries(self, sinks: frozenset[str] | None) -> None:
        """Deliveries of `sinks` (None: of any sink) were committed and wait for a claim:
        those lanes look again, unless they wait for a reload or a pause to end. Named
        sinks (this process wrote them) also queue their next fresh calls behind them;
        None (another replica's NOTIFY, or a rare local write of several sinks) only
        wakes the lanes: each replica keeps its own calls in due order, and one replica's
        burst does not take every replica's fast path away."""
        for name in frozenset(self.lanes) if sinks is None else sinks:
            lane = self.lanes.get(name)
            if lane is None:
                self._changed.set()  # a sink with no lane yet: the supervisor starts one
            else:
                lane.new_deliveries(queue_behind=sinks is not None)

    # --- the fast path: a fresh delivery sent at once, with no claim ---

    def plan(self, targets: Iterable[Target], received_at: float) -> list[NewDelivery]:
        """The deliveries to write for a call being ingested. One whose sink can send at
        once (a free `concurrency` slot and a rate token) is written already leased to this
        engine and goes out from `after_commit`, with no claim; the others (and every
        digest, which waits for its window) wait in the store as usual. Every slot taken
        here is given back or used by `after_commit`, which the caller must call."""
        lease_until = received_at + self.settings.lease_seconds
        deliveries: list[NewDelivery] = []
        try:
            for sink, rule, group in targets:
                if group is None and self._reserve(sink):
                    deliveries.append(
                        NewDelivery(new_delivery_id(), sink, rule, None, self.owner, lease_until)
                    )
                    continue
                deliveries.append(NewDelivery(new_delivery_id(), sink, rule, group))
                lane = self.lanes.get(sink)
                if group is None and lane is not None:
                    lane.waiting_in_store()  # later calls queue behind this one
        except BaseException:
            self._release(deliveries)
            raise
        return deliveries

    def after_commit(self, record: IngestRecord, result: IngestResult | None) -> None:
        """The store answered the ingest of `record` (`result`), or did not (None: it
        failed, timed out or was cancelled): send what was written leased to this engine,
        or give its slots back."""
        if result is None or result.status != "accepted":
            self._release(record.deliveries)
            return
        now = self.clock()
        for delivery in record.deliveries:
            if delivery.lease_owner is not None:
                lane = self.lanes[delivery.sink]
                lane.start_send(ClaimedDelivery.written_leased(delivery, record), now)

    def _reserve(self, sink: str) -> bool:
        lane = self.lanes.get(sink)
        return lane is not None and not self.stopping and lane.reserve(self.clock())

    def _release(self, deliveries: Iterable[NewDelivery]) -> None:
        """Give back the slots of leased deliveries that were not written."""
        for delivery in deliveries:
            if delivery.lease_owner is not None:
                lane = self.lanes.get(delivery.sink)
                if lane is not None:
                    lane.sending -= 1
                    lane.wake()

    def _on_dead_targets(self, sink: str) -> tuple[str, ...]:
        """The sinks told when a delivery of `sink` goes dead, in the running rules.yaml."""
        sinks = self.runtime.config.sinks
        settings = sinks.get(sink)
        if settings is None:
            return ()
        return tuple(target for target in settings.on_dead if target in sinks)

    def notices_of_dead(self, delivery: ClaimedDelivery, error: str | None) -> list[NewNotice]:
        """The notices (`on_dead`) of `delivery`, which goes dead now with `error`."""
        if delivery.notice is not None or not self.notices.wanted(delivery.sink):
            return []
        dead = DeadDelivery(
            delivery.id, delivery.event_id, delivery.sink, delivery.rule, error, delivery.payload
        )
        call = delivery.decoded if isinstance(delivery.decoded, dict) else None
        return self.notices.notices_of(dead, call)

    def store_failed(self, error: Exception, what: str, **fields: str) -> None:
        """A store call failed: an outage is reported once (see router.engine.health); anything
        else is a bug and logged in full."""
        if is_store_failure(error):
            self.health.failed(error)
        else:
            log.error(what, exc_info=error, extra=fields)

    def _on_reload(self) -> None:
        self._changed.set()
        self.wake()

    async def _supervise(self) -> None:
        """Keep one lane per sink that is configured or has pending deliveries."""
        while not self.stopping:
            try:
                names = set(self.runtime.config.sinks) | await self.store.pending_sinks()
            except Exception as exc:
                self.store_failed(exc, "cannot list sinks with pending deliveries")
                names = set(self.runtime.config.sinks)
            for name in names - set(self.lanes):
                lane = SinkLane(self, name)
                self.lanes[name] = lane
                lane.task = asyncio.create_task(lane.run(), name=f"lane-{name}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.settings.idle_poll)

    async def _beat(self) -> None:
        """Tell the store this engine is alive and learn how many share it, so that a
        sink's `rate_limit` holds across replicas (each takes its share)."""
        while not self.stopping:
            try:
                self.live_workers = max(await self.store.live_workers(self.owner, self.clock()), 1)
            except Exception as exc:
                self.store_failed(exc, "cannot count live workers")
            await asyncio.sleep(WORKER_HEARTBEAT_SECONDS)

    async def _renew_leases(self) -> None:
        interval = self.settings.lease_seconds / 3
        while not self.stopping:
            await asyncio.sleep(interval)
            ids = [i for lane in self.lanes.values() for i in lane.leased()]
            if ids:
                try:
                    await self.store.renew_leases(
                        ids, self.owner, self.clock() + self.settings.lease_seconds
                    )
                except Exception as exc:
                    self.store_failed(exc, "cannot renew leases")

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish (up to the grace period), and give
        back what is still leased so another worker or the next start takes it at once."""
        self.stopping = True
        for task in (self._supervisor, self._renewer, self._heartbeat):
            if task is not None:
                task.cancel()
        for lane in self.lanes.values():
            lane.wake()
        lane_tasks = [lane.task for lane in self.lanes.values() if lane.task is not None]
        await asyncio.gather(*lane_tasks, return_exceptions=True)
        sends = {i: t for lane in self.lanes.values() for i, t in lane.in_flight.items()}
        unfinished: list[str] = []
        if sends:
            now = asyncio.get_running_loop().time()
            grace = drain_seconds(self.settings.shutdown_grace, self.stop_began, now)
            _, still_running = await asyncio.wait(sends.values(), timeout=grace)
            unfinished = [i for i, task in sends.items() if task in still_running]
            for task in still_running:
                task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)
        unfinished += [d.id for lane in self.lanes.values() for d in lane.take_ready()]
        for delivery_id in unfinished:
            with contextlib.suppress(Exception):
                await self.store.defer(delivery_id, self.owner, self.clock())
        with contextlib.suppress(Exception):
            await self.store.retire_worker(self.owner)


def drain_seconds(grace: float, stop_began: float | None, now: float) -> float:
    """How long sends in flight may still run: what is left of `grace` since the stop
    began (all of it when the start is not known)."""
    if stop_began is None:
        return grace
    return max(0.0, grace - (now - stop_began))


class SinkLane:
    """Sends the deliveries of one sink, within its limits."""

    def __init__(self, engine: DeliveryEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.breaker = SinkBreaker(engine.settings.pause)
        self.in_flight: dict[str, asyncio.Task[None]] = {}  # leased, until the outcome is stored
        self.sending = 0  # sends not yet answered: what `concurrency` limits
        self._background: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Wake-ups so far, and as many as the current look began with: one that comes
        # while the lane looks (in a claim, say) is not lost by the sleep that follows.
        self._wakes = 0
        self._wakes_seen = 0
        self._bucket: TokenBucket | None = None
        self._bucket_rate: Rate | None = None
        # Deliveries whose parse workers died building the message, and how many times.
        self._worker_losses: dict[str, int] = {}
        # Not configured, or paused: new deliveries do not wake the lane (a reload or the
        # pause's end does), so a sink that cannot send costs the store nothing meanwhile.
        self.holding = False
        # A group of notices (`on_dead`) is being sent: the next waits for its outcome.
        self.notices_in_flight = False
        # Deliveries leased ahead, in claim order (oldest due first): a send that ends
        # starts the next at once (`send_ready`), without waiting for a claim.
        self.ready: collections.deque[ClaimedDelivery] = collections.deque()
        # Due deliveries of this sink may wait in the store: a fresh one then waits its
        # turn behind them (no fast path). Unknown at start; a claim that finds fewer
        # than it asked for clears it, unless more were written to wait meanwhile.
        self.backlog = True
        self._written_to_wait = 0

    def wake(self) -> None:
        self._wakes += 1
        self._wake.set()

    def new_deliveries(self, *, queue_behind: bool = True) -> None:
        if queue_behind:
            self.waiting_in_store()
        if not self.holding:
            self.wake()

    def waiting_in_store(self) -> None:
        """Deliveries of this sink are (being) written to wait for a claim."""
        self.backlog = True
        self._written_to_wait += 1

    def leased(self) -> list[str]:
        """The ids this lane holds leases on: in flight and leased ahead."""
        return [*self.in_flight, *(delivery.id for delivery in self.ready)]

    def take_ready(self) -> list[ClaimedDelivery]:
        """The deliveries leased ahead, no longer this lane's to send (to be given back)."""
        taken = list(self.ready)
        self.ready.clear()
        return taken

    def _give_back_ready(self) -> None:
        """The sink cannot send now (paused, removed, unconfigured, rate-limited by a
        reload): what was leased ahead goes back to the store, due at once."""
        for delivery in self.take_ready():
            self._spawn_defer(delivery)

    def send_ready(self) -> None:
        """Start deliveries leased ahead while slots are free: called as a send ends, so a
        slot is refilled without waiting for the lane's loop (which may be in a claim)."""
        if not self.ready or self.engine.stopping:
            return
        now = self.engine.clock()
        sink = self._sink_that_may_send(now)
        if sink is None or self._current_bucket(sink, now) is not None:
            return  # the lane's loop gives them back
        room = self._room(sink, now)
        while room > 0 and self.ready:
            self.sending += 1
            self._spawn(sink, self.ready.popleft(), now)
            room -= 1

    def _ahead(self, sink: Sink, bucket: TokenBucket | None, now: float) -> int:
        """How many deliveries to keep leased ahead: none for a serial or rate-limited
        sink, nor while the breaker holds it back (paused, or probing with one)."""
        concurrency = sink.config.effective_concurrency()
        if bucket is not None or concurrency == 1:
            return 0
        if self.breaker.allowed_in_flight(now, concurrency) < concurrency:
            return 0
        return min(concurrency, self.engine.settings.claim_batch)

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until woken."""
        if self._wakes == self._wakes_seen:
            self._wake.clear()
        if seconds <= 0 or self.engine.stopping:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _bucket_for(self, rate: Rate | None, now: float) -> TokenBucket | None:
        if rate != self._bucket_rate:
            self._bucket_rate = rate
            self._bucket = TokenBucket(rate, now) if rate is not None else None
        return self._bucket

    async def run(self) -> None:
        engine = self.engine
        failures = 0
        while not engine.stopping:
            try:
                await self._step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                engine.store_failed(exc, "delivery lane failed; retrying", sink=self.name)
                # Backs off, deaf to wake-ups: while the store is down, every failed
                # ingest would wake the lane into another failing claim.
                await asyncio.sleep(failure_backoff(failures, engine.settings.idle_poll))

    async def _step(self) -> None:
        self._wakes_seen = self._wakes
        engine, settings = self.engine, self.engine.settings
        now = engine.clock()
        sink = engine.runtime.sinks.get(self.name)
        paused = self.breaker.is_paused(now)
        held = engine.controls.pause_of(self.name, now) if engine.controls is not None else None
        engine.metrics.sink_paused.labels(self.name).set(1 if paused or held else 0)
        self.holding = False
        if sink is None or held is not None or paused or sink.config.missing_settings():
            self._give_back_ready()  # none of those may send what was leased ahead
        if held is not None and sink is not None:
            # Paused by hand: nothing is claimed, so its deliveries spend no attempts. A
            # resume (here or on another replica) shows within the controls' refresh.
            self.holding = True
            await self._sleep(min(held.until - now, engine.settings.idle_poll))
            return
        if sink is None:
            await self._kill_removed(now)
            await self._sleep(settings.idle_poll)
            return
        if sink.config.missing_settings():
            self.holding = True
            await self._kill_expired_unconfigured(now)
            await self._sleep(settings.unconfigured_check)
            return
        if paused:
            assert self.breaker.paused_until is not None
            self.holding = True
            await self._sleep(self.breaker.paused_until - now)
            return
        bucket = self._current_bucket(sink, now)
        if bucket is not None:
            self._give_back_ready()  # a reload gave the sink a rate limit
        else:
            self.send_ready()
        room = self._room(sink, now)
        ahead = self._ahead(sink, bucket, now)
        if room <= 0 and (ahead == 0 or not self.backlog or len(self.ready) > ahead // 2):
            await self._sleep(settings.idle_poll)  # a finished send wakes the lane
            return
        if bucket is not None and room > 0:
            delay = bucket.delay_until_available(now)
            if delay > 0:
                await self._sleep(delay)
                return
            room = 1
        # Below half of `ahead`, fill up to it: claims of several deliveries, not one
        # per send that ends.
        wanted = min(max(room, 0) + ahead - len(self.ready), settings.claim_batch)
        written_to_wait = self._written_to_wait
        claimed = await engine.store.claim(
            self.name,
            wanted,
            engine.owner,
            settings.lease_seconds,
            now,
            notices=not self.notices_in_flight and room > 0,
        )
        if len(claimed) < wanted and written_to_wait == self._written_to_wait:
            self.backlog = False  # nothing else due waits in the store
        if not claimed and room <= 0:
            await self._sleep(settings.idle_poll)  # a finished send or a new one wakes it
            return
        if not claimed:
            next_due = await engine.store.next_due_at(self.name)
            wait = (
                settings.idle_poll if next_due is None else min(next_due - now, settings.idle_poll)
            )
            if self.notices_in_flight and wait <= 0:
                wait = settings.idle_poll  # a due notice waits for the group in flight to end
            await self._sleep(max(wait, 0.01))
            return
        notices = [delivery for delivery in claimed if delivery.notice is not None]
        if notices:
            notices = await self._gather_notices(notices, now)
        sent_at = engine.clock()  # the claim may have waited on the store: count from now
        # Sends may have ended (or fresh deliveries taken slots) while the claim waited.
        room = 1 if bucket is not None else self._room(sink, sent_at) - bool(notices)
        for delivery in claimed:
            if delivery.notice is not None:
                continue
            if room <= 0:
                self.ready.append(delivery)
                continue
            if bucket is not None:
                bucket.take(sent_at)
            room -= 1
            self.sending += 1
            self._spawn(sink, delivery, sent_at)
        if notices:  # one send, one slot and one token, however many it carries
            if bucket is not None:
                bucket.take(sent_at)
            self.sending += 1
            self._spawn_notices(sink, notices, sent_at)

    async def _gather_notices(
        self, claimed: list[ClaimedDelivery], now: float
    ) -> list[ClaimedDelivery]:
        """The notices claimed, with every other pending notice of this sink (due, or
        still held by `notice_window`), up to `notice_batch`, oldest first."""
        engine, settings = self.engine, self.engine.settings
        try:
            more = await engine.store.claim_notices(
                self.name,
                settings.notice_batch - len(claimed),
                engine.owner,
                settings.lease_seconds,
                now,
            )
        except Exception as exc:  # those claimed still go; the others wait for the next
            engine.store_failed(exc, "cannot claim notices", sink=self.name)
            more = []
        seen = {delivery.id for delivery in claimed}
        group = claimed + [delivery for delivery in more if delivery.id not in seen]
        return sorted(group, key=lambda d: (d.created_at, d.id))

    def _room(self, sink: Sink, now: float) -> int:
        """Sends that may start now: the sink's concurrency (1 while probing, 0 while
        paused) less those not answered yet."""
        return self.breaker.allowed_in_flight(now, sink.config.effective_concurrency()) - (
            self.sending
        )

    def _current_bucket(self, sink: Sink, now: float) -> TokenBucket | None:
        rate = _share(sink.config.effective_rate_limit(), self.engine.live_workers)
        return self._bucket_for(rate, now)

    def _sink_that_may_send(self, now: float) -> Sink | None:
        """The lane's sink, unless it is gone, unconfigured or paused by hand."""
        sink = self.engine.runtime.sinks.get(self.name)
        if sink is None or sink.config.missing_settings():
            return None
        controls = self.engine.controls
        if controls is not None and controls.pause_of(self.name, now) is not None:
            return None
        return sink

    def reserve(self, now: float) -> bool:
        """A slot for a delivery written already leased (see DeliveryEngine.reserve).
        Never for a serial sink (`concurrency: 1`), whose order only claims keep."""
        sink = self._sink_that_may_send(now)
        if sink is None:
            return False
        if self.backlog or self.ready:
            return False  # older deliveries wait: this one goes behind them
        if sink.config.effective_concurrency() == 1 or self._room(sink, now) <= 0:
            return False
        bucket = self._current_bucket(sink, now)
        if bucket is not None and not bucket.take(now):
            return False
        self.sending += 1
        return True

    def start_send(self, delivery: ClaimedDelivery, started_at: float) -> None:
        """Send a reserved delivery; if its sink went away meanwhile, put it back."""
        sink = self.engine.runtime.sinks.get(self.name)
        if sink is None or sink.config.missing_settings():  # a reload came in between
            self.sending -= 1
            self._spawn_defer(delivery)
            return
        self._spawn(sink, delivery, started_at)

    def _spawn(self, sink: Sink, delivery: ClaimedDelivery, started_at: float) -> None:
        task = asyncio.create_task(
            self._deliver(sink, delivery, started_at), name=f"send-{delivery.id}"
        )
        self.in_flight[delivery.id] = task

    def _spawn_notices(self, sink: Sink, notices: list[ClaimedDelivery], started_at: float) -> None:
        self.notices_in_flight = True
        task = asyncio.create_task(
            self._deliver_notices(sink, notices, started_at), name=f"send-notices-{notices[0].id}"
        )
        for delivery in notices:  # each lease renewed, and given back on shutdown
            self.in_flight[delivery.id] = task

    def _spawn_defer(self, delivery: ClaimedDelivery) -> None:
        engine = self.engine
        task = asyncio.create_task(engine.store.defer(delivery.id, engine.owner, engine.clock()))
        self._background.add(task)
        task.add_done_callback(self._forget_defer)

    def _forget_defer(self, done: asyncio.Task[None]) -> None:
        self._background.discard(done)
        if not done.cancelled():
            # If the defer failed, the lease simply expires and the delivery is claimed then.
            done.exception()

    async def _kill_removed(self, now: float) -> None:
        """Due deliveries of a sink the running rules.yaml does not have go dead (replayable
        once the sink is back), but only those created before that file was loaded: a newer
        one was written by a replica that already runs a newer file with the sink, and is
        left for it. Deliveries in flight (under a live lease) are never touched."""
        engine = self.engine
        reason = f"sink {self.name!r} was removed from rules.yaml"
        loaded_at = engine.runtime.loaded_at
        claimed = await engine.store.claim(
            self.name, 500, engine.owner, engine.settings.lease_seconds, now
        )
        killed = 0
        for delivery in claimed:
            if delivery.created_at < loaded_at:
                await engine.store.kill(delivery.id, engine.owner, reason)
                engine.metrics.deliveries.labels(self.name, "dead").inc()
                killed += 1
            else:
                await engine.store.defer(delivery.id, engine.owner, now + engine.settings.idle_poll)
        if killed:
            log.warning("%d deliveries dead: %s", killed, reason, extra={"sink": self.name})

    async def _kill_expired_unconfigured(self, now: float) -> None:
        """Deliveries of an unconfigured sink wait untouched, spending no attempts and no
        store writes, until a reload configures it; past `max_age` they go dead."""
        engine = self.engine
        max_age = engine.runtime.config.retry_policy(self.name).max_age
        oldest = await engine.store.oldest_waiting(self.name, now)
        if oldest is None or now <= oldest + max_age:
            return
        notices_of = engine.notices.notices_of if engine.notices.wanted(self.name) else None
        killed = await engine.store.kill_expired_waiting(
            self.name, now - max_age, "sink not configured", now, notices_of
        )
        if killed:
            engine.metrics.deliveries.labels(self.name, "dead").inc(killed)

    async def _deliver(self, sink: Sink, delivery: ClaimedDelivery, started_at: float) -> None:
        engine = self.engine
        try:
            retry_in: float | None = None
            gone = False
            try:
                ready = await self._ready(sink, delivery)
                if ready.worker_lost:
                    retry_in = self._after_worker_loss(delivery)
                else:
                    self._worker_losses.pop(delivery.id, None)
                if ready.silence_reason is None and retry_in is None:
                    # Read last: a delivery cancelled meanwhile (its caller forgotten) or
                    # taken over by another worker is not sent.
                    gone = not await engine.store.still_leased(delivery.id, engine.owner)
                    if not gone:
                        attempt = self._traced_attempt if tracing.is_on() else self._attempt
                        outcome = await attempt(ready.send, delivery, started_at)
            finally:
                self.sending -= 1  # the slot is free once the destination answered
                self.send_ready()
                self.wake()
            if gone:
                log.info("delivery not sent: cancelled or taken over", extra=_fields(delivery))
                return
            if retry_in is not None:
                # The router's failure, not the sink's: no attempt spent, the breaker untouched.
                await engine.store.defer(delivery.id, engine.owner, engine.clock() + retry_in)
                return
            if ready.silence_reason is not None:
                now = engine.clock()
                if await engine.store.mute(delivery.id, engine.owner, ready.silence_reason, now):
                    engine.metrics.deliveries_muted.labels(self.name, "silence").inc()
                return
            if ready.digest_count is not None and outcome.record.outcome == "delivered":
                engine.metrics.digest_calls.labels(self.name).observe(ready.digest_count)
            notices = []
            if outcome.record.outcome == "dead":
                notices = engine.notices_of_dead(delivery, outcome.record.error)
            recorded = await engine.store.finish(
                delivery.id,
                engine.owner,
                outcome.record,
                next_attempt_at=outcome.next_attempt_at,
                notices=notices,
            )
            if recorded:
                engine.health.succeeded()
            self._account(outcome, delivery, recorded, sink_failed=not ready.worker_lost)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The lease will expire and the delivery be retried.
            engine.store_failed(exc, "could not record an attempt", **_fields(delivery))
        finally:
            if self.in_flight.get(delivery.id) is asyncio.current_task():
                self.in_flight.pop(delivery.id)
            self.wake()

    async def _deliver_notices(
        self, sink: Sink, group: list[ClaimedDelivery], started_at: float
    ) -> None:
        """Send notices of this sink as one message (a single one as itself), then record
        its outcome on each of them in one transaction. Those that stay pending retry
        together, at the first one's time, so the group goes out as one again."""
        engine = self.engine
        try:
            kept: list[ClaimedDelivery] = []
            try:
                # Read last, as for any send: a notice erased meanwhile is not sent.
                held = await asyncio.gather(
                    *(engine.store.still_leased(delivery.id, engine.owner) for delivery in group)
                )
                kept = [delivery for delivery, still in zip(group, held, strict=True) if still]
                if kept:
                    request = notices_request(kept)
                    sent = await self._send(
                        functools.partial(build_and_transmit, sink, request), kept[0]
                    )
            finally:
                self.sending -= 1
                self.wake()
            if not kept:
                log.info("notices not sent: cancelled or taken over", extra={"sink": self.name})
                return
            outcomes = [self._outcome(sent, delivery, started_at) for delivery in kept]
            retry_at = next(
                (o.next_attempt_at for o in outcomes if o.record.outcome == "retry"), None
            )
            finishes = [
                (
                    delivery.id,
                    outcome.record,
                    retry_at if outcome.record.outcome == "retry" else None,
                )
                for delivery, outcome in zip(kept, outcomes, strict=True)
            ]
            recorded = set(await engine.store.finish_many(finishes, engine.owner))
            if recorded:
                engine.health.succeeded()
            for number, (delivery, outcome) in enumerate(zip(kept, outcomes, strict=True)):
                # The breaker counts the one send once.
                self._account(outcome, delivery, delivery.id in recorded, sink_failed=number == 0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The leases will expire and the notices be sent again.
            engine.store_failed(exc, "could not record a notices attempt", sink=self.name)
        finally:
            self.notices_in_flight = False
            for delivery in group:
                if self.in_flight.get(delivery.id) is asyncio.current_task():
                    self.in_flight.pop(delivery.id)
            self.wake()

    def _after_worker_loss(self, delivery: ClaimedDelivery) -> float | None:
        """The parse workers building this delivery's message died (`router.engine.render_apart`):
        seconds until it is tried again without spending an attempt, or None once its
        workers died `WORKER_LOSSES_DEFERRED` times: then the message itself may be what
        kills them, and each further loss spends an attempt (the sink's breaker still
        never counts it), so the retry policy bounds it."""
        losses = self._worker_losses.get(delivery.id, 0) + 1
        if len(self._worker_losses) >= MAX_WORKER_LOSSES_KEPT:
            self._worker_losses.clear()  # deliveries finished elsewhere (another replica)
        self._worker_losses[delivery.id] = losses
        if losses > WORKER_LOSSES_DEFERRED:
            return None
        retry_in = failure_backoff(losses, self.engine.settings.idle_poll)
        log.warning(
            "parse worker died building the message; trying again in %.1f s"
            " without spending an attempt",
            retry_in,
            extra=_fields(delivery),
        )
        return retry_in

    def _silence_for(self, delivery: ClaimedDelivery, request: DeliveryRequest) -> Silence | None:
        """The silence that mutes this delivery now (checked again just before each send, so
        a silence also quiets deliveries already queued or retrying), or None."""
        controls = self.engine.controls
        if controls is None or not controls.silences or request.notice is not None:
            return None  # a notice is about the router, not about a call
        calls = request.digest.calls if request.digest is not None else [request.event]
        replayed_at = (
            delivery.retry_started_at if delivery.retry_started_at > delivery.created_at else None
        )
        return controls.silence_before_send(calls, self.name, self.engine.clock(), replayed_at)

    async def _ready(self, sink: Sink, delivery: ClaimedDelivery) -> ReadySend:
        """The delivery decoded and checked against the silences, here or, for a large
        call, in a parse worker process (`router.engine.render_apart`)."""
        payloads = None
        if delivery.kind == "digest":
            payloads = await self.engine.store.digest_calls(delivery.id)
        apart = self.engine.render_apart
        if apart is not None and apart.takes(sink, delivery, payloads):
            controls, now = self.engine.controls, self.engine.clock()
            return await apart.ready(sink, delivery, payloads, controls, now)
        request = delivery_request(delivery, payloads)
        silence = self._silence_for(delivery, request)
        return ReadySend(
            functools.partial(build_and_transmit, sink, request),
            None if silence is None else silence.reason,
            None if request.digest is None else request.digest.count,
        )

    async def _traced_attempt(
        self,
        send: Callable[[], Awaitable[SendResult]],
        delivery: ClaimedDelivery,
        started_at: float,
    ) -> AttemptOutcome:
        """`_attempt` in a span of the call's trace (`router.core.tracing`): the parent of
        the request an HTTP sink sends (`traceparent`)."""
        with tracing.span("delivery attempt", delivery.trace_parent, "client") as span:
            span.set("router.sink", self.name)
            span.set("router.rule", delivery.rule)
            span.set("router.delivery_id", delivery.id)
            span.set("router.event_id", delivery.event_id)
            span.set("router.attempt", delivery.attempts + 1)
            outcome = await self._attempt(send, delivery, started_at)
            record = outcome.record
            span.set("router.outcome", record.outcome)
            span.set("http.response.status_code", record.status_code)
            if record.outcome != "delivered":
                span.failed(record.error or record.outcome)
            return outcome

    async def _attempt(
        self,
        send: Callable[[], Awaitable[SendResult]],
        delivery: ClaimedDelivery,
        started_at: float,
    ) -> AttemptOutcome:
        return self._outcome(await self._send(send, delivery), delivery, started_at)

    async def _send(
        self, send: Callable[[], Awaitable[SendResult]], delivery: ClaimedDelivery
    ) -> _Sent:
        """Send once (`delivery` names it in the logs): what came of it."""
        engine = self.engine
        began = time.perf_counter()
        status_code: int | None = None
        detail: str | None = None
        retry_after: float | None = None
        exchange: Exchange | None = None  # what the sink sent and got back, masked
        steps: tuple[StepOutcome, ...] = ()  # an `http` sink's steps
        try:
            with tallied() as missing:
                result = await send()
        except Retryable as exc:
            failure: tuple[bool, str] | None = (True, exc.reason)
            status_code, retry_after, exchange = exc.status_code, exc.retry_after, exc.exchange
            steps = exc.steps
        except Permanent as exc:
            failure = (False, exc.reason)
            status_code, exchange, steps = exc.status_code, exc.exchange, exc.steps
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("sink raised an unexpected error", extra=_fields(delivery))
            failure = (True, f"internal error in sink: {type(exc).__name__}")
        else:
            failure = None
            status_code, detail, exchange = result.status_code, result.detail, result.exchange
            steps = result.steps
        duration = time.perf_counter() - began
        engine.metrics.child(engine.metrics.attempt_duration, self.name).observe(duration)
        if missing.count:
            engine.metrics.child(engine.metrics.template_missing_values, self.name).inc(
                missing.count
            )
        return _Sent(failure, status_code, detail, retry_after, exchange, steps, duration)

    def _outcome(self, sent: _Sent, delivery: ClaimedDelivery, started_at: float) -> AttemptOutcome:
        """What a send comes to for `delivery`: delivered, or retried or dead by its
        retry policy and its own attempts so far."""
        engine = self.engine
        number = delivery.attempts + 1
        failure, status_code, detail = sent.failure, sent.status_code, sent.detail
        retry_after, exchange, steps, duration = (
            sent.retry_after,
            sent.exchange,
            sent.steps,
            sent.duration,
        )
        if failure is None:
            record = AttemptRecord(
                number,
                started_at,
                duration,
                "delivered",
                status_code,
                None,
                detail,
                exchange,
                steps,
            )
            return AttemptOutcome(record, None, None)
        retryable, reason = failure
        decision = decide_after_failure(
            engine.runtime.config.retry_policy(self.name),
            retryable=retryable,
            reason=reason,
            attempts_made=delivery.retry_attempts + 1,
            accepted_at=delivery.retry_started_at,
            now=engine.clock(),
            retry_after=retry_after,
            rng=engine.rng,
        )
        outcome: Literal["retry", "dead"] = "retry" if decision.action == "retry" else "dead"
        record = AttemptRecord(
            number,
            started_at,
            duration,
            outcome,
            status_code,
            decision.reason,
            detail,
            exchange,
            steps,
        )
        return AttemptOutcome(record, decision.next_attempt_at, retry_after if retryable else None)

    def _account(
        self,
        outcome: AttemptOutcome,
        delivery: ClaimedDelivery,
        recorded: bool,
        *,
        sink_failed: bool = True,
    ) -> None:
        """Count the outcome (metrics, log, the sink's breaker). `sink_failed` False: a
        failure was the router's (its parse workers died), which says nothing about the
        destination and leaves the breaker alone."""
        engine, record = self.engine, outcome.record
        now = engine.clock()
        if record.outcome == "delivered":
            self.breaker.on_success()
        elif record.outcome == "retry" and sink_failed:
            if outcome.retry_after is not None:
                # The destination asked the whole sink to wait; a pause never exceeds the
                # breaker's longest (the delivery itself still honours Retry-After in full).
                hold = min(outcome.retry_after, self.breaker.settings.max_pause)
                self.breaker.hold_until(now + hold)
            elif self.breaker.on_retryable_failure(now):
                log.warning(
                    "sink paused after %d failures in a row, until %.0f",
                    self.breaker.consecutive_failures,
                    self.breaker.paused_until or now,
                    extra={"sink": self.name},
                )
        if not recorded:
            log.warning("lease lost before the attempt was recorded", extra=_fields(delivery))
            return
        metric = {"delivered": "delivered", "retry": "retried", "dead": "dead"}[record.outcome]
        engine.metrics.child(engine.metrics.deliveries, self.name, metric).inc()
        level = logging.DEBUG if record.outcome == "delivered" else logging.WARNING
        log.log(
            level,
            "delivery %s (attempt %d)%s",
            record.outcome,
            record.number,
            f": {record.error}" if record.error else "",
            extra={
                **_fields(delivery),
                "outcome": record.outcome,
                "status_code": record.status_code,
                "duration_ms": round(record.duration * 1000, 1),
            },
        )


FIRST_FAILURE_BACKOFF = 0.5
# A delivery whose parse workers died building its message is tried again this many
# times without spending an attempt; after that each loss spends one (see
# `SinkLane._after_worker_loss`).
WORKER_LOSSES_DEFERRED = 2
MAX_WORKER_LOSSES_KEPT = 10_000


def failure_backoff(failures: int, longest: float) -> float:
    """Seconds a lane waits after its `failures`-th failure in a row: 0.5 s, doubling,
    at most `longest`."""
    return min(FIRST_FAILURE_BACKOFF * 2 ** min(failures - 1, 16), longest)


def _share(rate: Rate | None, workers: int) -> Rate | None:
    """This engine's part of a sink's rate limit when `workers` engines share the store."""
    if rate is None or workers <= 1:
        return rate
    return Rate(rate.count, rate.per_seconds * workers)


def _fields(delivery: ClaimedDelivery) -> dict[str, str]:
    return {
        "event_id": delivery.event_id,
        "delivery_id": delivery.id,
        "sink": delivery.sink,
        "rule": delivery.rule,
    }
