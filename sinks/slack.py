"""The `slack` sink: call alerts through an incoming webhook or a bot token (slack-sdk).

(Config fixed here; sending and the default Block Kit alert are being written.)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, model_validator

from router.templates import SlackTemplate
from router.units import Rate
from sinks.base import DeliveryRequest, SendResult, Sink, SinkConfig


class SlackSinkConfig(SinkConfig):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = None
    text: SlackTemplate | None = None
    blocks: SlackTemplate | None = None
    mask_phone: bool = True

    @model_validator(mode="after")
    def _one_mode(self) -> SlackSinkConfig:
        if self.webhook_url is not None and self.token is not None:
            raise ValueError("give either webhook_url or token + channel, not both")
        if self.token is not None and self.token.get_secret_value() and not self.channel:
            raise ValueError('token needs a channel (e.g. channel: "#ops-alerts")')
        return self

    def missing_settings(self) -> list[str]:
        if self.token is not None:
            return [] if self.token.get_secret_value() else ["token"]
        if self.webhook_url is None or not self.webhook_url.get_secret_value():
            return ["webhook_url"]
        return []

    def effective_rate_limit(self) -> Rate | None:
        return self.rate_limit or Rate(1, 1)


class SlackSink(Sink):
    config: SlackSinkConfig

    def render(self, request: DeliveryRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, request: DeliveryRequest) -> SendResult:
        raise NotImplementedError


SlackSinkConfig.sink_class = SlackSink
