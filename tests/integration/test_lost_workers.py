"""A parse worker that dies while it builds a large call's message (real worker
processes, killed with SIGKILL as the kernel's OOM killer would) is the router's failure,
not the sink's: the delivery is tried again without spending an attempt and without
counting toward the sink's breaker; only a message whose workers keep dying spends
attempts, so its retry policy still bounds it."""

from __future__ import annotations

import functools
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import router.engine.render_apart
from router.core.pacing import PauseSettings
from router.engine.delivery import WORKER_LOSSES_DEFERRED, EngineSettings
from router.engine.parse_workers import ParseTask, ParseWorkers, WorkerLost, prepare_in_worker
from router.engine.prepare import Prepared
from router.engine.records import new_delivery_id
from router.engine.render_apart import WORKER_LOST, BuildTask, Built, build_in_worker
from router.store import IngestRecord, NewDelivery
from tests.conftest import fresh_event
from tests.service import parts, running_service, wait_for


def large_event() -> dict[str, Any]:
    return fresh_event(transcript=[{"speaker": "agent", "text": "x" * 90}] * 1000)


def die_in_the_first_builds(deaths: Path, count: int, task: BuildTask) -> tuple[int, Built]:
    """Kills the worker it runs in for the first `count` builds, then builds."""
    died = len(deaths.read_text()) if deaths.exists() else 0
    if died < count:
        with deaths.open("a") as written:
            written.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return build_in_worker(task)


async def stored(store: Any, engine: Any, call: dict[str, Any]) -> None:
    """`call` stored with a delivery to crm, as the webhook would (not through it: a large
    body is parsed in the same pool, where the deaths would break its parse too)."""
    delivery = NewDelivery(new_delivery_id(), "crm", "all")
    record = IngestRecord(call["id"], orjson.dumps(call), time.time(), [delivery], "FAILED")
    assert (await store.ingest(record)).status == "accepted"
    engine.new_deliveries(None)


def rules(url: str, max_attempts: int = 5) -> str:
    return f"""
version: 1
sinks:
  crm:
    type: http
    url: "{url}"
    concurrency: 1
    retry: {{max_attempts: {max_attempts}, initial_delay: 100ms, max_delay: 200ms}}
rules:
  - name: all
    to: [crm]
"""


def engine_settings() -> EngineSettings:
    # Two failures in a row would pause the sink for a minute.
    return EngineSettings(
        lease_seconds=10.0,
        idle_poll=0.5,
        shutdown_grace=2.0,
        pause=PauseSettings(failures_to_pause=2, first_pause=60.0),
    )


async def test_deliveries_whose_workers_died_are_retried_without_an_attempt_or_a_pause(
    tmp_path, write_rules, receiver, monkeypatch, caplog
):
    deaths = tmp_path / "deaths"
    # Each delivery's build is tried in a worker and once more in a fresh one: four
    # deaths make both deliveries lose their workers once.
    monkeypatch.setattr(
        router.engine.render_apart,
        "build_in_worker",
        functools.partial(die_in_the_first_builds, deaths, 4),
    )
    calls = [large_event(), large_event()]
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "r.db", engine=engine_settings()) as client:
        store, engine, *_ = parts(client)
        for call in calls:
            await stored(store, engine, call)
        await wait_for(lambda: sorted(receiver.delivered_ids()) == sorted(c["id"] for c in calls))

        async def recorded() -> bool:
            return len(await store.list_deliveries("delivered")) == 2

        await wait_for(recorded)
        views = await store.list_deliveries()
        breaker = engine.lanes["crm"].breaker
        assert (breaker.consecutive_failures, breaker.paused_until) == (0, None)
    assert deaths.read_text() == "xxxx"
    assert sorted((view.status, view.attempts) for view in views) == [("delivered", 1)] * 2
    assert "paused" not in caplog.text
    assert caplog.text.count("without spending an attempt") == 2


async def test_a_message_whose_workers_keep_dying_spends_attempts_and_goes_dead(
    tmp_path, write_rules, receiver, monkeypatch
):
    max_attempts = 2
    deaths = tmp_path / "deaths"
    monkeypatch.setattr(
        router.engine.render_apart,
        "build_in_worker",
        functools.partial(die_in_the_first_builds, deaths, 1000),
    )
    path = write_rules(rules(receiver.url(), max_attempts))
    async with running_service(path, tmp_path / "r.db", engine=engine_settings()) as client:
        store, engine, *_ = parts(client)
        await stored(store, engine, large_event())

        async def dead() -> bool:
            return bool(await store.list_deliveries("dead"))

        await wait_for(dead, limit=60)
        [view] = await store.list_deliveries()
        breaker = engine.lanes["crm"].breaker
        assert (breaker.consecutive_failures, breaker.paused_until) == (0, None)
    assert view.attempts == max_attempts and WORKER_LOST in (view.last_error or "")
    # Two deaths per loss: the first losses are tried again, then each spends an attempt.
    assert len(deaths.read_text()) == 2 * (WORKER_LOSSES_DEFERRED + max_attempts)
    assert receiver.received == []


def die_in_the_first_parses(deaths: Path, count: int, task: ParseTask) -> tuple[int, Any]:
    died = len(deaths.read_text()) if deaths.exists() else 0
    if died < count:
        with deaths.open("a") as written:
            written.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare_in_worker(task)


async def test_after_a_lost_task_the_next_one_gets_both_of_its_tries_in_fresh_workers(
    tmp_path,
):
    """The pool a task's last try died in is replaced before the next task, which must
    not spend its first try on a pool that was broken before it came."""
    deaths = tmp_path / "deaths"
    workers = ParseWorkers(1, run=functools.partial(die_in_the_first_parses, deaths, 3))
    task = ParseTask(orjson.dumps(large_event()), None, (), datetime.now(UTC))
    try:
        with pytest.raises(WorkerLost):
            await workers.prepare(task)
        assert isinstance(await workers.prepare(task), Prepared)
    finally:
        workers.close()
    assert deaths.read_text() == "xxx"
