"""The `log` sink's line: phone numbers masked wherever they appear, digests complete."""

from __future__ import annotations

from typing import Any

from sinks.base import DeliveryRequest, Digest, SinkResources
from sinks.log import LogSink, LogSinkConfig

CALL = {
    "id": "call-1",
    "direction": "OUTBOUND",
    "status": "FAILED",
    "fromNumber": "+14155550123",
    "toNumber": "+442071838750",
    "organizationId": "org",
    "agentId": "agent",
    "summary": "Caller asked to be called back on +14155550123 or +442071838750.",
    "errorMessage": "SIP 486 from +442071838750",
}
DIGEST = Digest(
    group_key={"fromNumber": "+14155550123", "variables.ids": ["+14155550188", 7]},
    window_start="2026-11-20T15:00:00+00:00",
    window_end="2026-11-20T15:02:00+00:00",
    calls=[CALL, {**CALL, "id": "call-2"}],
)


def rendered(digest: Digest | None = None, **settings: Any) -> dict[str, Any]:
    config = LogSinkConfig(type="log", **settings)
    request = DeliveryRequest("del-1", "call-1", "console", "rule", CALL, digest=digest)
    line: dict[str, Any] = LogSink("console", config, SinkResources()).preview(request)
    return line


def test_phone_numbers_in_summary_error_and_group_key_are_masked() -> None:
    line = rendered(DIGEST)
    assert line["summary"] == "Caller asked to be called back on +1415•••0123 or +4420•••8750."
    assert line["errorMessage"] == "SIP 486 from +4420•••8750"
    assert line["group_key"] == {"fromNumber": "+1415•••0123", "variables.ids": ["+1415•••0188", 7]}
    assert (line["from"], line["to"]) == ("+1415•••0123", "+4420•••8750")


def test_mask_phone_false_shows_the_numbers() -> None:
    line = rendered(DIGEST, mask_phone=False)
    assert line["summary"] == CALL["summary"]
    assert line["group_key"] == dict(DIGEST.group_key)


def test_a_digest_text_template_sees_the_digest() -> None:
    template = (
        "{{ count }} calls ({{ calls | length }}) on {{ group_key.fromNumber | mask_phone }}"
        " from {{ window_start }} to {{ window_end }}"
    )
    line = rendered(DIGEST, text=template)
    assert line["text"] == (
        "2 calls (2) on +1415•••0123 from 2026-11-20T15:00:00+00:00 to 2026-11-20T15:02:00+00:00"
    )
