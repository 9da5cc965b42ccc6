"""The email message built for a delivery: headers, safety against injection, encoding, parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from router.core.templates import TemplateRenderError
from sinks.base import DeliveryRequest, Digest, Permanent, SinkResources
from sinks.email.headers import clean_header_value, parse_mailbox
from sinks.email.message import (
    WIRE_POLICY,
    build_message,
    envelope_recipients,
    envelope_sender,
    message_id_for,
)
from sinks.email.settings import EmailSinkConfig
from sinks.email.sink import EmailSink
from tests.conftest import SAMPLES_DIR

SAMPLES = SAMPLES_DIR
NOW = datetime(2026, 11, 20, 15, 5, tzinfo=UTC)
INJECTION = "boom\r\nBcc: evil@x.example\r\nX-Evil: 1"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def config(**overrides: Any) -> EmailSinkConfig:
    settings: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "from": "Call Router <router@example.com>",
        "to": ["support@example.com"],
    }
    settings.update(overrides)
    return EmailSinkConfig.model_validate(settings)


def request(event: dict[str, Any], **overrides: Any) -> DeliveryRequest:
    values: dict[str, Any] = {
        "delivery_id": "dlv-42",
        "event_id": str(event.get("id")),
        "sink": "support-email",
        "rule": "failed-calls",
        "event": event,
    }
    values.update(overrides)
    return DeliveryRequest(**values)


def wire(cfg: EmailSinkConfig, req: DeliveryRequest) -> bytes:
    return build_message(cfg, req, now=NOW).as_bytes(policy=WIRE_POLICY)


def body(message: EmailMessage, subtype: str) -> str:
    """A part's text with the wire's CRLF line ends made plain again."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def test_default_subjects_for_the_samples() -> None:
    subjects = {
        name: parsed(wire(config(), request(sample(name))))["Subject"]
        for name in (
            "failed-outbound",
            "completed-inbound",
            "minimal-canceled",
            "voicemail-outbound",
        )
    }
    assert subjects == {
        "failed-outbound": "[revring] FAILED outbound call +1415•••0199 → +4420•••8750",
        "completed-inbound": "[revring] COMPLETED inbound call +1415•••0123 → +1415•••0199",
        "minimal-canceled": "[revring] CANCELED inbound call +1415•••0188 → +1415•••0199",
        "voicemail-outbound": "[revring] COMPLETED outbound call +1415•••0199 → +1415•••0142",
    }


def test_default_text_body_lays_out_the_call() -> None:
    message = parsed(wire(config(), request(sample("completed-inbound"))))
    text = body(message, "plain")
    for expected in (
        "COMPLETED inbound call",
        "Status:        COMPLETED",
        "Direction:     INBOUND",
        "From:          +1415•••0123",
        "To:            +1415•••0199",
        "Agent:         Ava",
        "Duration:      1m 48s",
        "Hang-up cause: USER_ENDED",
        "Summary:\n  Caller rescheduled a cleaning to Friday 10am.",
        "  agent: Thanks for calling Acme Dental, this is Ava. How can I help?",
        "Recording:     https://recordings.example.com/3c90c3cc.mp3",
        "Call ID:       3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "Rule:          failed-calls",
        "\n-- \n",
    ):
        assert expected in text
    assert "+14155550123" not in text


def test_default_text_shows_the_error_of_a_failed_call() -> None:
    message = parsed(wire(config(), request(sample("failed-outbound"))))
    text = body(message, "plain")
    assert "Error:         SIP 503 Service Unavailable from carrier" in text
    assert "Duration:      -" in text
    assert "Recording" not in text


def test_default_html_part_lays_out_the_call() -> None:
    message = parsed(wire(config(), request(sample("completed-inbound"))))
    assert message.get_content_type() == "multipart/alternative"
    html = body(message, "html")
    assert "<strong>COMPLETED inbound call</strong>" in html
    assert '<a href="https://recordings.example.com/3c90c3cc.mp3">' in html
    assert "1m 48s" in html and "+1415•••0123" in html and "USER_ENDED" in html
    assert "I&#39;d like to move my cleaning to Friday." in html


def test_mask_phone_false_shows_full_numbers() -> None:
    message = parsed(wire(config(mask_phone=False), request(sample("failed-outbound"))))
    assert message["Subject"] == "[revring] FAILED outbound call +14155550199 → +442071838750"


def test_standard_headers_and_stable_message_id() -> None:
    cfg = config(
        cc=["Ops <ops@example.com>"], bcc=["audit@example.com"], reply_to="help@example.com"
    )
    first = parsed(wire(cfg, request(sample("failed-outbound"), attempt=1)))
    second = parsed(wire(cfg, request(sample("failed-outbound"), attempt=2)))
    assert first["Message-ID"] == second["Message-ID"] == "<revring.dlv-42@example.com>"
    assert first["From"] == "Call Router <router@example.com>"
    assert first["To"] == "support@example.com"
    assert first["Cc"] == "Ops <ops@example.com>"
    assert first["Reply-To"] == "help@example.com"
    assert first["MIME-Version"] == "1.0"
    assert first["Date"].datetime == NOW
    assert first["Auto-Submitted"] == "auto-generated"
    assert "Bcc" not in first
    assert b"audit@example.com" not in wire(cfg, request(sample("failed-outbound")))
    assert envelope_recipients(cfg) == [
        "support@example.com",
        "ops@example.com",
        "audit@example.com",
    ]
    assert envelope_sender(cfg) == "router@example.com"


def test_message_id_survives_odd_delivery_ids_and_senders() -> None:
    assert message_id_for("a b\r\n<c>", "x@example.com") == "<revring.a-b-c-@example.com>"
    assert message_id_for("7", "not an address") == "<revring.7@revring-router>"


@pytest.mark.parametrize("field", ["summary", "agentName", "status", "direction", "fromNumber"])
def test_event_data_cannot_add_headers(field: str) -> None:
    event = sample("completed-inbound") | {field: INJECTION}
    cfg = config(subject="{{ summary }} / {{ agentName }} / {{ status }}")
    for settings in (config(), cfg):
        data = wire(settings, request(event))
        message = parsed(data)
        assert "Bcc" not in message and "X-Evil" not in message
        assert b"\r\nBcc:" not in header_block(data)
        assert b"\r\nX-Evil:" not in header_block(data)
        assert "\n" not in message["Subject"] and "\r" not in message["Subject"]


def test_delivery_values_cannot_add_headers() -> None:
    event = sample("failed-outbound") | {"id": INJECTION}
    data = wire(config(), request(event, rule=INJECTION, delivery_id=INJECTION))
    message = parsed(data)
    assert "Bcc" not in message and "X-Evil" not in message
    assert message["X-RevRing-Rule"] == "boom Bcc: evil@x.example X-Evil: 1"
    assert message["X-RevRing-Call-Id"] == "boom Bcc: evil@x.example X-Evil: 1"


def test_addresses_with_line_breaks_are_rejected_by_the_config() -> None:
    for key, value in (
        ("to", ["a@example.com\r\nBcc: evil@x.example"]),
        ("from", "Router <r@example.com>\nBcc: evil@x.example"),
        ("cc", ["not-an-address"]),
        ("reply_to", "a@example.com, b@example.com"),
    ):
        with pytest.raises(ValidationError):
            config(**{key: value})


def test_clean_header_value_drops_every_kind_of_line_break() -> None:
    assert clean_header_value("a\r\nb\nc\rd\u2028e\x00f\x85g\tz") == "a b c d e f g z"


def test_non_ascii_subject_and_display_name_are_encoded_on_the_wire() -> None:
    cfg = config(
        **{"from": "Équipe Appels <router@example.com>"},
        to=["Zoë Müller <zoe@example.com>"],
        subject="Appel échoué — {{ agentName }}",
    )
    data = wire(cfg, request(sample("failed-outbound") | {"agentName": "Ève"}))
    head = header_block(data)
    assert head.isascii()
    assert b"=?utf-8?" in head
    message = parsed(data)
    assert message["Subject"] == "Appel échoué — Ève"
    assert message["From"].addresses[0].display_name == "Équipe Appels"
    assert message["To"].addresses[0].display_name == "Zoë Müller"


def test_non_ascii_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="non-ASCII"):
        parse_mailbox("José <josé@example.com>")


def test_html_part_escapes_event_data() -> None:
    event = sample("completed-inbound") | {
        "summary": "<script>alert(1)</script> & <b>bold</b>",
        "agentName": '"><img src=x onerror=alert(1)>',
        "recordingUrl": "javascript:alert(1)",
        "transcript": [{"role": "user", "content": "<a href='http://evil'>x</a>"}],
    }
    html = body(parsed(wire(config(), request(event))), "html")
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "href='http://evil'" not in html
    assert 'href="javascript:' not in html


def test_custom_html_template_autoescapes_but_keeps_its_own_markup() -> None:
    cfg = config(body="{{ summary }}", html="<p><em>{{ summary }}</em></p>")
    event = sample("completed-inbound") | {"summary": "<script>x</script>"}
    message = parsed(wire(cfg, request(event)))
    assert body(message, "html").strip() == ("<p><em>&lt;script&gt;x&lt;/script&gt;</em></p>")
    assert body(message, "plain").strip() == "<script>x</script>"


def test_custom_body_without_html_sends_text_only() -> None:
    cfg = config(subject="{{ status }} call {{ id }}", body="Call {{ id }} ended: {{ status }}")
    message = parsed(wire(cfg, request(sample("failed-outbound"))))
    assert message.get_content_type() == "text/plain"
    assert message["Subject"] == "FAILED call 9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901"
    assert (
        message.get_content().strip() == "Call 9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901 ended: FAILED"
    )


def test_templates_see_the_delivery_values() -> None:
    cfg = config(body="{{ rule }} {{ sink }} {{ delivery_id }} {{ fromNumber | mask_phone }}")
    message = parsed(wire(cfg, request(sample("failed-outbound"))))
    assert message.get_content().strip() == "failed-calls support-email dlv-42 +1415•••0199"


def test_a_failing_template_is_a_permanent_failure_of_render() -> None:
    cfg = config(subject="{{ status + 1 }}")
    with pytest.raises(TemplateRenderError):
        build_message(cfg, request(sample("failed-outbound")), now=NOW)
    sink = EmailSink("support-email", cfg, SinkResources())
    with pytest.raises(Permanent, match="TypeError"):
        sink.preview(request(sample("failed-outbound")))


def test_render_is_json_able_and_shows_what_is_sent() -> None:
    sink = EmailSink("support-email", config(bcc="audit@example.com"), SinkResources())
    view = sink.preview(request(sample("failed-outbound")))
    assert json.loads(json.dumps(view)) == view
    assert (
        view["headers"]["Subject"] == "[revring] FAILED outbound call +1415•••0199 → +4420•••8750"
    )
    assert "Bcc" not in view["headers"]
    assert view["envelope"] == {
        "from": "router@example.com",
        "to": ["support@example.com", "audit@example.com"],
    }
    assert "SIP 503" in view["text"] and "SIP 503" in view["html"]


def test_long_subjects_are_cut() -> None:
    cfg = config(subject="{{ summary }}")
    event = sample("completed-inbound") | {"summary": "x" * 1000}
    assert len(parsed(wire(cfg, request(event)))["Subject"]) == 250


def test_digest_lists_its_calls() -> None:
    calls = [sample("failed-outbound"), sample("failed-outbound") | {"id": "second"}]
    digest = Digest(
        {"sipTrunkId": "trunk-main"}, "2026-11-20T15:00:00Z", "2026-11-20T15:02:00Z", calls
    )
    message = parsed(wire(config(), request({}, rule="trunk-outage", digest=digest)))
    assert message["Subject"] == "[revring] 2 calls matched trunk-outage (sipTrunkId=trunk-main)"
    assert "X-RevRing-Call-Id" not in message
    text = body(message, "plain")
    assert "By status:        FAILED 2" in text
    assert "FAILED outbound call · +1415•••0199 → +4420•••8750 · - · SIP 503" in text
    assert "second" in text


def test_empty_settings_make_the_sink_unconfigured() -> None:
    cfg = config(**{"from": ""}, to=[""], username="user", password="")
    assert cfg.missing_settings() == ["from", "to", "password"]
    assert config().missing_settings() == []


def test_long_non_ascii_headers_fold_without_losing_or_adding_spaces() -> None:
    subject = "Appel échoué → " + " ".join(f"mot{i} é•→" for i in range(20))
    names = [
        "Équipe des Appels Sortants de la Région Île-de-France Nord <a@example.com>",
        "Zoë Müller <z@example.com>",
        "plain@example.com",
    ]
    cfg = config(to=names, subject=subject)
    data = wire(cfg, request(sample("failed-outbound")))
    head = header_block(data)
    assert head.isascii()
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = parsed(data)
    assert message["Subject"] == subject
    assert [str(address) for address in message["To"].addresses] == [
        "Équipe des Appels Sortants de la Région Île-de-France Nord <a@example.com>",
        "Zoë Müller <z@example.com>",
        "plain@example.com",
    ]


def test_the_wire_message_is_seven_bit_clean() -> None:
    # A server that does not offer 8BITMIME must still get an intact message.
    data = wire(config(), request(sample("completed-inbound")))
    assert data.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"Content-Transfer-Encoding: 8bit" not in data
