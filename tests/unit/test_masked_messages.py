"""Every sink's default message masks the phone numbers a call's free text holds (its
error, summary and transcript), however they are written, as the console does: one
masking function (router/core/phones.py) for Slack, email, Teams, PagerDuty and the log sink."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from router.config.schema import parse_config
from router.engine.preview import preview
from tests.conftest import fresh_event

RULES = """version: 1
sinks:
  slack: {type: slack, webhook_url: "https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx"}
  email: {type: email, host: smtp.example.com, from: alerts@example.com, to: [ops@example.com]}
  teams: {type: teams, webhook_url: "https://example.webhook.office.com/workflows/abc123def456"}
  pagerduty: {type: pagerduty, routing_key: "R0UT1NGKEY00000000000000000000000"}
  log: {type: log}
rules:
  - name: everything
    to: [slack, email, teams, pagerduty, log]
"""

DIGEST_RULES = RULES.replace(
    "to: [slack, email, teams, pagerduty, log]",
    "to: [slack, email, teams, pagerduty, log]\n    group: {by: [sipTrunkId], window: 2m}",
)

# The numbers of the issue, as people and carriers write them, and their national digits.
WRITTEN = {
    "+14155550188": "4155550188",
    "+1 415-555-0142": "4155550142",
    "(415) 555-0143": "4155550143",
    "+1-415-555-0148": "4155550148",
    "+44 20 7183 8750": "2071838750",
}


def call_with_numbers() -> dict:
    return fresh_event(
        "failed-outbound",
        errorMessage="SIP 503 from +14155550188 via +1 415-555-0142",
        summary="Asked to be called back on (415) 555-0143 after 5pm on 2026-11-20.",
        transcript=[
            {"role": "assistant", "content": "Which number should we use?"},
            {"role": "user", "content": "Try +1-415-555-0148, or my office +44 20 7183 8750."},
        ],
        hangupCause="SIP_ERROR",
    )


def rendered_text(message: object) -> str:
    return json.dumps(message, ensure_ascii=False)


@pytest.mark.parametrize("rules", [RULES, DIGEST_RULES], ids=["call", "digest"])
def test_every_default_message_masks_numbers_however_written(rules: str) -> None:
    config = parse_config(rules, "rules.yaml", environ={})
    result = preview(config, call_with_numbers(), at=datetime.fromtimestamp(1.8e9, UTC))
    messages = {delivery.sink: delivery.message for delivery in result.deliveries}
    assert set(messages) == {"slack", "email", "teams", "pagerduty", "log"}
    for sink, message in messages.items():
        assert message is not None, sink
        text = rendered_text(message)
        digits = re.sub(r"\D", "", text)
        for written, national in WRITTEN.items():
            assert written not in text, (sink, written)
            assert national not in digits, (sink, written)


def test_the_default_call_messages_show_where_numbers_were() -> None:
    config = parse_config(RULES, "rules.yaml", environ={})
    result = preview(config, call_with_numbers())
    messages = {delivery.sink: rendered_text(delivery.message) for delivery in result.deliveries}
    for sink in ("slack", "email"):
        text = messages[sink]
        assert "SIP 503 from +1415•••0188 via +1415•••0142" in text, sink
        assert "called back on +1415•••0143 after 5pm on 2026-11-20" in text, sink
        assert "+1415•••0148" in text and "+4420•••8750" in text, sink
