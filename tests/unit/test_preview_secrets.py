"""A preview (`route --render`, the console's playground) never carries a usable
credential: an HTTP request's Standard Webhooks signature shows as `v1,***` (a real one
signs whatever body the viewer typed), and no secret value of any sink's settings, nor of
a secret-named variable rules.yaml reads, appears anywhere in what it shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from router.config.schema import parse_config
from router.engine.preview import preview
from sinks.base import DeliveryRequest, SinkResources
from sinks.registry import build_sink
from tests.conftest import fresh_event

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVIRON = {
    "CRM_TOKEN": "crm-bearer-7d3f9a1c",
    "CRM_API_KEY": "body-key-5e6f7a8b9c",
    "CRM_SIGNING_SECRET": WHSEC,
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-abcdefghijklmnop",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "PAGERDUTY_ROUTING_KEY": "R0123456789abcdef0123456789abcde",
    "TEAMS_WEBHOOK": "https://acme.webhook.office.com/webhookb2/9f8e7d6c@1a2b/IncomingWebhook/"
    "0123456789abcdef0123456789abcdef/4d3c2b1a",
    "SMTP_PASSWORD": "smtp-pa55word-ok",
}

RULES = """version: 1
sinks:
  crm:
    type: http
    url: https://svc:url-pa55word@crm.example.com/api/calls?api_key=query-key-4d5e6f
    headers: {X-Api-Key: "Bearer ${CRM_TOKEN}", X-Org: "{{ organizationId }}"}
    signing_secret: ${CRM_SIGNING_SECRET}
  crm-templated:
    type: http
    url: https://crm.example.com/hooks/${CRM_API_KEY}
    signing_secret: ${CRM_SIGNING_SECRET}
    body: '{"key": "${CRM_API_KEY}", "call": {{ id | tojson }}}'
  slack-app:
    type: slack
    token: ${SLACK_BOT_TOKEN}
    channel: "#ops"
    signing_secret: ${SLACK_SIGNING_SECRET}
    text: "{{ status }} call (app ${SLACK_SIGNING_SECRET})"
  oncall: {type: pagerduty, routing_key: "${PAGERDUTY_ROUTING_KEY}"}
  teams: {type: teams, webhook_url: "${TEAMS_WEBHOOK}"}
  email:
    type: email
    host: smtp.example.com
    username: alerts
    password: ${SMTP_PASSWORD}
    from: alerts@example.com
    to: [ops@example.com]
    body: "{{ summary }} (sent with ${SMTP_PASSWORD})"
  console: {type: log, text: "token ${CRM_TOKEN}"}
rules:
  - name: everything
    to: [crm, crm-templated, slack-app, oncall, teams, email, console]
"""

SECRETS = [
    *ENVIRON.values(),
    WHSEC.removeprefix("whsec_"),
    "url-pa55word",
    "query-key-4d5e6f",
    "0123456789abcdef0123456789abcdef",
]


def previewed(event: dict) -> dict:
    config = parse_config(RULES, "rules.yaml", environ=ENVIRON)
    result = preview(config, event, at=datetime.fromtimestamp(1_800_000_000, UTC))
    return {delivery.sink: delivery for delivery in result.deliveries}


def test_no_secret_of_any_sink_appears_in_its_preview() -> None:
    deliveries = previewed(fresh_event("failed-outbound"))
    assert set(deliveries) == {
        "crm",
        "crm-templated",
        "slack-app",
        "oncall",
        "teams",
        "email",
        "console",
    }
    for sink, delivery in deliveries.items():
        assert delivery.render_error is None, (sink, delivery.render_error)
        shown = json.dumps(delivery.message, ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in shown, (sink, secret)
    assert deliveries["oncall"].message["routing_key"] == "***"
    assert deliveries["crm-templated"].message["body"]["key"] == "***"
    assert deliveries["console"].message["text"] == "token ***"


@pytest.mark.parametrize("sink", ["crm", "crm-templated"])
def test_the_shown_signature_verifies_no_body(sink: str) -> None:
    event = fresh_event("failed-outbound", summary="forged: pay the bearer")
    request = previewed(event)[sink].message
    headers = request["headers"]
    assert headers["webhook-signature"] == "v1,***"
    assert headers["webhook-id"] and headers["webhook-timestamp"]
    for body in (
        json.dumps(event),
        json.dumps(request["body"]),
        json.dumps(request["body"], separators=(",", ":")),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(WHSEC).verify(body, headers)


def test_a_render_error_names_no_secret() -> None:
    rules = RULES.replace('"call": {{ id | tojson }}', '"call": {{ id + 1 }}')
    config = parse_config(rules, "rules.yaml", environ=ENVIRON)
    (delivery,) = [
        d for d in preview(config, fresh_event()).deliveries if d.sink == "crm-templated"
    ]
    assert delivery.render_error is not None and "TypeError" in delivery.render_error
    assert ENVIRON["CRM_API_KEY"] not in delivery.render_error


def test_a_sinks_own_preview_masks_every_secret_of_its_settings() -> None:
    """The masking lives in `Sink.preview`, so any caller gets it (the playground adds only
    the secret-named variables a sink's settings do not hold, like the console's token)."""
    config = parse_config(RULES, "rules.yaml", environ=ENVIRON)
    event = fresh_event("failed-outbound")
    payload = json.dumps(event).encode()
    for name, settings in config.sinks.items():
        request = DeliveryRequest("d-1", event["id"], name, "everything", event, payload=payload)
        shown = json.dumps(build_sink(name, settings, SinkResources()).preview(request))
        own = settings.secret_values()
        assert own or name == "console"
        for secret in own:
            assert secret not in shown, (name, secret)
