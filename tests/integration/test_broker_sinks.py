"""The broker sinks against the real RabbitMQ, Redis and NATS (JetStream) on this machine,
through the real service: N calls give N messages carrying their delivery ids and the
`rule`, `sink`, `event_id` headers (fields), the body as received; then the broker goes
away (a TCP proxy between the router and the broker stops: new connections refused, the
live one cut), the deliveries wait and retry, and once it is back every delivery id
arrives (duplicates only of delivered ids, as at-least-once allows). No credential of the
broker URL shows in the attempts, the admin API or the logs.

Each test uses names of its own (exchange and queue, stream, JetStream stream and
subject) and removes them afterwards.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from router.core.pacing import PauseSettings
from router.engine.delivery import EngineSettings
from tests.conftest import fresh_event
from tests.integration.conftest import (
    RABBITMQ_CREDENTIALS,
    require_nats,
    require_rabbitmq,
    require_redis,
)
from tests.service import ADMIN_TOKEN, parts, running_service, wait_for
from tests.tcp_proxy import TcpProxy

CALLS = 4
PASSWORD = "s3cret-broker-pass"  # a password the brokers never check (Redis, NATS)

ENGINE = EngineSettings(
    lease_seconds=5.0,
    idle_poll=0.1,
    unconfigured_check=0.2,
    shutdown_grace=2.0,
    pause=PauseSettings(failures_to_pause=5, first_pause=0.2, max_pause=0.5),
)

RULES = """
version: 1
defaults:
  retry: {{max_attempts: 200, initial_delay: 100ms, max_delay: 300ms}}
sinks:
  bus:
{sink}
    timeout: 3s
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [bus]
"""


@dataclass
class Received:
    message_id: str
    headers: dict[str, str]
    body: bytes


class Consumer(Protocol):
    """One broker's side of a test: the sink settings, and what a consumer received."""

    secret: str

    def sink(self, port: int) -> str: ...

    async def received(self) -> list[Received]: ...


@dataclass
class RabbitConsumer:
    """An exclusive queue bound to the test's exchange for every routing key."""

    exchange: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    secret: str = "guest"  # the password: its user is `guest` too, so it is masked alike
    messages: list[Received] = field(default_factory=list)
    connection: Any = None

    async def __aenter__(self) -> RabbitConsumer:
        import aio_pika

        self.connection = await aio_pika.connect(f"amqp://{RABBITMQ_CREDENTIALS}@127.0.0.1/")
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "calls.#")

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                headers = {name: str(value) for name, value in message.headers.items()}
                headers["routing_key"] = str(message.routing_key)
                self.messages.append(Received(str(message.message_id), headers, message.body))

        await queue.consume(take)
        return self

    async def __aexit__(self, *exc: object) -> None:
        channel = await self.connection.channel()
        await channel.exchange_delete(self.exchange)
        await self.connection.close()

    def sink(self, port: int) -> str:
        return (
            f"    type: rabbitmq\n    url: amqp://{RABBITMQ_CREDENTIALS}@127.0.0.1:{port}/\n"
            f"    exchange: {self.exchange}\n"
            '    routing_key: "calls.{{ status | lower }}"'
        )

    async def received(self) -> list[Received]:
        return list(self.messages)


@dataclass
class RedisConsumer:
    """Reads the test's stream from the start."""

    stream: str = field(default_factory=lambda: f"test:{uuid.uuid4().hex[:10]}")
    secret: str = PASSWORD
    client: Any = None

    async def __aenter__(self) -> RedisConsumer:
        import redis.asyncio

        self.client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        await self.client.acl_setuser(
            self.user, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.delete(self.stream)
        await self.client.acl_deluser(self.user)
        await self.client.aclose()

    @property
    def user(self) -> str:
        return f"router-{self.stream.removeprefix('test:')}"

    def sink(self, port: int) -> str:
        # A user of the test's own (ACL), so that the password in the URL is checked.
        return (
            f"    type: redis_stream\n"
            f"    url: redis://{self.user}:{PASSWORD}@127.0.0.1:{port}/0\n"
            f"    stream: {self.stream}\n    maxlen: 1000"
        )

    async def received(self) -> list[Received]:
        entries = await self.client.xrange(self.stream)
        found = []
        for _entry_id, fields in entries:
            text = {key.decode(): value for key, value in fields.items()}
            headers = {key: value.decode() for key, value in text.items() if key != "body"}
            found.append(Received(headers["id"], headers, text["body"]))
        return found


@dataclass
class NatsConsumer:
    """A JetStream stream capturing the test's subjects, read from the start."""

    prefix: str = field(default_factory=lambda: f"test{uuid.uuid4().hex[:10]}")
    secret: str = PASSWORD
    client: Any = None

    @property
    def stream(self) -> str:
        return self.prefix.upper()

    async def __aenter__(self) -> NatsConsumer:
        import nats

        self.client = await nats.connect("nats://127.0.0.1:4222")
        await self.client.jetstream().add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.jetstream().delete_stream(self.stream)
        await self.client.close()

    def sink(self, port: int) -> str:
        # nats-server without authorization ignores the credentials it is given.
        return (
            f"    type: nats\n    url: nats://router:{PASSWORD}@127.0.0.1:{port}\n"
            f'    subject: "{self.prefix}.calls.{{{{ status | lower }}}}"'
        )

    async def received(self) -> list[Received]:
        js = self.client.jetstream()
        info = await js.stream_info(self.stream)
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            message = await js.get_msg(self.stream, sequence)
            headers = dict(message.headers or {})
            headers["subject"] = message.subject
            found.append(Received(headers["Nats-Msg-Id"], headers, message.data))
        return found


CONSUMERS = {"rabbitmq": RabbitConsumer, "redis_stream": RedisConsumer, "nats": NatsConsumer}
REQUIRE = {"rabbitmq": require_rabbitmq, "redis_stream": require_redis, "nats": require_nats}


@pytest.fixture(params=list(CONSUMERS))
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Consumer, TcpProxy]]:
    host, port = await REQUIRE[request.param]()
    proxy = await TcpProxy(host, port).start()
    async with CONSUMERS[request.param]() as consumer:
        yield consumer, proxy
    await proxy.stop()


async def _post(client: Any, count: int) -> list[tuple[str, bytes]]:
    """Post `count` failed calls; each call's id and the body exactly as sent."""
    posted = []
    for _ in range(count):
        event = fresh_event()
        body = json.dumps(event, indent=1).encode()
        answer = await client.post(
            "/webhooks/revring",
            data=body,
            headers={"x-api-key": "test-key-1", "Content-Type": "application/json"},
        )
        assert answer.status == 200, await answer.text()
        posted.append((event["id"], body))
    return posted


async def test_calls_reach_the_broker_and_survive_an_outage_without_loss(
    tmp_path: Path, write_rules: Any, broker: tuple[Consumer, TcpProxy], caplog: Any
) -> None:
    consumer, proxy = broker
    caplog.set_level(logging.DEBUG)
    rules = write_rules(RULES.format(sink=consumer.sink(proxy.port)))
    async with running_service(rules, tmp_path / "router.db", engine=ENGINE) as client:
        store, *_ = parts(client)

        async def delivered(count: int) -> bool:
            return len(await store.list_deliveries("delivered", limit=1000)) == count

        # N calls give N messages, with their delivery ids, headers and bodies.
        first = await _post(client, CALLS)
        await wait_for(lambda: delivered(CALLS), limit=30)
        deliveries = await store.list_deliveries("delivered", limit=1000)
        by_event = {delivery.event_id: delivery.id for delivery in deliveries}
        messages = await consumer.received()
        assert len(messages) == CALLS
        for event_id, body in first:
            [message] = [m for m in messages if m.headers["event_id"] == event_id]
            assert message.message_id == by_event[event_id]
            assert message.headers["rule"] == "failed-calls"
            assert message.headers["sink"] == "bus"
            assert message.body == body  # the call JSON as received, byte for byte
        for delivery in deliveries:
            [attempt] = await store.list_attempts(delivery.id)
            assert attempt.outcome == "delivered"

        # The broker goes away: the deliveries wait and retry.
        await proxy.stop()
        second = await _post(client, CALLS)

        async def retried() -> bool:
            pending = await store.list_deliveries("pending", limit=1000)
            if len(pending) != CALLS:
                return False
            attempts = [await store.list_attempts(d.id) for d in pending]
            return all(len(a) >= 2 and a[-1].outcome == "retry" for a in attempts)

        await wait_for(retried, limit=30)
        pending = await store.list_deliveries("pending", limit=1000)
        failed = [a for d in pending for a in await store.list_attempts(d.id)]
        assert all(a.outcome == "retry" and a.error for a in failed)
        assert not any(consumer.secret in (a.error or "") for a in failed)
        answer = await client.get(
            f"/admin/deliveries/{pending[0].id}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert answer.status == 200
        assert consumer.secret not in await answer.text()

        # It comes back: every delivery arrives.
        await proxy.start()
        await wait_for(lambda: delivered(2 * CALLS), limit=30)
        deliveries = await store.list_deliveries("delivered", limit=1000)
        for delivery in deliveries:
            attempts = await store.list_attempts(delivery.id)
            for attempt in attempts:
                assert attempt.exchange is None or consumer.secret not in repr(attempt.exchange)

        # The connection dies mid-publish: the broker got the message, the router never
        # heard it confirmed. The retry publishes it again, with the same id.
        proxy.hold_replies()
        [(held_event, _body)] = await _post(client, 1)

        async def timed_out() -> bool:
            [pending] = await store.list_deliveries("pending", limit=1000) or [None]
            return pending is not None and bool(await store.list_attempts(pending.id))

        await wait_for(timed_out, limit=30)
        await proxy.stop()
        await proxy.start()
        await wait_for(lambda: delivered(2 * CALLS + 1), limit=30)
        deliveries = await store.list_deliveries("delivered", limit=1000)

    messages = await consumer.received()
    ids = {delivery.id for delivery in deliveries}
    assert {message.message_id for message in messages} == ids  # nothing lost
    assert {m.headers["event_id"] for m in messages} == {
        e for e, _ in [*first, *second, (held_event, b"")]
    }
    held = [m for m in messages if m.headers["event_id"] == held_event]
    # At least once: twice, both with the delivery's id, which is how a consumer drops the
    # second; JetStream dropped it itself (the same Nats-Msg-Id within its window).
    assert len({m.message_id for m in held}) == 1
    assert len(held) == (1 if isinstance(consumer, NatsConsumer) else 2)
    others = [m for m in messages if m.headers["event_id"] != held_event]
    assert len(others) >= 2 * CALLS  # any other duplicate is of a delivered id too
    assert proxy.connections >= 2  # the sink reconnected through the proxy
    assert f":{consumer.secret}@" not in caplog.text  # never a URL with its password
    if consumer.secret != "guest":  # RabbitMQ's client may name the user `guest`
        assert consumer.secret not in caplog.text


async def test_a_reload_closes_the_replaced_sinks_connection_and_stop_closes_the_last(
    tmp_path: Path, write_rules: Any, redis_address: tuple[str, int]
) -> None:
    import redis.asyncio

    stream = f"test:{uuid.uuid4().hex[:10]}"
    sink = (
        f"    type: redis_stream\n    url: redis://127.0.0.1:{redis_address[1]}/0\n"
        f"    stream: {stream}\n    maxlen: 100"
    )
    rules = write_rules(RULES.format(sink=sink).replace("timeout: 3s", "timeout: 1s"))
    watcher = redis.asyncio.Redis(port=redis_address[1])

    async def connections() -> int:
        clients = await watcher.client_list()
        return sum(1 for info in clients if info.get("name") == "revring-router:bus")

    try:
        async with running_service(rules, tmp_path / "router.db", engine=ENGINE) as client:
            store, _engine, runtime, _metrics = parts(client)
            await _post(client, 1)
            await wait_for(lambda: store.list_deliveries("delivered"), limit=30)
            assert await connections() == 1
            rules.write_text(rules.read_text().replace("maxlen: 100", "maxlen: 200"))
            assert not await runtime.reload("test")
            await _post(client, 1)
            await wait_for(lambda: delivered_count(store, 2), limit=30)
            # The new sink has its own connection; the replaced one's closes after the
            # grace its sends may take (its timeout).
            await wait_for(lambda: _equals(connections(), 1), limit=10)
        assert await connections() == 0
        assert await watcher.xlen(stream) == 2
    finally:
        await watcher.delete(stream)
        await watcher.aclose()


async def delivered_count(store: Any, count: int) -> bool:
    return len(await store.list_deliveries("delivered", limit=1000)) == count


async def _equals(value: Any, expected: int) -> bool:
    return await value == expected
