"""The email page shows the default message the sink renders for the failed sample."""

from __future__ import annotations

import json

from router.config.schema import parse_config
from sinks.base import DeliveryRequest, SinkResources
from sinks.email.sink import EmailSink
from tests.docs import ROOT, blocks, section

SINK = (
    "version: 1\nsinks:\n  support-email:\n    type: email\n    host: smtp.example.com\n"
    '    from: "Call Router <router@example.com>"\n    to: [support@example.com]\n'
)


def test_the_page_shows_the_default_subject_and_text_for_the_failed_sample() -> None:
    [shown] = blocks(section("sinks/email.md", "What the message carries"), "text")
    config = parse_config(SINK, "rules.yaml")
    event = json.loads((ROOT / "samples" / "failed-outbound.json").read_text())
    request = DeliveryRequest("dlv-1", event["id"], "support-email", "failed-calls", event)
    rendered = EmailSink("support-email", config.sinks["support-email"], SinkResources()).preview(
        request
    )
    assert shown == f"Subject: {rendered['headers']['Subject']}\n\n{rendered['text']}"
