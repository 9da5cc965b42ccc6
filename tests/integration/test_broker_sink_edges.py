"""The broker sinks' answers to what the brokers on this machine say, sink by sink: an
unroutable RabbitMQ message (mandatory: retried; `mandatory: false`: dropped, delivered),
the exchange declared durable topic when missing, a login refused (retried, the password
nowhere), a NATS subject no stream captures (retried), core NATS, a Redis key of another
type (permanent), `MAXLEN ~` trimming, and a sink closed on reload or stop."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aio_pika
import nats
import pytest
import redis.asyncio

from router.config.schema import parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, Permanent, Retryable, Sink, SinkResources
from sinks.registry import build_sink
from tests.integration.conftest import RABBITMQ_CREDENTIALS, broker_unavailable

WRONG_PASSWORD = "not-the-pass-4711"


def make(settings: str) -> Sink[Any]:
    text = f"version: 1\nsinks:\n  bus:\n{settings}    timeout: 3s\nrules: []\n"
    config = parse_config(text, "rules.yaml")
    return build_sink("bus", config.sinks["bus"], SinkResources())


def delivery(number: int = 1) -> DeliveryRequest:
    event = {**sample_event(), "id": str(uuid.uuid4()), "status": "FAILED"}
    payload = json.dumps(event).encode()
    return DeliveryRequest(f"dlv-{number}", event["id"], "bus", "failed", event, payload=payload)


async def send(sink: Sink[Any], request: DeliveryRequest | None = None) -> Any:
    return await sink.transmit(sink.build(request or delivery()))


async def test_rabbitmq_unroutable_is_retried_unless_mandatory_is_off(
    rabbitmq_address: tuple[str, int],
) -> None:
    exchange = f"test-{uuid.uuid4().hex[:10]}"
    url = f"amqp://{RABBITMQ_CREDENTIALS}@127.0.0.1:{rabbitmq_address[1]}/"
    settings = (
        f"    type: rabbitmq\n    url: {url}\n    exchange: {exchange}\n    routing_key: calls\n"
    )
    sink = make(settings)
    try:
        with pytest.raises(Retryable, match="unroutable: no queue bound") as caught:
            await send(sink)
        assert caught.value.exchange is not None  # what was published is kept
        assert "guest" not in repr(caught.value.exchange)
        dropping = make(settings + "    mandatory: false\n")
        result = await send(dropping)
        assert result.detail == "confirmed by RabbitMQ (basic.ack)"
        await dropping.close()
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        declared = await channel.declare_exchange(exchange, passive=True)  # it exists
        assert declared.name == exchange
        # Declared durable and topic: declaring it so again is no conflict.
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.exchange_delete(exchange)
        await connection.close()
    finally:
        await sink.close()


async def test_rabbitmq_refusing_the_login_is_retried_and_the_password_never_shows(
    rabbitmq_address: tuple[str, int],
) -> None:
    url = f"amqp://guest:{WRONG_PASSWORD}@127.0.0.1:{rabbitmq_address[1]}/"
    sink = make(f"    type: rabbitmq\n    url: {url}\n    routing_key: calls\n")
    with pytest.raises(Retryable) as caught:
        await send(sink)
    assert caught.value.reason.startswith("RabbitMQ: ")
    assert WRONG_PASSWORD not in caught.value.reason
    # Within the backoff, the next delivery does not try again; it says why.
    with pytest.raises(Retryable, match="next connection attempt") as again:
        await send(sink)
    assert WRONG_PASSWORD not in again.value.reason
    await sink.close()


async def test_redis_refusing_the_login_is_retried_and_the_password_never_shows(
    redis_address: tuple[str, int],
) -> None:
    url = f"redis://nobody-{uuid.uuid4().hex[:6]}:{WRONG_PASSWORD}@127.0.0.1:{redis_address[1]}/0"
    sink = make(f"    type: redis_stream\n    url: {url}\n    stream: s\n")
    with pytest.raises(Retryable) as caught:
        await send(sink)
    assert caught.value.reason.startswith("Redis: ")
    assert WRONG_PASSWORD not in caught.value.reason
    await sink.close()


async def test_a_redis_key_of_another_type_is_permanent_and_maxlen_trims(
    redis_address: tuple[str, int],
) -> None:
    key = f"test:{uuid.uuid4().hex[:10]}"
    client = redis.asyncio.Redis(port=redis_address[1])
    url = f"redis://127.0.0.1:{redis_address[1]}/0"
    try:
        await client.set(key, "a string")
        wrong = make(f"    type: redis_stream\n    url: {url}\n    stream: {key}\n")
        with pytest.raises(Permanent, match="WRONGTYPE"):
            await send(wrong)
        await wrong.close()
        await client.delete(key)
        trimmed = make(
            f"    type: redis_stream\n    url: {url}\n    stream: {key}\n    maxlen: 5\n"
        )
        for number in range(300):
            await send(trimmed, delivery(number))
        await trimmed.close()
        length = await client.xlen(key)
        assert length < 300  # trimmed (approximately: whole nodes at a time)
        [(_entry, fields)] = await client.xrevrange(key, count=1)
        assert fields[b"id"] == b"dlv-299"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_nats_without_a_stream_for_the_subject_is_retried_and_core_nats_publishes(
    nats_address: tuple[str, int],
) -> None:
    subject = f"test{uuid.uuid4().hex[:10]}.calls"
    url = f"nats://127.0.0.1:{nats_address[1]}"
    jetstream = make(f"    type: nats\n    url: {url}\n    subject: {subject}\n")
    with pytest.raises(Retryable, match=f"no JetStream stream captures subject {subject}"):
        await send(jetstream)
    await jetstream.close()

    listener = await nats.connect(url)
    subscription = await listener.subscribe(subject)
    await listener.flush()
    core = make(f"    type: nats\n    url: {url}\n    subject: {subject}\n    jetstream: false\n")
    request = delivery()
    result = await send(core, request)
    assert result.detail == "flushed to the server (core NATS)"
    message = await subscription.next_msg(timeout=5)
    assert message.headers == {
        "Nats-Msg-Id": "dlv-1",
        "rule": "failed",
        "sink": "bus",
        "event_id": request.event_id,
    }
    assert message.data == request.payload
    await core.close()
    await listener.close()


async def test_a_closed_sink_holds_no_connection_and_sends_no_more(
    redis_address: tuple[str, int],
) -> None:
    key = f"test:{uuid.uuid4().hex[:10]}"
    name = f"router-{uuid.uuid4().hex[:8]}"
    client = redis.asyncio.Redis(port=redis_address[1])
    url = f"redis://127.0.0.1:{redis_address[1]}/0"
    sink = make(f"    type: redis_stream\n    url: {url}\n    stream: {key}\n")
    try:
        await send(sink)
        connection = await sink._connection.get()  # type: ignore[attr-defined]
        await connection.client_setname(name)

        async def open_connections() -> int:
            return sum(1 for info in await client.client_list() if info.get("name") == name)

        assert await open_connections() == 1
        await sink.close()
        assert await open_connections() == 0
        with pytest.raises(Retryable, match="closed"):
            await send(sink)
    finally:
        await client.delete(key)
        await client.aclose()


def test_an_absent_broker_skips_unless_brokers_are_required(monkeypatch: Any) -> None:
    monkeypatch.delenv("ROUTER_REQUIRE_BROKERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="RabbitMQ is unreachable"):
        broker_unavailable("RabbitMQ is unreachable")
    monkeypatch.setenv("ROUTER_REQUIRE_BROKERS", "1")
    with pytest.raises(pytest.fail.Exception, match="ROUTER_REQUIRE_BROKERS=1 but RabbitMQ"):
        broker_unavailable("RabbitMQ is unreachable")
