"""The broker sinks' settings and messages, without a broker: what `check` says of bad
settings (at FILE:LINE:COL, never quoting a credential), the message each builds (the
body as received, a `body` template, a digest as one message, the rendered routing key or
subject, the ids and headers), and the one connection's backoff."""

from __future__ import annotations

import json
import pickle
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config.sample_renders import check_findings
from router.config.schema import ConfigError, parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, Digest, Permanent, Retryable, SinkResources
from sinks.broker import BrokerConnection, broker_url_secrets, connection_name
from sinks.nats import NatsSink, subject_problem
from sinks.rabbitmq import RabbitMqSink
from sinks.redis_stream import RedisStreamSink, entry_fields
from sinks.registry import build_sink

PASSWORD = "hunter2-pass-77"


def rules(sink: str, rule: str = "") -> str:
    rule = rule or "  - name: failed\n    when: {status: FAILED}\n    to: [bus]\n"
    return f"version: 1\nsinks:\n  bus:\n{sink}rules:\n{rule}"


def load_errors(sink: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(rules(sink), "rules.yaml")
    return [str(error) for error in caught.value.errors]


def check_errors(sink: str) -> list[str]:
    config = parse_config(rules(sink), "rules.yaml")
    return [str(error) for error, severity in check_findings(config) if severity == "error"]


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        (
            f"    type: rabbitmq\n    url: http://guest:{PASSWORD}@host/\n    routing_key: calls\n",
            "rules.yaml:5:10: sinks.bus.url: url must start with amqp:// or amqps://"
            " (got scheme 'http')",
        ),
        (
            f"    type: rabbitmq\n    url: amqp://guest:{PASSWORD}@host:99999/\n"
            "    routing_key: calls\n",
            "rules.yaml:5:10: sinks.bus.url: url has an invalid port",
        ),
        (
            f"    type: redis_stream\n    url: 'redis://:{PASSWORD}@'\n    stream: s\n",
            "rules.yaml:5:10: sinks.bus.url: url must be a URL starting with redis://"
            " or rediss://, with a host",
        ),
        (
            "    type: redis_stream\n    url: redis://host/0\n    stream: revring calls\n",
            "rules.yaml:6:13: sinks.bus.stream: stream must be a non-empty name without spaces",
        ),
        (
            "    type: redis_stream\n    url: redis://host/0\n    stream: s\n    maxlen: 0\n",
            "rules.yaml:7:13: sinks.bus.maxlen:",
        ),
        (
            "    type: nats\n    url: nats://host\n    subject: revring.calls.>\n",
            "rules.yaml:6:14: sinks.bus.subject: subject 'revring.calls.>' has a wildcard",
        ),
        (
            "    type: nats\n    url: nats://host\n    subject: revring..calls\n",
            "rules.yaml:6:14: sinks.bus.subject: subject 'revring..calls' has an empty",
        ),
        (
            "    type: rabbitmq\n    url: amqp://host\n    exchange: my exchange\n"
            "    routing_key: calls\n",
            "rules.yaml:6:15: sinks.bus.exchange: exchange must be 1 to 255 letters",
        ),
        (
            "    type: rabbitmq\n    url: amqp://host\n    exchange: amq.topic\n"
            "    routing_key: calls\n",
            "rules.yaml:6:15: sinks.bus.exchange: exchange names starting with 'amq.'",
        ),
    ],
)
def test_bad_settings_are_errors_at_their_place_without_the_credentials(
    sink: str, expected: str
) -> None:
    errors = load_errors(sink)
    assert any(error.startswith(expected) for error in errors), errors
    assert not any(PASSWORD in error for error in errors)


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        (
            "    type: rabbitmq\n    url: amqp://host\n    routing_key: '{{ nothing }}'\n",
            "rules.yaml:6:18: sink 'bus': routing_key: rendered empty",
        ),
        (
            "    type: nats\n    url: nats://host\n    subject: 'calls.{{ status }} x'\n",
            "rules.yaml:6:14: sink 'bus': subject: subject 'calls.COMPLETED x' has spaces",
        ),
        (
            "    type: nats\n    url: nats://host\n    subject: '{{ nothing }}'\n",
            "rules.yaml:6:14: sink 'bus': subject: rendered empty",
        ),
        (
            "    type: nats\n    url: nats://host\n    subject: 'calls.{{ status | lower }}.*'\n",
            "rules.yaml:6:14: sink 'bus': subject: subject 'calls.",
        ),
    ],
)
def test_a_routing_key_or_subject_that_renders_unusable_on_a_sample_is_a_check_error(
    sink: str, expected: str
) -> None:
    errors = check_errors(sink)
    assert any(error.startswith(expected) for error in errors), errors


def test_good_settings_have_no_errors() -> None:
    for sink in (
        f"    type: rabbitmq\n    url: amqp://u:{PASSWORD}@host/vh\n"
        "    routing_key: 'calls.{{ status | lower }}'\n",
        "    type: redis_stream\n    url: rediss://host:6380/2\n    stream: revring:calls\n"
        "    maxlen: 1000\n",
        "    type: nats\n    url: tls://host:4222\n    subject: 'revring.{{ status | lower }}'\n"
        "    jetstream: false\n",
    ):
        assert check_errors(sink) == []


def test_the_url_credentials_are_secrets_but_the_server_is_not() -> None:
    assert broker_url_secrets(f"amqp://guest:{PASSWORD}@host:5672/vh") == [
        f"amqp://guest:{PASSWORD}@host:5672/vh",
        PASSWORD,
    ]
    assert broker_url_secrets("nats://tok3n-abc123@host") == [
        "nats://tok3n-abc123@host",
        "tok3n-abc123",
    ]
    assert broker_url_secrets("redis://:p%40ss-word@host/0")[-1] == "p@ss-word"
    assert broker_url_secrets("redis://host:6379/0") == []


def make(sink: str) -> Any:
    config = parse_config(rules(sink), "rules.yaml")
    return build_sink("bus", config.sinks["bus"], SinkResources())


def request(
    event: dict[str, Any] | None = None, *, digest: Digest | None = None
) -> DeliveryRequest:
    event = event or {**sample_event(), "status": "FAILED"}
    payload = json.dumps(event, indent=2).encode()
    return DeliveryRequest(
        "dlv-1", str(event["id"]), "bus", "failed", event, payload=payload, digest=digest
    )


RABBIT = (
    f"    type: rabbitmq\n    url: amqp://guest:{PASSWORD}@host/\n"
    "    routing_key: 'calls.{{ status | lower }}.{{ rule }}'\n"
)
REDIS = f"    type: redis_stream\n    url: redis://u:{PASSWORD}@host/0\n    stream: revring:calls\n"
NATS = "    type: nats\n    url: nats://host\n    subject: 'revring.{{ status | lower }}'\n"


def test_the_message_is_the_call_as_received_with_its_ids() -> None:
    delivery = request()
    for settings, destination in (
        (RABBIT, "calls.failed.failed"),
        (REDIS, "revring:calls"),
        (NATS, "revring.failed"),
    ):
        sink = make(settings)
        message = sink.build(delivery)
        assert message.destination == destination
        assert message.body == delivery.payload  # byte for byte, indentation and all
        assert (message.delivery_id, message.rule, message.sink) == ("dlv-1", "failed", "bus")
        assert message.carried() == {"rule": "failed", "sink": "bus", "event_id": delivery.event_id}
        assert pickle.loads(pickle.dumps(message)) == message  # built in a parse worker


def test_each_broker_carries_the_delivery_id_where_its_consumers_look() -> None:
    delivery = request()
    rabbit = make(RABBIT)
    shown = rabbit.preview(delivery)
    assert shown["message_id"] == "dlv-1" and shown["delivery_mode"] == "persistent"
    assert shown["headers"] == {"rule": "failed", "sink": "bus", "event_id": delivery.event_id}
    fields = entry_fields(make(REDIS).build(delivery))
    assert list(fields) == ["id", "rule", "sink", "event_id", "body"]
    assert fields["id"] == "dlv-1"
    nats = make(NATS)
    assert nats.preview(delivery)["headers"]["Nats-Msg-Id"] == "dlv-1"
    assert isinstance(rabbit, RabbitMqSink) and isinstance(nats, NatsSink)


def test_a_body_template_replaces_the_call_and_a_preview_masks_the_credentials() -> None:
    sink = make(
        f"    type: redis_stream\n    url: redis://u:{PASSWORD}@host/0\n    stream: s\n"
        f'    body: \'{{"status": {{{{ status | tojson }}}}, "url": "x {PASSWORD}"}}\'\n'
    )
    assert isinstance(sink, RedisStreamSink)
    message = sink.build(request())
    assert json.loads(message.body) == {"status": "FAILED", "url": f"x {PASSWORD}"}
    assert sink.preview(request())["fields"]["body"] == {"status": "FAILED", "url": "x ***"}


def test_a_digest_is_one_message_listing_its_calls() -> None:
    calls = [{**sample_event(), "id": f"call-{n}", "status": "FAILED"} for n in range(3)]
    digest = Digest(
        {"sipTrunkId": "trunk-1"}, "2026-01-01T00:00:00+00:00", "2026-01-01T00:02:00+00:00", calls
    )
    message = make(NATS).build(request(calls[0], digest=digest))
    document = json.loads(message.body)
    assert [call["id"] for call in document["calls"]] == ["call-0", "call-1", "call-2"]
    assert document["count"] == 3 and document["group_key"] == {"sipTrunkId": "trunk-1"}


def test_a_routing_key_or_subject_rendering_unusable_for_a_call_is_permanent() -> None:
    event = {**sample_event(), "status": ""}
    with pytest.raises(Permanent, match="routing_key rendered empty"):
        make("    type: rabbitmq\n    url: amqp://host\n    routing_key: '{{ status }}'\n").build(
            request(event)
        )
    with pytest.raises(Permanent, match=re.escape("subject: subject 'revring.a b' has spaces")):
        make(NATS).build(request({**event, "status": "A B"}))


@given(st.text(max_size=40))
def test_a_subject_is_accepted_only_when_nats_could_publish_to_it(subject: str) -> None:
    tokens = subject.split(".")
    publishable = (
        bool(subject.strip())
        and not any(char.isspace() for char in subject)
        and "*" not in subject
        and ">" not in subject
        and all(tokens)
    )
    assert (subject_problem(subject) is None) == publishable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_connection_that_fails_to_open_is_tried_again_only_after_a_growing_backoff() -> (
    None
):
    clock = Clock()
    opens: list[float] = []
    closed: list[str] = []
    fail = True

    async def open_client() -> str:
        opens.append(clock.now)
        if fail:
            raise ConnectionRefusedError
        return f"client-{len(opens)}"

    async def close_client(client: str) -> None:
        closed.append(client)

    connection: BrokerConnection[str] = BrokerConnection(
        "Broker",
        open_client,
        close_client,
        lambda client: True,
        timeout=1.0,
        describe=lambda exc: "connection refused by host",
        clock=clock,
    )
    with pytest.raises(Retryable, match="Broker: connection refused by host"):
        await connection.get()
    with pytest.raises(Retryable, match=re.escape("next connection attempt in 0.2s")):
        await connection.get()  # within the backoff: no new attempt
    assert len(opens) == 1
    clock.now += 0.2
    with pytest.raises(Retryable):
        await connection.get()
    clock.now += 0.2
    with pytest.raises(Retryable, match=re.escape("in 0.2s")):  # the backoff doubled to 0.4s
        await connection.get()
    assert len(opens) == 2
    clock.now += 0.2
    fail = False
    client = await connection.get()
    assert client == "client-3"
    assert await connection.get() is client  # shared: opened once
    await connection.drop(client, "connection reset by host")
    assert closed == ["client-3"]
    clock.now += 0.2  # the first backoff again: the open in between succeeded
    assert await connection.get() == "client-4"
    await connection.close()
    assert closed == ["client-3", "client-4"]
    with pytest.raises(Retryable, match="closed"):
        await connection.get()


def test_a_connection_is_named_after_its_sink_in_characters_brokers_take() -> None:
    assert connection_name("bus") == "revring-router:bus"
    assert connection_name("my bus\nnext") == "revring-router:my_bus_next"
