"""Deliveries of large calls are decoded, checked against the silences and built by the
sink in a parse worker process (`router.engine.render_apart`, real processes); the router only
sends the message. What the worker builds is what the router would have built, failures
included, and the message that arrives is the one the router would have sent."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import orjson
import pytest

import router.engine.requests
from router.config.runtime import Runtime
from router.config.schema import parse_config
from router.core.metrics import Metrics
from router.core.missing_values import tallied
from router.engine.parse_workers import ParseWorkers, RulesSource
from router.engine.render_apart import (
    WORKER_LOST,
    BuildTask,
    Built,
    Failure,
    RenderApart,
    build_in_worker,
)
from router.engine.requests import delivery_request
from router.operators.controls import KnownSilence, silence_before_send
from router.operators.silences import to_silence
from router.store import ClaimedDelivery, SilenceRecord
from sinks.base import Permanent, Retryable, SinkResources
from sinks.registry import build_sink
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

INLINE = 64 * 1024


def large_event(**changes: Any) -> dict[str, Any]:
    turns = [{"speaker": "agent", "text": "x" * 90}] * 5000
    return fresh_event(**{"transcript": turns, **changes})


async def test_a_large_call_is_built_in_a_worker_and_arrives_as_the_router_would_send_it(
    tmp_path, write_rules, receiver, monkeypatch
):
    decoded_here: list[int] = []
    real_decode = router.engine.requests.decode_json

    def recording_decode(body: bytes) -> Any:
        decoded_here.append(len(body))
        return real_decode(body)

    monkeypatch.setattr(router.engine.requests, "decode_json", recording_decode)
    rules = write_rules(f"""
version: 1
sinks:
  crm:
    type: http
    url: "{receiver.url("/calls")}"
    body: '{{"id": {{{{ id | tojson }}}}, "turns": {{{{ (transcript or []) | length }}}}}}'
  raw:
    type: http
    url: "{receiver.url("/raw")}"
rules:
  - name: all
    to: [crm, raw]
""")
    large, small = large_event(), fresh_event()
    async with running_service(rules, tmp_path / "r.db") as client:
        for event in (large, small):
            assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(receiver.received) >= 4)
        store, engine, _, _ = parts(client)
        apart = engine.render_apart
        assert apart is not None and apart.last_pid in apart.workers.pids
        assert apart.last_pid != os.getpid()
        # The attempt (a success) keeps the size of the large body it sent and that it was
        # left out, not its start (`sinks.exchange`: a success masks no body).
        await wait_for(lambda: _count(store.list_deliveries("delivered"), 4))
        [raw] = await store.list_deliveries(sink="raw", call=large["id"])
        [attempt] = await store.list_attempts(raw.id)
        assert attempt.exchange is not None
        sent = attempt.exchange.request
        assert sent.truncated and sent.body == ""
        assert sent.size > INLINE
    by_path: dict[str, list[dict[str, Any]]] = {}
    for received in receiver.received:
        by_path.setdefault(received.path, []).append(json.loads(received.body))
    assert sorted(by_path["/calls"], key=lambda d: d["turns"]) == [
        {"id": small["id"], "turns": len(small.get("transcript") or [])},
        {"id": large["id"], "turns": 5000},
    ]
    assert large in by_path["/raw"] and small in by_path["/raw"]  # verbatim, both ways
    # The large call is never decoded here (the small one may not be either: sent at
    # once, it reuses the body the webhook decoded).
    assert all(size < INLINE for size in decoded_here)


async def _count(found: Any, wanted: int) -> bool:
    return len(await found) >= wanted


SINKS = """
  hook:
    type: http
    url: https://example.com/calls
    headers: {X-Rule: "{{ rule }}", Authorization: "Bearer ${TOKEN}"}
    body: '{"id": {{ id | tojson }}, "n": {{ transcript | length }}, "k": {{ count | default(1) }}}'
  broken:
    type: http
    url: https://example.com/calls
    body: '{{ id + 1 }}'
  lacking:
    type: http
    url: https://example.com/calls
    body: '{"tier": {{ variables.customer_tier }}, "name": "{{ no_such_field.deeper }}"}'
  chat:
    type: slack
    webhook_url: https://hooks.slack.com/services/T/B/X
  card:
    type: teams
    webhook_url: https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=S
  pager:
    type: pagerduty
    routing_key: KEY
    severity: critical
  unset:
    type: http
    url: "${UNSET_URL:-}"
"""
RULES = f"""
version: 1
sinks:{SINKS}
rules:
  - name: all
    to: [hook, broken, lacking, chat, card, pager, unset]
"""
DETERMINISTIC = ["hook", "broken", "lacking", "chat", "card", "pager", "unset"]


def claimed(sink: str, payload: bytes, **changes: Any) -> ClaimedDelivery:
    now = time.time()
    fields: dict[str, Any] = {
        "id": "d" * 32,
        "event_id": "e1",
        "sink": sink,
        "rule": "all",
        "payload": payload,
        "attempts": 2,
        "retry_attempts": 2,
        "retry_started_at": now - 10,
        "created_at": now - 10,
        **changes,
    }
    return ClaimedDelivery(**fields)


def built_here(config: Any, delivery: ClaimedDelivery, payloads: Any, records: Any) -> Built:
    """What the router builds for `delivery` in its own process, as a `Built`."""
    sink = build_sink(delivery.sink, config.sinks[delivery.sink], SinkResources())
    request = delivery_request(delivery, payloads)
    count = None if request.digest is None else request.digest.count
    known = [KnownSilence(record, to_silence(record)) for record in records]
    calls = request.digest.calls if request.digest is not None else [request.event]
    silence = silence_before_send(known, calls, delivery.sink, time.time(), None)
    if silence is not None:
        return Built(silence.reason, None, None, count)
    with tallied() as missing:
        try:
            message = sink.build(request)
        except Exception as exc:
            return Built(None, None, Failure.of(exc), count, missing.count)
    return Built(None, message, None, count, missing.count)


def silence(sinks: tuple[str, ...] | None, status: str) -> SilenceRecord:
    now = time.time()
    when = json.dumps({"status": status})
    return SilenceRecord("s1", when, sinks, now - 60, now + 3600, "test", now - 60)


async def test_a_worker_builds_what_the_router_would_for_every_sink_type(workers):
    config = parse_config(RULES, "rules.yaml", {"TOKEN": "t0k"})
    source = RulesSource.of(config)
    single = orjson.dumps(large_event(status="FAILED"))
    digest_calls = [orjson.dumps(large_event(status="FAILED")) for _ in range(3)]
    digest = {
        "kind": "digest",
        "group_key": '{"status":"FAILED"}',
        "window_start": time.time() - 60,
        "window_end": time.time(),
    }
    cases = [(single, None, {}), (digest_calls[0], digest_calls, digest)]
    silences = [(), (silence(("chat", "pager"), "FAILED"),), (silence(None, "COMPLETED"),)]
    for payload, payloads, changes in cases:
        for records in silences:
            for name in DETERMINISTIC:
                delivery = claimed(name, payload, **changes)
                task = BuildTask(source, delivery, payloads, records, time.time())
                there = await workers.call(build_in_worker, task)
                assert there == built_here(config, delivery, payloads, records), name
                assert workers.last_pid in workers.pids
    broken = await workers.call(
        build_in_worker, BuildTask(source, claimed("broken", single), None, (), time.time())
    )
    assert broken.failure is not None and isinstance(broken.failure.error(), Permanent)
    without_variables = orjson.dumps(large_event(variables=None))
    lacking = await workers.call(
        build_in_worker,
        BuildTask(source, claimed("lacking", without_variables), None, (), time.time()),
    )
    assert lacking.failure is None and lacking.missing_values == 2, "counted where it rendered"


async def test_a_large_delivery_whose_workers_are_gone_is_a_retryable_attempt(
    tmp_path, write_rules
):
    runtime = Runtime(write_rules(RULES.replace("${TOKEN}", "t")), Metrics(), SinkResources())
    runtime.load()
    workers = ParseWorkers(1)
    workers.close()  # no worker can start: each attempt at one fails
    apart = RenderApart(workers, runtime, INLINE)
    sink = runtime.sinks["hook"]
    delivery = claimed("hook", orjson.dumps(large_event()))
    assert apart.takes(sink, delivery, None)
    ready = await apart.ready(sink, delivery, None, None, time.time())
    with pytest.raises(Retryable, match=WORKER_LOST):
        await ready.send()
    small = claimed("hook", orjson.dumps(fresh_event()))
    assert not apart.takes(sink, small, None)
    stand_in = build_sink("hook", runtime.config.sinks["hook"], SinkResources())
    assert not apart.takes(stand_in, delivery, None)  # not the running sink: built here
