"""Traces (DESIGN.md section 19) from the real service to a local OTLP/HTTP receiver: a
webhook's span with its parse, route and commit children, each delivery attempt's span
in the same trace, and the `traceparent` the HTTP sink's receiver gets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from router.core import tracing
from router.revring.api import ApiRetries, RevRingApi
from router.revring.verify import VerifySettings
from tests.conftest import fresh_event
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.receivers import Receiver
from tests.revring_fake import FAKE_API_KEY, FakeRevRing
from tests.service import post_event, running_service, wait_for

RULES = """
version: 1
defaults:
  retry: {max_attempts: 5, initial_delay: 100ms, max_delay: 200ms, max_age: 1h}
sinks:
  crm:
    type: http
    url: "%s"
rules:
  - name: all-calls
    to: [crm]
"""
WEBHOOK_SPAN = "POST /webhooks/revring"
ATTEMPT_SPAN = "delivery attempt"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
STATUS_ERROR = 2
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_PROPAGATORS",
)


@pytest.fixture
async def otlp(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OtlpReceiver]:
    """An OTLP receiver, and the service's environment pointing at it (spans exported
    every 50 ms)."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    receiver = await OtlpReceiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    yield receiver
    tracing.stop()
    await receiver.close()


def traceparent_ids(value: str) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C `traceparent`."""
    version, trace_id, parent_id, flags = value.split("-")
    assert (version, len(trace_id), len(parent_id)) == ("00", 32, 16)
    assert int(flags, 16) & 1  # sampled
    return trace_id, parent_id


def children_of(otlp: OtlpReceiver, parent: ReceivedSpan) -> dict[str, ReceivedSpan]:
    return {
        span.name: span
        for span in otlp.spans
        if span.parent_span_id == parent.span_id and span.trace_id == parent.trace_id
    }


async def test_a_webhook_and_its_delivery_are_one_trace_and_the_sink_gets_its_traceparent(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver
) -> None:
    event = fresh_event()
    async with running_service(write_rules(RULES % receiver.url()), tmp_path / "r.db") as client:
        assert tracing.is_on()
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
        await wait_for(lambda: otlp.named(WEBHOOK_SPAN) and otlp.named(ATTEMPT_SPAN))
    [webhook] = otlp.named(WEBHOOK_SPAN)
    assert webhook.parent_span_id == "" and webhook.kind == SPAN_KIND_SERVER
    assert webhook.service_name == "revring-router"
    assert webhook.attributes["router.event_id"] == event["id"]
    assert webhook.attributes["router.ingest_status"] == "accepted"
    assert webhook.attributes["router.rules_matched"] == 1
    assert webhook.attributes["http.response.status_code"] == 200
    await wait_for(lambda: {"parse", "route", "commit"} <= set(children_of(otlp, webhook)))
    children = children_of(otlp, webhook)
    assert children["route"].attributes["router.rules_matched"] == 1

    [attempt] = otlp.named(ATTEMPT_SPAN)
    assert attempt.trace_id == webhook.trace_id
    assert attempt.parent_span_id == webhook.span_id
    assert attempt.kind == SPAN_KIND_CLIENT
    assert attempt.attributes == {
        "router.sink": "crm",
        "router.rule": "all-calls",
        "router.delivery_id": attempt.attributes["router.delivery_id"],
        "router.event_id": event["id"],
        "router.attempt": 1,
        "router.outcome": "delivered",
        "http.response.status_code": 200,
    }
    [sent] = receiver.received
    assert traceparent_ids(sent.headers["traceparent"]) == (webhook.trace_id, attempt.span_id)


async def test_a_retried_delivery_gives_attempt_spans_in_the_calls_trace(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver
) -> None:
    receiver.answer = lambda request, n: 503 if n == 1 else 200
    event = fresh_event()
    async with running_service(write_rules(RULES % receiver.url()), tmp_path / "r.db") as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
        await wait_for(lambda: len(otlp.named(ATTEMPT_SPAN)) == 2 and otlp.named(WEBHOOK_SPAN))
    [webhook] = otlp.named(WEBHOOK_SPAN)
    attempts = sorted(otlp.named(ATTEMPT_SPAN), key=lambda span: span.attributes["router.attempt"])
    assert [(a.attributes["router.attempt"], a.attributes["router.outcome"]) for a in attempts] == [
        (1, "retry"),
        (2, "delivered"),
    ]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 200]
    assert attempts[0].status_code == STATUS_ERROR
    assert {a.trace_id for a in attempts} == {webhook.trace_id}
    assert {a.parent_span_id for a in attempts} == {webhook.span_id}
    assert [traceparent_ids(r.headers["traceparent"]) for r in receiver.received] == [
        (webhook.trace_id, attempts[0].span_id),
        (webhook.trace_id, attempts[1].span_id),
    ]


STEPS_RULES = """
version: 1
sinks:
  crm:
    type: http
    steps:
      - name: find
        url: "%s"
      - name: log
        url: "%s"
rules:
  - name: all-calls
    to: [crm]
"""


async def test_every_step_of_an_http_sink_gets_the_attempts_traceparent(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver
) -> None:
    event = fresh_event()
    rules = write_rules(STEPS_RULES % (receiver.url(), receiver.url()))
    async with running_service(rules, tmp_path / "r.db") as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(receiver.received) == 2)
        await wait_for(lambda: otlp.named(WEBHOOK_SPAN) and otlp.named(ATTEMPT_SPAN))
    [webhook] = otlp.named(WEBHOOK_SPAN)
    [attempt] = otlp.named(ATTEMPT_SPAN)
    assert attempt.trace_id == webhook.trace_id
    assert [traceparent_ids(r.headers["traceparent"]) for r in receiver.received] == [
        (webhook.trace_id, attempt.span_id),
        (webhook.trace_id, attempt.span_id),
    ]


async def test_a_refused_body_is_a_failed_span_with_its_status(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver
) -> None:
    async with running_service(write_rules(RULES % receiver.url()), tmp_path / "r.db") as client:
        answer = await client.post(
            "/webhooks/revring",
            data=b'{"id": ',
            headers={"x-api-key": "test-key-1", "Content-Type": "application/json"},
        )
        assert answer.status == 400
        await wait_for(lambda: otlp.named(WEBHOOK_SPAN) and otlp.named("parse"))
    [webhook] = otlp.named(WEBHOOK_SPAN)
    assert webhook.attributes["http.response.status_code"] == 400
    assert webhook.attributes["router.ingest_status"] == "rejected"
    assert webhook.status_code == STATUS_ERROR
    assert children_of(otlp, webhook)["parse"].status_code == STATUS_ERROR
    assert receiver.received == []


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    ],
    ids=["unset", "sdk-disabled", "exporter-none"],
)
async def test_tracing_off_sends_no_traceparent_and_makes_no_exporter(
    tmp_path, write_rules, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, environment
) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    event = fresh_event()
    async with running_service(write_rules(RULES % receiver.url()), tmp_path / "r.db") as client:
        assert not tracing.is_on()
        assert tracing._provider is None  # no SDK provider, no exporter, no export thread
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    [sent] = receiver.received
    assert not {"traceparent", "tracestate"} & {name.lower() for name in sent.headers}


async def test_a_large_body_parsed_in_a_worker_keeps_its_spans_in_the_trace(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver
) -> None:
    turns = [{"speaker": "agent", "text": "x" * 90}] * 5000  # over 64 KiB: a parse worker
    event = fresh_event(transcript=turns)
    async with running_service(write_rules(RULES % receiver.url()), tmp_path / "r.db") as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]], limit=30)
    [webhook] = otlp.named(WEBHOOK_SPAN)
    children = children_of(otlp, webhook)
    assert {"parse", "route", "commit"} <= set(children)
    assert children["parse"].attributes == {"router.parse.where": "worker"}
    [attempt] = otlp.named(ATTEMPT_SPAN)
    assert (attempt.trace_id, attempt.parent_span_id) == (webhook.trace_id, webhook.span_id)


async def test_in_verify_mode_the_deliveries_join_the_trace_of_the_verification(
    tmp_path, write_rules, receiver: Receiver, otlp: OtlpReceiver, revring: FakeRevRing
) -> None:
    event = fresh_event()
    revring.know(event)
    api = RevRingApi(
        FAKE_API_KEY,
        revring.url,
        retries=ApiRetries(max_tries=2, initial_delay=0.01, max_delay=0.02),
    )
    verify = VerifySettings(poll=0.1, initial_backoff=0.1, max_backoff=0.3)
    rules = write_rules(RULES % receiver.url())
    service = running_service(
        rules, tmp_path / "r.db", revring_api=api, verify_calls=True, verify=verify
    )
    async with service as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    [verified] = otlp.named("verified call")
    assert verified.attributes == {"router.event_id": event["id"]}
    [attempt] = otlp.named(ATTEMPT_SPAN)
    assert (attempt.trace_id, attempt.parent_span_id) == (verified.trace_id, verified.span_id)
    [sent] = receiver.received
    assert traceparent_ids(sent.headers["traceparent"]) == (verified.trace_id, attempt.span_id)
