"""The `rabbitmq` sink: each delivery published to a durable topic exchange (declared if
missing) with a templated routing key, through `aio-pika` with publisher confirms.

A message is persistent, its AMQP `message_id` is the delivery id and its headers carry
`rule`, `sink` and `event_id`. It is delivered when RabbitMQ confirms it (`basic.ack`). A
publish is `mandatory` by default: a message no queue is bound to receive comes back
(`basic.return`) and the delivery is retried (`Retryable`), so calls wait, and then dead
letter, rather than vanish while nobody listens; `mandatory: false` lets RabbitMQ drop
such messages as its model allows. A broker that is down, refuses, nacks or drops the
connection mid-publish is `Retryable` too.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from pydantic import field_validator

from router import __version__
from router.core.templates import HeaderTemplate
from sinks.base import (
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
)
from sinks.broker import (
    CONTENT_TYPE,
    BrokerMessage,
    BrokerSink,
    BrokerSinkConfig,
    build_message,
    checked_broker_url,
    confirmed,
    connection_failure,
    connection_name,
    failure_reason,
    render_part,
    sent_record,
    shown_body,
)

MAX_NAME_BYTES = 255  # an AMQP short string: exchange names and routing keys
_EXCHANGE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def routing_key_problem(key: str) -> str | None:
    """Why `key` cannot be a routing key, or None."""
    if not key.strip():
        return "rendered empty (a topic exchange routes on the key)"
    if len(key.encode("utf-8")) > MAX_NAME_BYTES:
        return f"rendered longer than {MAX_NAME_BYTES} bytes"
    return None


class RabbitMqSinkConfig(BrokerSinkConfig):
    type: Literal["rabbitmq"]
    exchange: str = "revring"
    routing_key: HeaderTemplate
    mandatory: bool = True

    @field_validator("url")
    @classmethod
    def _amqp_url(cls, value: Any) -> Any:
        return checked_broker_url(value, ("amqp", "amqps"))

    @field_validator("exchange")
    @classmethod
    def _exchange_name(cls, value: str) -> str:
        if not _EXCHANGE_NAME.match(value) or len(value) > MAX_NAME_BYTES:
            raise ValueError(
                "exchange must be 1 to 255 letters, digits, '-', '_', '.' or ':' (no spaces)"
            )
        if value.startswith("amq."):
            raise ValueError("exchange names starting with 'amq.' are reserved by RabbitMQ")
        return value

    def templates(self) -> dict[str, RendersText]:
        return {"routing_key": self.routing_key, **super().templates()}

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        return routing_key_problem(rendered) if name == "routing_key" else None


@dataclass(frozen=True)
class _Publisher:
    connection: AbstractConnection
    channel: AbstractChannel
    exchange: AbstractExchange


class RabbitMqSink(BrokerSink[_Publisher]):
    config: RabbitMqSinkConfig
    config_class = RabbitMqSinkConfig

    broker = "RabbitMQ"

    def build(self, request: DeliveryRequest) -> BrokerMessage:
        def routing_key(context: dict[str, Any]) -> str:
            key = render_part(self.config, "routing_key", self.config.routing_key, context)
            problem = routing_key_problem(key)
            if problem is not None:
                raise Permanent(f"routing_key {problem}")
            return key

        return build_message(self.config, request, routing_key)

    def show(self, message: BrokerMessage) -> dict[str, Any]:
        return {
            "exchange": self.config.exchange,
            "routing_key": message.destination,
            "message_id": message.delivery_id,
            "content_type": CONTENT_TYPE,
            "delivery_mode": "persistent",
            "headers": message.carried(),
            "body": shown_body(message.body),
        }

    async def _open(self) -> _Publisher:
        connection = await aio_pika.connect(
            self.config.url.get_secret_value(),
            timeout=self.config.timeout,
            client_properties={"connection_name": connection_name(self.name)},
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=False)
            exchange = await channel.declare_exchange(
                self.config.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except BaseException:
            await connection.close()
            raise
        return _Publisher(connection, channel, exchange)

    async def transmit(self, message: BrokerMessage) -> SendResult:
        target = f"exchange {self.config.exchange} routing key {message.destination}"
        headers = {"message_id": message.delivery_id, **message.carried()}
        sent = sent_record(
            self.config, "PUBLISH", target, headers, message.body, secrets=self.secrets()
        )
        publisher = await self._connection.get()
        amqp = aio_pika.Message(
            message.body,
            headers=dict(message.carried()),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.delivery_id,
            app_id=f"revring-router/{__version__}",
        )
        try:
            async with asyncio.timeout(self.config.timeout):
                result = await publisher.exchange.publish(
                    amqp, message.destination, mandatory=self.config.mandatory
                )
        except aio_pika.exceptions.DeliveryError:
            reason = "RabbitMQ refused the message (basic.nack)"
            raise Retryable(reason).with_exchange(sent) from None
        except Exception as exc:
            url = self.config.url.get_secret_value()
            reason = connection_failure(exc, url, self.secrets())
            await self._connection.drop(publisher, reason)
            raise Retryable(
                failure_reason(self.config, f"RabbitMQ publish failed: {reason}")
            ).with_exchange(sent) from None
        if isinstance(result, aiormq.abc.DeliveredMessage):
            reason = (
                f"RabbitMQ returned the message as unroutable: no queue bound to exchange"
                f" {self.config.exchange} takes routing key {message.destination}"
                " (bind one, or set mandatory: false to let RabbitMQ drop such messages)"
            )
            raise Retryable(failure_reason(self.config, reason)).with_exchange(sent)
        return confirmed(sent, "confirmed by RabbitMQ (basic.ack)", secrets=self.secrets())

    async def _shut(self, client: _Publisher) -> None:
        await client.connection.close()

    def _is_open(self, client: _Publisher) -> bool:
        return not client.connection.is_closed and not client.channel.is_closed
