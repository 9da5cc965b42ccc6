"""A digest's group key in a Slack header and an email subject shows phone numbers masked."""

from __future__ import annotations

from typing import Any

from sinks.base import DeliveryRequest, Digest
from sinks.email.message import render_content
from sinks.email.settings import EmailSinkConfig
from sinks.slack.message import build_message

CALL = {"id": "call-1", "status": "FAILED", "direction": "INBOUND", "fromNumber": "+14155550123"}
DIGEST = Digest(
    {"fromNumber": "+14155550123", "sipTrunkId": "trunk-main"},
    "2026-11-20T15:00:00+00:00",
    "2026-11-20T15:02:00+00:00",
    [CALL, CALL],
)
REQUEST = DeliveryRequest("del-1", "call-1", "ops", "repeat-caller", CALL, digest=DIGEST)


def email_config(**settings: Any) -> EmailSinkConfig:
    return EmailSinkConfig.model_validate(
        {"type": "email", "from": "router@example.com", "to": ["ops@example.com"], **settings}
    )


def test_the_slack_digest_header_masks_a_phone_number_in_the_group_key() -> None:
    message = build_message(REQUEST)
    header = message["blocks"][0]["text"]["text"]
    assert header.endswith("· fromNumber=+1415•••0123, sipTrunkId=trunk-main")
    assert "+14155550123" not in str(message)


def test_the_slack_digest_header_shows_the_number_with_masking_off() -> None:
    header = build_message(REQUEST, mask_phone_numbers=False)["blocks"][0]["text"]["text"]
    assert "fromNumber=+14155550123" in header


def test_the_email_digest_subject_masks_a_phone_number_in_the_group_key() -> None:
    content = render_content(email_config(), REQUEST)
    assert content.subject == (
        "[revring] 2 calls matched repeat-caller (fromNumber=+1415•••0123, sipTrunkId=trunk-main)"
    )
    assert "+14155550123" not in content.text and "+14155550123" not in (content.html or "")


def test_the_email_digest_subject_shows_the_number_with_masking_off() -> None:
    content = render_content(email_config(mask_phone=False), REQUEST)
    assert "fromNumber=+14155550123" in content.subject
