"""The `email` sink: one well-formed message per routed call over SMTP (aiosmtplib).

(Config fixed here; sending and the default message are being written.)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from router.templates import HeaderTemplate, TextTemplate
from router.units import Duration
from sinks.base import DeliveryRequest, SendResult, Sink, SinkConfig


class EmailSinkConfig(SinkConfig):
    type: Literal["email"]
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: HeaderTemplate | None = None
    body: TextTemplate | None = None
    html: TextTemplate | None = None
    timeout: Duration = 30.0

    @field_validator("to", "cc", "bcc", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def missing_settings(self) -> list[str]:
        return [] if self.host else ["host"]


class EmailSink(Sink):
    config: EmailSinkConfig

    def render(self, request: DeliveryRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, request: DeliveryRequest) -> SendResult:
        raise NotImplementedError


EmailSinkConfig.sink_class = EmailSink
