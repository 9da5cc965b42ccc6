"""The Slack message: default alert per sample, escaping, Slack's limits, template overrides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.core.templates import Template, TemplateKind
from sinks.base import DeliveryRequest, Digest, Permanent
from sinks.call_text import MAX_LINK_URL, safe_link
from sinks.slack.message import (
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_CONTEXT_ELEMENTS,
    MAX_CONTEXT_TEXT,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_FIELDS,
    MAX_SECTION_TEXT,
    build_message,
    fit_blocks,
    truncate_mrkdwn,
)
from tests.conftest import SAMPLES_DIR

SAMPLES = SAMPLES_DIR
INJECTIONS = ["<!channel>", "<!here>", "<https://evil.example|click>", "Tom & Jerry"]


def load(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def request(event: dict[str, Any], digest: Digest | None = None) -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id="del-1",
        event_id=str(event.get("id")),
        sink="ops-slack",
        rule="failed-calls",
        event=event,
        digest=digest,
    )


def all_mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    texts = [message["text"]]
    for block in message.get("blocks", []):
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [field["text"] for field in block.get("fields", [])]
        texts += [element["text"] for element in block.get("elements", []) if "url" not in element]
    return texts


def assert_within_limits(message: dict[str, Any]) -> None:
    assert len(message["text"]) <= MAX_MESSAGE_TEXT
    blocks = message.get("blocks", [])
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_TEXT
            assert "\n" not in block["text"]["text"]
        elif kind == "section":
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= MAX_SECTION_TEXT
            assert len(block.get("fields", [])) <= MAX_SECTION_FIELDS
            for field in block.get("fields", []):
                assert 0 < len(field["text"]) <= MAX_FIELD_TEXT
        elif kind == "context":
            assert len(block["elements"]) <= MAX_CONTEXT_ELEMENTS
            for element in block["elements"]:
                assert len(element["text"]) <= MAX_CONTEXT_TEXT
        elif kind == "actions":
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= MAX_BUTTON_TEXT
                assert len(element["url"]) <= MAX_LINK_URL


def block_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [block for block in message["blocks"] if block["type"] == kind]


def field_texts(message: dict[str, Any]) -> list[str]:
    return [field["text"] for field in block_of(message, "section")[0]["fields"]]


@pytest.mark.parametrize(
    ("sample", "emoji", "has_button"),
    [
        ("failed-outbound", ":red_circle:", False),
        ("completed-inbound", ":white_check_mark:", True),
        ("minimal-canceled", ":no_entry_sign:", False),
        ("voicemail-outbound", ":white_check_mark:", True),
    ],
)
def test_default_alert_for_each_sample(sample: str, emoji: str, has_button: bool) -> None:
    event = load(sample)
    message = build_message(request(event))

    header = block_of(message, "header")[0]["text"]["text"]
    assert header == f"{emoji} {event['status']} {event['direction'].lower()} call"
    assert message["text"].startswith(f"{emoji} {event['status']}")
    assert bool(block_of(message, "actions")) is has_button
    context = block_of(message, "context")[0]["elements"][0]["text"]
    assert event["id"] in context and "failed-calls" in context
    assert_within_limits(message)
    json.dumps(message)


def test_numbers_are_masked_by_default_and_shown_with_mask_phone_false() -> None:
    event = load("completed-inbound")
    masked = build_message(request(event))
    shown = build_message(request(event), mask_phone_numbers=False)

    assert "*Caller*\n+1415•••0123" in field_texts(masked)
    assert "*Callee*\n+1415•••0199" in field_texts(masked)
    assert "+14155550123" not in json.dumps(masked)
    assert "*Caller*\n+14155550123" in field_texts(shown)
    assert "*Callee*\n+14155550199" in field_texts(shown)
    assert "+14155550123" in shown["text"]


def test_completed_call_shows_agent_duration_cause_summary_transcript_and_recording() -> None:
    message = build_message(request(load("completed-inbound")))
    fields = field_texts(message)
    assert "*Agent*\nAva" in fields
    assert "*Duration*\n1m 48s" in fields
    assert "*Hang-up cause*\nUSER_ENDED" in fields
    sections = [block["text"]["text"] for block in block_of(message, "section") if "text" in block]
    assert any(text.startswith("*Summary*\nCaller rescheduled") for text in sections)
    assert any("agent: Thanks for calling Acme Dental" in text for text in sections)
    button = block_of(message, "actions")[0]["elements"][0]
    assert button["url"] == "https://recordings.example.com/3c90c3cc.mp3"


def test_failed_call_shows_the_error_and_skips_missing_fields() -> None:
    message = build_message(request(load("failed-outbound")))
    sections = [block["text"]["text"] for block in block_of(message, "section") if "text" in block]
    assert sections == ["*:warning: Error*\nSIP 503 Service Unavailable from carrier"]
    labels = [text.split("\n")[0] for text in field_texts(message)]
    assert labels == ["*Caller*", "*Callee*", "*Agent*", "*When*"]
    assert message["text"].endswith(": SIP 503 Service Unavailable from carrier")


def test_minimal_event_with_only_required_fields_renders() -> None:
    event = {
        "id": "5e0c2f1a-8b7d-4e6c-9a3b-2d1f0e9c8b7a",
        "direction": "INBOUND",
        "status": "CANCELED",
        "fromNumber": None,
        "toNumber": "",
        "agentId": "a1",
    }
    message = build_message(request(event))
    assert field_texts(message)[:2] == ["*Caller*\n–", "*Callee*\n–"]
    assert_within_limits(message)


def test_an_empty_object_is_left_out_like_empty_text_as_in_every_other_sink() -> None:
    """A field holding `{}` has nothing to say: no section, field or `{}` in the alert, and
    `none` in a digest's breakdown, the way the Teams card and PagerDuty read it."""
    empty = ("summary", "errorMessage", "hangupCause", "durationSeconds", "startedAt")
    event = load("failed-outbound") | {key: {} for key in empty} | {"direction": {}}
    message = build_message(request(event))
    assert "{}" not in json.dumps(message)
    assert block_of(message, "section")[1:] == []
    labels = [text.split("\n")[0] for text in field_texts(message)]
    assert labels == ["*Caller*", "*Callee*", "*Agent*", "*When*"]  # initiatedAt
    assert "unknown-direction call" in block_of(message, "header")[0]["text"]["text"]
    digest = Digest({"status": "FAILED"}, "2026-11-20T15:00:00Z", "2026-11-20T15:02:00Z", [event])
    assert "*By hang-up cause*\nnone ×1" in field_texts(build_message(request(event, digest)))


def test_unknown_status_gets_the_question_mark() -> None:
    event = load("failed-outbound") | {"status": "ON_HOLD", "direction": "SIDEWAYS"}
    header = block_of(build_message(request(event)), "header")[0]["text"]["text"]
    assert header == ":grey_question: ON_HOLD sideways call"


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "TRANSFERRED", "CANCELED"])
def test_every_known_status_has_its_emoji(status: str) -> None:
    expected = {
        "COMPLETED": ":white_check_mark:",
        "FAILED": ":red_circle:",
        "TRANSFERRED": ":arrow_right_hook:",
        "CANCELED": ":no_entry_sign:",
    }[status]
    event = load("completed-inbound") | {"status": status}
    assert build_message(request(event))["text"].startswith(expected)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x.example/a", "/relative", 42])
def test_recording_button_only_for_http_urls(url: object) -> None:
    event = load("completed-inbound") | {"recordingUrl": url}
    assert block_of(build_message(request(event)), "actions") == []


def test_too_long_recording_url_drops_the_button() -> None:
    url = "https://recordings.example.com/" + "a" * MAX_LINK_URL
    event = load("completed-inbound") | {"recordingUrl": url}
    assert block_of(build_message(request(event)), "actions") == []
    assert safe_link("https://ok.example/x.mp3") == "https://ok.example/x.mp3"


@pytest.mark.parametrize("attack", INJECTIONS)
def test_event_text_is_escaped_everywhere(attack: str) -> None:
    event = load("completed-inbound") | {
        "transcript": [{"role": "user", "content": attack}],
        "summary": attack,
        "agentName": attack,
        "errorMessage": attack,
        "hangupCause": attack,
        "id": attack,
    }
    message = build_message(request(event))
    escaped = attack.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    rendered = "\n".join(all_mrkdwn_texts(message))
    assert attack not in rendered.replace(escaped, "")
    assert escaped in rendered
    for text in all_mrkdwn_texts(message):
        assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text


def test_huge_transcript_and_summary_stay_within_every_limit() -> None:
    huge = "x<&>" * 12_500
    event = load("completed-inbound") | {
        "summary": huge,
        "errorMessage": huge,
        "agentName": huge,
        "hangupCause": huge,
        "status": "S" * 500,
        "transcript": [{"role": "user", "content": huge}] * 50,
    }
    message = build_message(request(event))
    assert_within_limits(message)
    summary = next(
        block["text"]["text"]
        for block in block_of(message, "section")
        if block.get("text", {}).get("text", "").startswith("*Summary*")
    )
    assert summary.endswith("…") and MAX_SECTION_TEXT - 4 <= len(summary) <= MAX_SECTION_TEXT
    assert "&l…" not in summary and "&lt…" not in summary and "&a…" not in summary


def test_huge_plain_transcript_string_is_bounded() -> None:
    event = load("completed-inbound") | {"transcript": "word " * 10_000}
    assert_within_limits(build_message(request(event)))


def test_fit_blocks_never_allows_more_than_fifty_blocks_or_oversized_parts() -> None:
    many = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 5000}}] * 80
    many.insert(0, {"type": "header", "text": {"type": "plain_text", "text": "h\n" * 200}})
    many.insert(1, {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 3000}] * 15})
    many.insert(2, {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 20})
    many.insert(
        3,
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "b" * 100}, "url": u}
                for u in ("https://ok.example", "javascript:alert(1)")
            ],
        },
    )
    fitted = fit_blocks(many)
    assert len(fitted) == MAX_BLOCKS
    assert_within_limits({"text": "", "blocks": fitted})
    assert len(fitted[3]["elements"]) == 1
    assert len(many[0]["text"]["text"]) == 400, "fit_blocks must not modify its input"


def test_truncate_mrkdwn_never_splits_an_entity() -> None:
    assert truncate_mrkdwn("ab&lt;cd", 5) == "ab…"
    assert truncate_mrkdwn("abc", 3) == "abc"
    assert truncate_mrkdwn("abcdef", 4) == "abc…"


def test_text_template_replaces_the_message_with_escaped_text() -> None:
    template = Template(
        "{{ status }} call from {{ fromNumber | mask_phone }}: {{ summary }} <!here>",
        TemplateKind.SLACK,
    )
    event = load("completed-inbound") | {"summary": "<!channel> now"}
    message = build_message(request(event), text_template=template)
    assert message == {"text": "COMPLETED call from +1415•••0123: &lt;!channel&gt; now <!here>"}


def test_blocks_template_replaces_the_blocks_and_keeps_the_default_fallback() -> None:
    template = Template(
        '[{"type": "section", "text": {"type": "mrkdwn", "text": {{ summary | tojson }}}},'
        ' {"type": "context", "elements": [{"type": "mrkdwn", "text": "rule {{ rule }}"}]}]',
        TemplateKind.SLACK,
    )
    event = load("completed-inbound") | {"summary": '<!channel> "quoted" & more'}
    message = build_message(request(event), blocks_template=template)
    assert message["blocks"] == [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": '&lt;!channel&gt; "quoted" &amp; more'},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "rule failed-calls"}]},
    ]
    assert message["text"].startswith(":white_check_mark: COMPLETED inbound call")


def test_blocks_template_output_is_fitted_to_limits() -> None:
    template = Template(
        '[{% for i in range(60) %}{"type": "section", "text": {"type": "mrkdwn",'
        ' "text": {{ summary | tojson }}}}{{ "," if not loop.last }}{% endfor %}]',
        TemplateKind.SLACK,
    )
    event = load("completed-inbound") | {"summary": "z" * 9000}
    message = build_message(request(event), blocks_template=template)
    assert_within_limits(message)
    assert len(message["blocks"]) == MAX_BLOCKS


@pytest.mark.parametrize(
    "source", ['[{"type": "section", "text": {{ summary }}}]', '{"type": "section"}', "[1, 2]"]
)
def test_blocks_template_that_is_not_a_json_array_of_blocks_is_permanent(source: str) -> None:
    template = Template(source, TemplateKind.SLACK)
    with pytest.raises(Permanent, match=r"^slack: blocks template"):
        build_message(request(load("completed-inbound")), blocks_template=template)


def test_template_failing_on_an_event_is_permanent() -> None:
    template = Template("{{ durationSeconds + 'seconds' }}", TemplateKind.SLACK)
    with pytest.raises(Permanent, match="TypeError"):
        build_message(request(load("completed-inbound")), text_template=template)


def test_a_value_the_call_lacks_renders_empty_in_the_text() -> None:
    template = Template("tier: {{ variables.no_such_key }}.", TemplateKind.SLACK)
    message = build_message(request(load("completed-inbound")), text_template=template)
    assert message["text"] == "tier: ."


def test_digest_lists_calls_with_breakdowns_and_stays_within_limits() -> None:
    failed = load("failed-outbound")
    calls = [failed | {"id": f"call-{n}", "summary": "<!channel>"} for n in range(40)]
    digest = Digest(
        group_key={"sipTrunkId": "trunk-main"},
        window_start="2026-11-20T15:00:00Z",
        window_end="2026-11-20T15:02:00Z",
        calls=calls,
    )
    message = build_message(request(failed, digest=digest))
    assert_within_limits(message)
    assert block_of(message, "header")[0]["text"]["text"].startswith(":bellhop_bell: 40 calls")
    listing = block_of(message, "section")[1]["text"]["text"]
    assert listing.count("\n• ") == 10 and listing.endswith("…and 30 more")
    assert "*By status*\nFAILED ×40" in field_texts(message)
    assert "+14155550199" not in json.dumps(message)


def test_digest_context_is_given_to_templates() -> None:
    template = Template("{{ count }} calls on {{ group_key.sipTrunkId }}", TemplateKind.SLACK)
    failed = load("failed-outbound")
    digest = Digest({"sipTrunkId": "trunk-main"}, "a", "b", [failed, failed])
    message = build_message(request(failed, digest=digest), text_template=template)
    assert message == {"text": "2 calls on trunk-main"}
