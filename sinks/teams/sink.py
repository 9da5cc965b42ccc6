"""The `teams` sink: call alerts as Adaptive Cards to a Microsoft Teams Workflows webhook.

The card is built in `sinks.teams.card`; this module sends it through the transport the
`http` sink uses (`PostingSink`) and turns Teams' answers into outcomes:

    200, 202       delivered (Workflows webhooks answer 202 Accepted)
    429            retried after Teams' Retry-After (else with backoff)
    5xx            retried with backoff
    other 4xx      dead at once, with the status and the start of Teams' answer

The `webhook_url` is a secret (its path and signature grant posting): it never appears
in a preview, a log, or a failure reason.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import SecretStr, field_validator

from router.core.templates import TeamsJsonTemplate
from sinks.base import DeliveryError, DeliveryRequest, RendersText, SendResult, TimedSinkConfig
from sinks.http import (
    USER_AGENT,
    Answer,
    OutgoingRequest,
    PostingSink,
    classify_response,
)
from sinks.secrets import url_secrets
from sinks.teams.card import build_message, parse_card


class TeamsSinkConfig(TimedSinkConfig):
    type: Literal["teams"]
    webhook_url: SecretStr
    card: TeamsJsonTemplate | None = None
    mask_phone: bool = True

    @field_validator("webhook_url")
    @classmethod
    def _https_url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text and (
            not text.startswith(("https://", "http://")) or any(c.isspace() for c in text)
        ):
            raise ValueError("webhook_url must be an https:// URL (the Workflows webhook)")
        return value

    def missing_settings(self) -> list[str]:
        return [] if self.webhook_url.get_secret_value() else ["webhook_url"]

    def secret_values(self) -> list[str]:
        return super().secret_values() + url_secrets(self.webhook_url.get_secret_value())

    def templates(self) -> dict[str, RendersText]:
        return {} if self.card is None else {"card": self.card}

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        try:
            parse_card(rendered)
        except ValueError as exc:
            return str(exc)
        return None


class TeamsSink(PostingSink):
    config: TeamsSinkConfig
    config_class = TeamsSinkConfig
    reason_prefix = "teams: "

    def build(self, request: DeliveryRequest) -> OutgoingRequest:
        document = build_message(
            request, mask_phone_numbers=self.config.mask_phone, card_template=self.config.card
        )
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        url = self.config.webhook_url.get_secret_value()
        return OutgoingRequest("POST", url, headers, body.encode(), frozenset())

    def show(self, outgoing: OutgoingRequest) -> Any:
        return json.loads(outgoing.body)

    def judge(self, answer: Answer, secrets: list[str]) -> SendResult | DeliveryError:
        outcome = classify_response(
            answer.status,
            body=answer.body,
            retry_after=answer.retry_after,
            now=time.time(),
            secrets=secrets,
        )
        if isinstance(outcome, DeliveryError):
            return outcome.with_reason(self.reason_prefix + outcome.reason)
        return outcome
