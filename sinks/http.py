"""The `http` sink: the call (or a body template) to any HTTP/CRM endpoint.

(Config fixed here; sending is being written.)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from router.templates import JsonTemplate
from router.units import Duration
from sinks.base import DeliveryRequest, SendResult, Sink, SinkConfig


class HttpSinkConfig(SinkConfig):
    type: Literal["http"]
    url: SecretStr
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    body: JsonTemplate | None = None
    content_type: str = "application/json"
    timeout: Duration = 10.0
    signing_secret: SecretStr | None = None
    success_codes: list[int] | None = None
    retry_on: list[int] = Field(default_factory=list)

    def missing_settings(self) -> list[str]:
        return [] if self.url.get_secret_value() else ["url"]


class HttpSink(Sink):
    config: HttpSinkConfig

    def render(self, request: DeliveryRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, request: DeliveryRequest) -> SendResult:
        raise NotImplementedError


HttpSinkConfig.sink_class = HttpSink
