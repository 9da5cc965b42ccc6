"""The `redis_stream` sink: each delivery appended to a Redis stream (`XADD`), trimmed to
about `maxlen` entries when set (`MAXLEN ~`), through `redis`'s asyncio client.

An entry's fields: `id` (the delivery id), `rule`, `sink`, `event_id`, and `body` (the
call JSON as received, or the `body` template). It is delivered when Redis answers the
`XADD` with the entry's id. A server that is down, refuses or drops the connection
mid-command is `Retryable`, as is any error reply but `WRONGTYPE` (the key holds
something else than a stream: `Permanent` until someone fixes it).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import redis.asyncio
import redis.exceptions
from pydantic import Field, field_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sinks.base import DeliveryRequest, Permanent, Retryable, SendResult
from sinks.broker import (
    BrokerMessage,
    BrokerSink,
    BrokerSinkConfig,
    build_message,
    checked_broker_url,
    confirmed,
    connection_failure,
    connection_name,
    failure_reason,
    sent_record,
    shown_body,
)

MAX_STREAM_NAME = 1024


class RedisStreamSinkConfig(BrokerSinkConfig):
    type: Literal["redis_stream"]
    stream: str
    maxlen: int | None = Field(default=None, ge=1)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        return checked_broker_url(value, ("redis", "rediss"))

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, value: str) -> str:
        if not value or any(char.isspace() for char in value):
            raise ValueError("stream must be a non-empty name without spaces")
        if len(value.encode("utf-8")) > MAX_STREAM_NAME:
            raise ValueError(f"stream must be at most {MAX_STREAM_NAME} bytes")
        return value


def entry_fields(message: BrokerMessage) -> dict[str, str | bytes]:
    """The fields of the stream entry for `message`, in order."""
    return {"id": message.delivery_id, **message.carried(), "body": message.body}


class RedisStreamSink(BrokerSink[redis.asyncio.Redis]):
    config: RedisStreamSinkConfig
    config_class = RedisStreamSinkConfig

    broker = "Redis"

    def build(self, request: DeliveryRequest) -> BrokerMessage:
        message = build_message(self.config, request)
        return BrokerMessage(
            self.config.stream,
            message.body,
            message.delivery_id,
            message.rule,
            message.sink,
            message.event_id,
        )

    def show(self, message: BrokerMessage) -> dict[str, Any]:
        fields: dict[str, Any] = dict(entry_fields(message))
        fields["body"] = shown_body(message.body)
        return {"stream": message.destination, "maxlen": self.config.maxlen, "fields": fields}

    async def _open(self) -> redis.asyncio.Redis:
        client = redis.asyncio.Redis.from_url(
            self.config.url.get_secret_value(),
            single_connection_client=True,
            client_name=connection_name(self.name),  # in CLIENT LIST
            socket_connect_timeout=self.config.timeout,
            socket_timeout=self.config.timeout,
            retry=Retry(NoBackoff(), 0),  # the delivery engine retries, not the client
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return client

    async def transmit(self, message: BrokerMessage) -> SendResult:
        fields = entry_fields(message)
        shown = {"id": message.delivery_id, **message.carried()}
        target = f"stream {message.destination}"
        sent = sent_record(self.config, "XADD", target, shown, message.body, secrets=self.secrets())
        client = await self._connection.get()
        try:
            async with asyncio.timeout(self.config.timeout):
                entry = await client.xadd(
                    message.destination,
                    fields,  # type: ignore[arg-type]
                    maxlen=self.config.maxlen,
                    approximate=True,
                )
        except redis.exceptions.ResponseError as exc:
            text = failure_reason(self.config, f"Redis refused the XADD: {exc}")
            if str(exc).startswith("WRONGTYPE"):
                raise Permanent(text).with_exchange(sent) from None
            raise Retryable(text).with_exchange(sent) from None
        except Exception as exc:
            url = self.config.url.get_secret_value()
            reason = connection_failure(exc, url, self.secrets())
            await self._connection.drop(client, reason)
            text = failure_reason(self.config, f"Redis XADD failed: {reason}")
            raise Retryable(text).with_exchange(sent) from None
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        return confirmed(sent, f"added as entry {entry_id}", secrets=self.secrets())

    async def _shut(self, client: redis.asyncio.Redis) -> None:
        await client.aclose()
