"""The pagerduty sink against a local fake of the Events API v2 (a real socket), and end to
end through the running service: every answer PagerDuty gives, the dedup_key that keeps
a retried or replayed delivery on one incident, masking, digests, and the routing key
kept out of every reason, log and admin answer."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from router.config.schema import parse_config
from router.core.units import Rate
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryError, DeliveryRequest, Digest, Permanent, Retryable, SinkResources
from sinks.pagerduty import PagerDutySink, PagerDutySinkConfig
from sinks.registry import build_sink
from tests.conftest import fresh_event, sample
from tests.fakes import FakePagerDuty, pagerduty_invalid
from tests.integration.test_delivery import engine
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

ROUTING_KEY = "R0UTINGKEYsecret0123456789abcdef"


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = await FakePagerDuty().start("/v2/enqueue")
    yield fake
    await fake.close()


@pytest.fixture
async def resources() -> AsyncIterator[SinkResources]:
    async with aiohttp.ClientSession() as session:
        yield SinkResources(http=session)


def sink(url: str, resources: SinkResources, **options: Any) -> PagerDutySink:
    config = PagerDutySinkConfig.model_validate(
        {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": url, **options}
    )
    built = build_sink("oncall", config, resources)
    assert isinstance(built, PagerDutySink)
    built.blip_retry_waits = (0.01,)
    return built


def delivery(name: str = "failed-outbound", **changes: Any) -> DeliveryRequest:
    event = {**sample(name), **changes}
    return DeliveryRequest("del-1", event["id"], "oncall", "failed-calls", event)


def assert_no_secret(error: DeliveryError) -> None:
    for shown in (error.reason, str(error), repr(error)):
        assert ROUTING_KEY not in shown


async def test_a_call_triggers_an_incident_with_the_documented_event(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    result = await build_and_transmit(sink(pagerduty.url, resources), delivery())

    assert result.status_code == 202
    assert result.detail == "dedup_key 9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901"
    [request] = pagerduty.requests
    assert request["path"] == "/v2/enqueue"
    assert request["headers"]["Content-Type"] == "application/json"
    event = request["body"]
    assert set(event) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901"
    payload = event["payload"]
    assert payload["summary"] == (
        "FAILED outbound call to +4420•••8750: SIP 503 Service Unavailable from carrier"
    )
    assert payload["source"] == "Ava"
    assert payload["severity"] == "error"
    assert payload["timestamp"] == "2026-11-20T15:02:11Z"  # no endedAt: initiatedAt
    assert payload["component"] == "trunk-main"
    assert payload["class"] == "FAILED"
    details = payload["custom_details"]
    assert details["to"] == "+4420•••8750" and details["from"] == "+1415•••0199"
    assert details["summary"] == payload["summary"]
    assert details["error"] == "SIP 503 Service Unavailable from carrier"
    assert "+442071838750" not in json.dumps(event)


async def test_a_completed_call_links_its_recording_and_uses_ended_at(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    await build_and_transmit(
        sink(pagerduty.url, resources, severity="info"), delivery("completed-inbound")
    )
    [event] = pagerduty.bodies()
    assert event["links"] == [
        {"href": "https://recordings.example.com/3c90c3cc.mp3", "text": "Call recording"}
    ]
    assert event["payload"]["timestamp"] == "2026-11-20T15:04:01Z"
    assert event["payload"]["severity"] == "info"
    assert event["payload"]["summary"] == "COMPLETED inbound call from +1415•••0123: USER_ENDED"
    assert event["payload"]["custom_details"]["call_summary"] == (
        "Caller rescheduled a cleaning to Friday 10am."
    )


async def test_templates_set_severity_summary_and_dedup_key(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    options = {
        "severity": "{{ 'critical' if variables.customer_tier == 'gold' else 'warning' }}",
        "summary": "{{ status }} call for {{ toNumber }} (tier {{ variables.customer_tier }})",
        "dedup_key": "revring-{{ id }}",
    }
    await build_and_transmit(
        sink(pagerduty.url, resources, **options), delivery("completed-inbound")
    )
    await build_and_transmit(sink(pagerduty.url, resources, **options), delivery())
    gold, silver = pagerduty.bodies()
    assert gold["payload"]["severity"] == "critical"
    assert silver["payload"]["severity"] == "warning"
    # A summary template's numbers are masked too.
    assert silver["payload"]["summary"] == "FAILED call for +4420•••8750 (tier silver)"
    assert silver["dedup_key"] == "revring-9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901"


async def test_the_summary_is_cut_to_1024_characters(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    await build_and_transmit(sink(pagerduty.url, resources), delivery(errorMessage="x" * 5000))
    [event] = pagerduty.bodies()
    assert len(event["payload"]["summary"]) == 1024
    assert event["payload"]["summary"].endswith("…")


async def test_a_400_is_permanent_with_pagerdutys_errors_and_no_routing_key(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    pagerduty.answer = lambda n: pagerduty_invalid(
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        f"'{ROUTING_KEY}' is not a known integration",
    )
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(sink(pagerduty.url, resources), delivery())
    assert caught.value.status_code == 400
    assert caught.value.reason == (
        "pagerduty: HTTP 400 invalid event: Length of 'routing_key' is incorrect "
        "(should be 32 characters); '***' is not a known integration"
    )
    assert_no_secret(caught.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_throttling_and_server_errors_are_retryable_with_backoff(
    pagerduty: FakePagerDuty, resources: SinkResources, status: int
) -> None:
    pagerduty.answer = lambda n: (status, {"status": "throttled"} if status == 429 else "", {})
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink(pagerduty.url, resources), delivery())
    assert caught.value.reason.startswith(f"pagerduty: HTTP {status}")
    assert caught.value.retry_after is None  # PagerDuty sends none: the engine backs off
    assert caught.value.status_code == status
    assert len(pagerduty.requests) == 1


@pytest.mark.parametrize("status", [403, 404, 413])
async def test_other_client_errors_are_permanent(
    pagerduty: FakePagerDuty, resources: SinkResources, status: int
) -> None:
    pagerduty.answer = lambda n: (status, f"refused {ROUTING_KEY}", {})
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(sink(pagerduty.url, resources), delivery())
    assert caught.value.reason.startswith(f"pagerduty: HTTP {status}")
    assert_no_secret(caught.value)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_connection_refused_is_retryable(resources: SinkResources) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v2/enqueue"
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink(url, resources), delivery())
    assert caught.value.reason == "pagerduty: connection refused by host 127.0.0.1"


async def test_a_digest_opens_one_incident_with_the_count(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    calls = [fresh_event(sipTrunkId="sip-7") for _ in range(37)]
    digest = Digest(
        {"sipTrunkId": "sip-7"}, "2026-11-20T15:02:00+00:00", "2026-11-20T15:04:00+00:00", calls
    )
    request = DeliveryRequest(
        "del-9", calls[0]["id"], "oncall", "trunk-outage", calls[0], digest=digest
    )
    await build_and_transmit(sink(pagerduty.url, resources), request)
    [event] = pagerduty.bodies()
    assert event["payload"]["summary"] == "37 FAILED calls on trunk sip-7 in 2 min"
    assert event["dedup_key"] == "digest:trunk-outage:sipTrunkId=sip-7"
    details = event["payload"]["custom_details"]
    assert details["count"] == 37
    assert details["by_status"] == {"FAILED": 37}
    assert len(details["first_calls"]) == 11 and details["first_calls"][-1] == "…and 27 more"
    assert "+442071838750" not in json.dumps(event)


def test_a_preview_masks_the_routing_key_and_the_config_repr_hides_it() -> None:
    config = PagerDutySinkConfig(type="pagerduty", routing_key=ROUTING_KEY)
    rendered = PagerDutySink("oncall", config, SinkResources()).preview(delivery())
    assert rendered["routing_key"] == "***"
    assert ROUTING_KEY not in json.dumps(rendered)
    assert ROUTING_KEY not in repr(config) and ROUTING_KEY not in str(config.model_dump())


def test_an_empty_routing_key_leaves_the_sink_unconfigured() -> None:
    # The engine sends nothing to an unconfigured sink (tests/unit/test_fast_path.py).
    config = PagerDutySinkConfig(type="pagerduty", routing_key="")
    assert config.missing_settings() == ["routing_key"]


RULES = """
version: 1
defaults:
  retry: {max_attempts: 5, initial_delay: 100ms, max_delay: 200ms, max_age: 1h}
sinks:
  oncall:
    type: pagerduty
    routing_key: "%(key)s"
    url: "%(url)s"
    severity: critical
rules:
  - name: failed-calls
    when: {status: FAILED}
    to: [oncall]
"""


async def test_a_retried_and_a_replayed_delivery_keep_one_dedup_key(
    tmp_path, write_rules, pagerduty: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    # 503 (retried), then 400 (dead), then, after a replay, 202.
    script = {1: (503, "", {}), 2: pagerduty_invalid(f"unknown key {ROUTING_KEY}")}
    pagerduty.answer = lambda n: script.get(n, (202, None, {}))
    rules = write_rules(RULES % {"key": ROUTING_KEY, "url": pagerduty.url})
    event = fresh_event()
    caplog.set_level(logging.DEBUG)
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, event)
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("dead"))
        [dead] = await store.list_deliveries("dead")
        assert dead.last_error == "pagerduty: HTTP 400 invalid event: unknown key ***"
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        listed = await client.get("/admin/deliveries?status=dead", headers=auth)
        admin_answer = await listed.text()
        replayed = await client.post(f"/admin/deliveries/{dead.id}/replay", headers=auth)
        assert replayed.status == 200
        await wait_for(lambda: store.list_deliveries("delivered"))
        attempts = await store.list_attempts(dead.id)
    assert [attempt.outcome for attempt in attempts] == ["retry", "dead", "delivered"]
    assert [body["dedup_key"] for body in pagerduty.bodies()] == [event["id"]] * 3
    assert [body["payload"]["severity"] for body in pagerduty.bodies()] == ["critical"] * 3
    assert ROUTING_KEY not in admin_answer
    assert "unknown key ***" in caplog.text  # the failure was logged, its reason scrubbed
    assert ROUTING_KEY not in caplog.text
    assert all(ROUTING_KEY not in (attempt.error or "") for attempt in attempts)


def test_every_sink_option_applies_and_the_rate_limit_defaults_to_pagerdutys() -> None:
    text = """
version: 1
sinks:
  paced:
    type: pagerduty
    routing_key: KEY
    rate_limit: 30/m
    concurrency: 1
    retry: {max_attempts: 3, initial_delay: 2s}
  default:
    type: pagerduty
    routing_key: KEY
rules: [{name: all, to: [paced, default]}]
"""
    config = parse_config(text, "rules.yaml", environ={})
    paced, default = config.sinks["paced"], config.sinks["default"]
    assert paced.effective_rate_limit() == Rate(30, 60)
    assert paced.effective_concurrency() == 1
    assert config.retry_policy("paced").max_attempts == 3
    assert config.retry_policy("paced").initial_delay == 2.0
    assert default.effective_rate_limit() == Rate(120, 60)


GROUPED_RULES = """
version: 1
defaults:
  retry: {max_attempts: 5, initial_delay: 100ms, max_delay: 200ms, max_age: 1h}
sinks:
  oncall:
    type: pagerduty
    routing_key: "%(key)s"
    url: "%(url)s"
rules:
  - name: trunk-outage
    when: {status: FAILED}
    to: [oncall]
    group: {by: [sipTrunkId], window: 1s}
"""


async def test_a_retried_digest_keeps_its_rule_and_group_key_as_dedup_key(
    tmp_path, write_rules, pagerduty: FakePagerDuty
) -> None:
    pagerduty.answer = lambda n: (502, "", {}) if n == 1 else (202, None, {})
    rules = write_rules(GROUPED_RULES % {"key": ROUTING_KEY, "url": pagerduty.url})
    events = [fresh_event(sipTrunkId="sip-7") for _ in range(3)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            await post_event(client, event)
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("delivered"))
    first, second = pagerduty.bodies()
    assert first == second
    assert first["dedup_key"] == "digest:trunk-outage:sipTrunkId=sip-7"
    assert first["payload"]["summary"].startswith("3 FAILED calls on trunk sip-7")
    assert first["payload"]["custom_details"]["call_ids"] == [event["id"] for event in events]


@pytest.mark.parametrize("status", [202, 400])
async def test_an_answer_nested_too_deep_to_read_is_taken_as_no_details(
    pagerduty: FakePagerDuty, resources: SinkResources, status: int
) -> None:
    deep = "[" * 5000 + "]" * 5000
    pagerduty.answer = lambda n: (status, deep, {"Content-Type": "application/json"})
    if status == 202:
        result = await build_and_transmit(sink(pagerduty.url, resources), delivery())
        assert result.status_code == 202
    else:
        with pytest.raises(Permanent):
            await build_and_transmit(sink(pagerduty.url, resources), delivery())


async def test_the_attempts_exchange_keeps_the_event_and_the_answer_without_the_routing_key(
    pagerduty: FakePagerDuty, resources: SinkResources
) -> None:
    pagerduty.answer = lambda n: pagerduty_invalid(f"'{ROUTING_KEY}' is not a known integration")
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(sink(pagerduty.url, resources), delivery())
    exchange = caught.value.exchange
    assert exchange is not None and exchange.response is not None
    assert exchange.request.target.endswith("/v2/enqueue")
    assert json.loads(exchange.request.body)["routing_key"] == "***"
    assert exchange.response.status == 400
    assert "'***' is not a known integration" in exchange.response.body
    assert ROUTING_KEY not in repr(exchange)
