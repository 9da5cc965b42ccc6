"""Large bodies are decoded, validated and routed in worker processes (real ones, started
from a fork server), so the router's event loop never runs orjson or pydantic-core on
them; small ones stay on the loop. The workers give the same answers as the router's own
`prepare`, follow reloads of rules.yaml, and a worker that dies does not lose the call."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

import router.engine.intake
from router.config.runtime import Runtime
from router.config.schema import parse_config
from router.core.metrics import Metrics
from router.engine.health import StoreHealth
from router.engine.intake import IngestLimits, Intake
from router.engine.parse_workers import ParseTask, ParseWorkers, RulesSource, prepare_in_worker
from router.engine.prepare import MutingMoment, Prepared, Rejection, prepare
from router.operators.silences import to_silence
from router.store import SilenceRecord, open_store
from router.web.webhook import outcome_answer
from sinks.base import SinkResources
from tests.conftest import fresh_event
from tests.service import API_KEY, parts, running_service

RULES = """
version: 1
sinks:
  audit: {type: log}
rules:
  - name: failed
    when: {status: FAILED}
    to: [audit]
"""
HEADERS = {"x-api-key": API_KEY, "Content-Type": "application/json"}
INLINE = IngestLimits.inline_parse_bytes


def large_event(**changes: object) -> dict:
    turns = [{"speaker": "agent", "text": "x" * 90}] * 5000
    return fresh_event(**{"transcript": turns, **changes})


async def test_a_large_body_is_parsed_in_a_worker_process_and_a_small_one_on_the_loop(
    tmp_path, write_rules, monkeypatch
):
    in_router: list[int] = []  # sizes of the bodies this process's `prepare` saw
    real_prepare = router.engine.intake.prepare

    def recording_prepare(body, *args, **kwargs):
        in_router.append(len(body))
        return real_prepare(body, *args, **kwargs)

    monkeypatch.setattr(router.engine.intake, "prepare", recording_prepare)
    workers_used: list[tuple[int | None, frozenset[int]]] = []
    real_worker_prepare = ParseWorkers.prepare

    async def recording_worker_prepare(self, task):
        outcome = await real_worker_prepare(self, task)
        workers_used.append((self.last_pid, self.pids))
        return outcome

    monkeypatch.setattr(ParseWorkers, "prepare", recording_worker_prepare)
    large = orjson.dumps(large_event(status="FAILED"))
    small = orjson.dumps(fresh_event(status="FAILED"))
    assert len(large) > INLINE >= len(small)
    async with running_service(write_rules(RULES), tmp_path / "r.db") as client:
        for body in (large, small):
            answer = await client.post("/webhooks/revring", data=body, headers=HEADERS)
            assert answer.status == 200
            assert (await answer.json())["deliveries"] == 1
    assert in_router == [len(small)]
    [(pid, pids)] = workers_used
    assert pid != os.getpid() and pid in pids


async def test_answers_for_bad_large_bodies_are_those_for_small_ones(tmp_path, write_rules):
    """Each bad body is posted twice: padded past the inline limit with spaces (parsed
    by a worker) and as is (parsed on the loop); the answers are identical."""
    valid = fresh_event(status="FAILED")
    bad_bodies = [
        b'{"id": "abc", "status": ',
        b"[1, 2, 3]",
        b'{"id": "x"} trailing',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
        orjson.dumps({**valid, "transcript": "not a list"}),
        orjson.dumps({**valid, "id": 12, "status": None}),
        orjson.dumps({k: v for k, v in valid.items() if k != "id"}),
        json.dumps({**valid, "durationSeconds": float("nan")}).encode(),
    ]
    async with running_service(write_rules(RULES), tmp_path / "r.db") as client:
        for bad in bad_bodies:
            answers = []
            for body in (bad, b" " * INLINE + bad):
                answer = await client.post("/webhooks/revring", data=body, headers=HEADERS)
                answers.append((answer.status, await answer.text()))
            small, large = answers
            assert small[0] in (400, 422)
            if small[0] == 400:  # orjson names the position: past the padding in `large`
                assert large[0] == 400 and orjson.loads(large[1])["error"].startswith(
                    "malformed JSON: "
                )
            else:
                assert large == small


RULES_WITH_MUTING = """\
version: 1
time_intervals:
  night:
    - times: [{start_time: '20:00', end_time: '24:00'}]
sinks:
  slack: {type: log}
  crm: {type: log}
  pager: {type: log}
rules:
  - name: quiet-at-night
    when: {status: "${WANTED_STATUS}"}
    to: [slack, crm]
    muted_during: [night]
  - name: grouped-crm
    when: {status: FAILED, durationSeconds: {gt: 10}}
    to: [crm, pager]
    group: {by: [status, agentId], window: 1m}
"""
NIGHT = datetime(2026, 12, 15, 21, 0, tzinfo=UTC)
DAY = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)


def silence_record(sinks: tuple[str, ...] | None) -> SilenceRecord:
    starts, ends = DAY.timestamp() - 60, NIGHT.timestamp() + 3600
    when = json.dumps({"status": "FAILED"})
    return SilenceRecord("s1", when, sinks, starts, ends, "test", starts)


async def test_a_worker_prepares_what_the_router_would_mutes_and_digests_included(workers):
    config = parse_config(RULES_WITH_MUTING, "rules.yaml", {"WANTED_STATUS": "FAILED"})
    assert config.variables == {"WANTED_STATUS": "FAILED"}
    source = RulesSource.of(config)
    bodies = [
        orjson.dumps(large_event(status="FAILED", durationSeconds=30)),
        orjson.dumps(large_event(status="FAILED", durationSeconds=5)),
        orjson.dumps(large_event(status="COMPLETED")),
        b'{"id": 1' + b" " * INLINE,
        orjson.dumps(large_event(status="FAILED", transcript=[{"speaker": 3}] * 3000)),
        # An integer beyond 64 bits, exact in the group key as on the loop.
        b'{"agentId": 123456789012345678901234567890, '
        + orjson.dumps(large_event(status="FAILED", durationSeconds=30))[1:],
    ]
    for instant in (DAY, NIGHT):
        for records in ((), (silence_record(("pager",)),), (silence_record(None),)):
            silences = [to_silence(record) for record in records]
            muting = MutingMoment(config.time_intervals, silences, instant)
            for body in bodies:
                here = prepare(body, config.rules, muting)
                there = await workers.prepare(ParseTask(body, source, records, instant))
                assert there == here
                assert workers.last_pid in workers.pids
    assert os.getpid() not in workers.pids


async def test_a_killed_idle_worker_does_not_lose_the_next_call(workers):
    config = parse_config(RULES, "rules.yaml", {})
    body = orjson.dumps(large_event(status="FAILED"))
    first_pids = workers.pids
    os.kill(min(first_pids), signal.SIGKILL)
    outcome = await workers.prepare(ParseTask(body, RulesSource.of(config), (), DAY))
    assert isinstance(outcome, Prepared)
    assert [target[0] for target in outcome.targets] == ["audit"]
    assert workers.restarts == 1
    assert workers.last_pid in workers.pids and not workers.pids & first_pids


def die_in_the_first_worker(marker: Path, task: ParseTask) -> tuple[int, Prepared | Rejection]:
    """Kills the worker it runs in the first time (as the kernel's OOM killer would)."""
    if not marker.exists():
        marker.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare_in_worker(task)


def die_always(task: ParseTask) -> tuple[int, Prepared | Rejection]:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


async def test_a_worker_killed_while_parsing_does_not_lose_the_call(tmp_path):
    config = parse_config(RULES, "rules.yaml", {})
    body = orjson.dumps(large_event(status="FAILED"))
    workers = ParseWorkers(1, run=functools.partial(die_in_the_first_worker, tmp_path / "m"))
    try:
        outcome = await workers.prepare(ParseTask(body, RulesSource.of(config), (), DAY))
    finally:
        workers.close()
    assert (tmp_path / "m").read_text() == "died"
    assert isinstance(outcome, Prepared) and outcome.event_id
    assert workers.restarts == 1


async def test_a_body_whose_worker_dies_twice_is_answered_503_not_500(tmp_path, write_rules):
    runtime = Runtime(write_rules(RULES), Metrics(), SinkResources())
    runtime.load()
    store = open_store("memory://")
    await store.open()
    workers = ParseWorkers(1, run=die_always)
    intake = Intake(runtime, store, Metrics(), health=StoreHealth(), workers=workers)
    try:
        outcome = await intake.ingest_body(orjson.dumps(large_event(status="FAILED")))
        small = await intake.ingest_body(orjson.dumps(fresh_event(status="FAILED")))
    finally:
        intake.close()
        workers.close()
        await store.close()
    assert outcome.rejection is not None
    assert (outcome.rejection.status, outcome.rejection.message) == (
        503,
        "the body could not be parsed, try again",
    )
    assert outcome_answer(outcome).status == 503
    assert small.status == "accepted"  # the loop and the store are unharmed


async def test_a_reload_reaches_the_workers(tmp_path, write_rules, monkeypatch):
    monkeypatch.setenv("WANTED_STATUS", "FAILED")
    rules = write_rules(RULES.replace("status: FAILED", 'status: "${WANTED_STATUS}"'))
    async with running_service(rules, tmp_path / "r.db") as client:
        _, _, runtime, _ = parts(client)

        async def deliveries(**changes: object) -> int:
            body = orjson.dumps(large_event(**changes))
            answer = await client.post("/webhooks/revring", data=body, headers=HEADERS)
            assert answer.status == 200
            return (await answer.json())["deliveries"]

        assert await deliveries(status="FAILED") == 1
        assert await deliveries(status="COMPLETED") == 0
        rules.write_text(RULES.replace("status: FAILED", "status: COMPLETED"))
        assert await runtime.reload("test") is None
        assert await deliveries(status="FAILED") == 0
        assert await deliveries(status="COMPLETED") == 1


async def test_with_no_parse_workers_a_large_body_is_parsed_in_a_thread_of_the_router(
    write_rules, monkeypatch
):
    threads: list[str] = []
    real_prepare = router.engine.intake.prepare

    def recording_prepare(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(router.engine.intake, "prepare", recording_prepare)
    runtime = Runtime(write_rules(RULES), Metrics(), SinkResources())
    runtime.load()
    store = open_store("memory://")
    await store.open()
    intake = Intake(runtime, store, Metrics(), workers=None)
    try:
        outcome = await intake.ingest_body(orjson.dumps(large_event(status="FAILED")))
    finally:
        intake.close()
        await store.close()
    assert (outcome.status, outcome.deliveries) == ("accepted", 1)
    assert threads and threads[0].startswith("router-parse")
