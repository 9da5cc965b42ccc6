"""The console's drawing of Slack messages (what Slack shows, and never markup from the
message itself) and its masking of secrets in rules.yaml."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from router.web.ui.views import masked_rules_text
from sinks.base import DeliveryRequest
from sinks.slack.message import build_message
from sinks.slack.preview import blocks_html, message_html, mrkdwn_html
from tests.conftest import sample

ALLOWED_TAGS = {"div", "span", "b", "i", "s", "code", "pre", "br", "a", "hr"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


@given(st.text(max_size=300))
def test_no_text_can_add_markup_to_the_drawing(text: str) -> None:
    message = {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": text}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": text}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]},
        ],
    }
    for tag, attrs in tags_of(str(message_html(message))):
        assert tag in ALLOWED_TAGS, tag
        assert not any(name.startswith("on") for name in attrs), attrs
        if tag == "a":
            assert (attrs.get("href") or "").lower().startswith(("http://", "https://"))


def test_script_and_attribute_breakouts_are_shown_as_text() -> None:
    drawn = str(mrkdwn_html('<script>alert(1)</script> "><img src=x onerror=alert(2)>'))
    assert "<script" not in drawn and "<img" not in drawn
    assert "&lt;script&gt;" in drawn and "&lt;img src=x onerror=alert(2)&gt;" in drawn


def test_slack_entities_are_shown_as_the_characters_slack_shows() -> None:
    assert str(mrkdwn_html("a &lt;b&gt; &amp; c")) == "a &lt;b&gt; &amp; c"
    assert "&amp;lt;" not in str(mrkdwn_html("&lt;!channel&gt;"))


def test_mrkdwn_formatting_links_mentions_and_dates() -> None:
    drawn = str(
        mrkdwn_html(
            "*bold* _it_ ~gone~ `code` <https://example.com/x?a=1&amp;b=2|the link> "
            "<!channel> <@U123> <!date^1795186931^{date_short_pretty}|fallback>\n```a\nb```"
        )
    )
    assert "<b>bold</b>" in drawn and "<i>it</i>" in drawn and "<s>gone</s>" in drawn
    assert "<code>code</code>" in drawn
    assert '<a href="https://example.com/x?a=1&amp;b=2"' in drawn and ">the link</a>" in drawn
    assert '<span class="mention">@channel</span>' in drawn
    assert '<span class="mention">@U123</span>' in drawn
    assert "Nov 20, 2026 at 3:02 PM" in drawn
    assert "<pre>a\nb</pre>" in drawn


def test_a_javascript_link_is_not_a_link() -> None:
    drawn = str(mrkdwn_html("<javascript:alert(1)|click>"))
    assert "<a " not in drawn and "click" in drawn


def test_the_default_alert_is_drawn_block_by_block() -> None:
    event = sample("failed-outbound")
    message = build_message(DeliveryRequest("d", event["id"], "ops-slack", "failed-calls", event))
    drawn = str(blocks_html(message))
    assert '<div class="header">🔴 FAILED outbound call</div>' in drawn
    assert "<b>Caller</b>" in drawn
    assert "rule <code>failed-calls</code>" in drawn


def test_a_message_without_blocks_shows_its_text() -> None:
    assert "<b>hi</b>" in str(blocks_html({"text": "*hi*"}))


def test_odd_blocks_are_skipped_not_fatal() -> None:
    message = {"blocks": [None, {"type": "mystery"}, {"type": "section", "fields": "x"}, 3]}
    assert str(blocks_html(message)) == ""


RULES = """version: 1
sinks:
  slack:
    type: slack
    webhook_url: https://hooks.slack.com/services/T0/B0/literal-webhook-secret
  crm:
    type: http
    url: ${CRM_URL}
    headers: {Authorization: "Bearer ${CRM_TOKEN}", X-Key: "inline-header-secret"}
    signing_secret: ${SIGNING:-whsec_default-secret-value}
  mail:
    type: email
    password: "hunter2hunter2"  # a literal
    token: Bearer ${MAIL_TOKEN}
"""


def test_secret_settings_are_masked_and_variable_references_stay() -> None:
    masked = masked_rules_text(RULES, ["inline-header-secret"])
    for secret in (
        "literal-webhook-secret",
        "hooks.slack.com/services",
        "inline-header-secret",
        "whsec_default-secret-value",
        "hunter2hunter2",
    ):
        assert secret not in masked, secret
    assert "url: ${CRM_URL}" in masked
    assert "${SIGNING:-***}" in masked
    assert "token: Bearer ${MAIL_TOKEN}" in masked
    assert "Bearer ${CRM_TOKEN}" in masked
    assert json.dumps(masked).count("***") >= 4
