"""The `nats` sink: each delivery published on a templated subject through `nats-py`,
to JetStream (`jetstream: true`, the default: delivered when a stream acknowledges it)
or to core NATS (`jetstream: false`: delivered when the server has it, which a flush
confirms; core NATS drops a message nobody subscribes to, as its model allows).

Headers: `Nats-Msg-Id` is the delivery id (JetStream drops a duplicate within its
stream's duplicate window), plus `rule`, `sink` and `event_id`. A server that is down,
refuses, or drops the connection mid-publish is `Retryable`, and so is a subject no
stream captures (the calls wait for one); a message over the server's size limit is
`Permanent`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from pydantic import field_validator

from router.core.templates import HeaderTemplate, Template
from sinks.base import (
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
)
from sinks.broker import (
    BrokerMessage,
    BrokerSink,
    BrokerSinkConfig,
    build_message,
    checked_broker_url,
    confirmed,
    connection_failure,
    failure_reason,
    render_part,
    sent_record,
    shown_body,
)

MSG_ID_HEADER = "Nats-Msg-Id"


def subject_problem(subject: str) -> str | None:
    """Why `subject` cannot be published to, or None: empty, spaces, a wildcard, an empty
    token."""
    if not subject.strip():
        return "rendered empty"
    if any(char.isspace() for char in subject):
        return f"subject {subject!r} has spaces (NATS subjects cannot)"
    tokens = subject.split(".")
    if any(token in ("*", ">") for token in tokens) or "*" in subject or ">" in subject:
        return f"subject {subject!r} has a wildcard (* or >): publish to one subject"
    if any(not token for token in tokens):
        return f"subject {subject!r} has an empty token (a leading, trailing or double dot)"
    return None


class NatsSinkConfig(BrokerSinkConfig):
    type: Literal["nats"]
    subject: HeaderTemplate
    jetstream: bool = True

    @field_validator("url")
    @classmethod
    def _nats_url(cls, value: Any) -> Any:
        return checked_broker_url(value, ("nats", "tls"))

    @field_validator("subject")
    @classmethod
    def _plain_subject(cls, value: Template) -> Template:
        if "{" not in value.source:  # no template: check it as written
            problem = subject_problem(value.source)
            if problem is not None:
                raise ValueError(problem.replace("rendered empty", "subject is empty"))
        return value

    def templates(self) -> dict[str, RendersText]:
        return {"subject": self.subject, **super().templates()}

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        return subject_problem(rendered) if name == "subject" else None


def message_headers(message: BrokerMessage) -> dict[str, str]:
    """The headers of the NATS message for `message`."""
    return {MSG_ID_HEADER: message.delivery_id, **message.carried()}


class NatsSink(BrokerSink[NatsClient]):
    config: NatsSinkConfig
    config_class = NatsSinkConfig

    broker = "NATS"

    def build(self, request: DeliveryRequest) -> BrokerMessage:
        def subject(context: dict[str, Any]) -> str:
            rendered = render_part(self.config, "subject", self.config.subject, context)
            problem = subject_problem(rendered)
            if problem is not None:
                raise Permanent(failure_reason(self.config, f"subject: {problem}"))
            return rendered

        return build_message(self.config, request, subject)

    def show(self, message: BrokerMessage) -> dict[str, Any]:
        return {
            "subject": message.destination,
            "jetstream": self.config.jetstream,
            "headers": message_headers(message),
            "body": shown_body(message.body),
        }

    async def _open(self) -> NatsClient:
        client = NatsClient()
        last_error: list[Exception] = []  # nats-py reports it only to the error callback

        async def remember(error: Exception) -> None:
            last_error[:] = [error]

        try:
            await client.connect(
                self.config.url.get_secret_value(),
                name="revring-router",
                allow_reconnect=False,  # `BrokerConnection` reconnects, with its backoff
                connect_timeout=max(1, round(self.config.timeout)),
                # One try at the server (nats-py counts from 0; 0 would mean forever).
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=remember,  # nats-py's default logs each error; the sink reports
                disconnected_cb=_nothing,
                closed_cb=_nothing,
            )
        except nats.errors.NoServersError:
            # Why the server could not be reached, rather than "no servers available".
            raise (last_error or [nats.errors.NoServersError()])[0] from None
        return client

    async def transmit(self, message: BrokerMessage) -> SendResult:
        headers = message_headers(message)
        kind = "JetStream" if self.config.jetstream else "core NATS"
        target = f"subject {message.destination} ({kind})"
        sent = sent_record(
            self.config, "PUBLISH", target, headers, message.body, secrets=self.secrets()
        )
        client = await self._connection.get()
        try:
            async with asyncio.timeout(self.config.timeout):
                if self.config.jetstream:
                    ack = await client.jetstream(timeout=self.config.timeout).publish(
                        message.destination,
                        message.body,
                        timeout=self.config.timeout,
                        headers=dict(headers),
                    )
                    answer = f"stored by stream {ack.stream} as message {ack.seq}"
                    if ack.duplicate:
                        answer += " (a duplicate: the stream already had this Nats-Msg-Id)"
                else:
                    await client.publish(message.destination, message.body, headers=headers)
                    await client.flush(timeout=max(1, round(self.config.timeout)))
                    answer = "flushed to the server (core NATS)"
        except nats.js.errors.NoStreamResponseError:
            reason = f"no JetStream stream captures subject {message.destination}"
            raise Retryable(failure_reason(self.config, reason)).with_exchange(sent) from None
        except nats.js.errors.APIError as exc:
            reason = f"JetStream refused the message: {exc.description or exc.code}"
            raise Retryable(failure_reason(self.config, reason)).with_exchange(sent) from None
        except nats.errors.MaxPayloadError:
            reason = "the message is larger than the server's max_payload"
            raise Permanent(reason).with_exchange(sent) from None
        except Exception as exc:
            url = self.config.url.get_secret_value()
            reason = connection_failure(exc, url, self.secrets())
            await self._connection.drop(client, reason)
            text = failure_reason(self.config, f"NATS publish failed: {reason}")
            raise Retryable(text).with_exchange(sent) from None
        return confirmed(sent, answer, secrets=self.secrets())

    async def _shut(self, client: NatsClient) -> None:
        await client.close()

    def _is_open(self, client: NatsClient) -> bool:
        return bool(client.is_connected)


async def _nothing() -> None:
    pass
