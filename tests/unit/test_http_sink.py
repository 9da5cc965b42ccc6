"""The http sink's pure parts: config, request building, signing, classification, render()."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from standardwebhooks.webhooks import Webhook

from router import __version__
from router.config.schema import ConfigError, parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, Digest, Permanent, Retryable, SendResult, SinkResources
from sinks.http import (
    HttpSink,
    HttpSinkConfig,
    body_excerpt,
    build_request,
    classify_response,
    is_connection_blip,
    sign,
    signing_key,
)
from sinks.secrets import mask_url, redact, url_secrets

NOW = 1_790_000_000.0
TOKEN = "tok-9f8e7d6c5b4a"
WHSEC_KEY = b"0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
SECRET_URL = "https://svc:pa55word@crm.example.com/api/calls?api_key=qk-123456789"


def make_config(**settings: Any) -> HttpSinkConfig:
    return HttpSinkConfig.model_validate({"type": "http", "url": SECRET_URL, **settings})


def make_request(**fields: Any) -> DeliveryRequest:
    values: dict[str, Any] = {
        "delivery_id": "dlv-1",
        "event_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "sink": "crm",
        "rule": "all-calls",
        "event": sample_event(),
    }
    values.update(fields)
    return DeliveryRequest(**values)


# --- config -------------------------------------------------------------------------------


def test_config_repr_and_str_hold_no_secret() -> None:
    config = make_config(
        headers={"X-Api-Key": f"Bearer {TOKEN}", "X-Org": "{{ organizationId }}"},
        signing_secret=WHSEC,
    )
    for text in (repr(config), str(config), repr(config.headers), str(config.model_dump())):
        for secret in (TOKEN, "pa55word", "qk-123456789", WHSEC, "crm.example.com"):
            assert secret not in text


def test_header_values_compile_at_load_and_report_syntax_errors_located() -> None:
    text = """version: 1
sinks:
  crm:
    type: http
    url: https://crm.example.com/hook
    headers:
      X-Bad: "{{ id "
rules: []
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "rules.yaml")
    [error] = caught.value.errors
    assert str(error).startswith("rules.yaml:7:")
    assert "template does not compile" in str(error)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"headers": {"Idempotency-Key": "x"}}, "set by the router"),
        ({"headers": {"webhook-signature": "x"}}, "set by the router"),
        ({"headers": {"Content-Type": "text/plain"}}, "content_type"),
        ({"headers": {"Bad Name": "x"}}, "not a valid HTTP header name"),
        ({"url": "ftp://crm.example.com/x"}, "http:// or https://"),
        ({"url": "crm.example.com/x"}, "http:// or https://"),
        ({"url": "https://crm example.com/x"}, "http:// or https://"),
        ({"url": "https://crm.example.com:99999/x"}, "invalid port"),
        ({"method": "GET"}, "method"),
        ({"timeout": "0s"}, "longer than 0s"),
        ({"retry_on": [42]}, "not an HTTP status code"),
        ({"signing_secret": "whsec_***not-base64***"}, "base64"),
        ({"content_type": "text/plain\r\nX-Evil: 1"}, "one non-empty line"),
        ({"headers": {"authorization": "Bearer x"}}, "either in the url or in an Authorization"),
    ],
)
def test_config_rejects_bad_settings_without_echoing_them(
    settings: dict[str, Any], message: str
) -> None:
    document = {"version": 1, "sinks": {"crm": {"type": "http", "url": SECRET_URL, **settings}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(document), "rules.yaml")
    text = str(caught.value)
    assert message in text
    assert "pa55word" not in text
    assert "qk-123456789" not in text


def test_method_is_case_insensitive_and_empty_url_is_unconfigured() -> None:
    assert make_config(method="patch").method == "PATCH"
    assert make_config(url="").missing_settings() == ["url"]
    assert make_config().missing_settings() == []


def test_empty_signing_secret_means_unsigned() -> None:
    request = build_request(make_config(signing_secret=""), make_request(), now=NOW)
    assert not any(name.startswith("webhook-") for name in request.headers)


# --- request building ---------------------------------------------------------------------


def test_default_headers_and_idempotency_key() -> None:
    outgoing = build_request(make_config(), make_request(delivery_id="dlv-42"), now=NOW)
    assert outgoing.method == "POST"
    assert outgoing.url == SECRET_URL
    assert outgoing.headers == {
        "Content-Type": "application/json",
        "User-Agent": f"revring-router/{__version__}",
        "Idempotency-Key": "dlv-42",
    }


def test_header_templates_render_against_the_event() -> None:
    config = make_config(
        method="PUT",
        content_type="application/vnd.crm+json",
        headers={
            "X-Api-Key": f"Bearer {TOKEN}",
            "X-Call": "{{ id }}/{{ rule }}",
            "user-agent": "acme-crm-bridge",
        },
    )
    outgoing = build_request(config, make_request(), now=NOW)
    assert outgoing.method == "PUT"
    assert outgoing.headers["X-Api-Key"] == f"Bearer {TOKEN}"
    assert outgoing.headers["X-Call"] == "3c90c3cc-0d44-4b50-8888-8dd25736052a/all-calls"
    assert outgoing.headers["Content-Type"] == "application/vnd.crm+json"
    assert outgoing.headers["user-agent"] == "acme-crm-bridge"
    assert "User-Agent" not in outgoing.headers
    assert outgoing.secret_headers == {"X-Api-Key", "X-Call", "user-agent"}


def test_header_templates_drop_line_breaks_from_event_data() -> None:
    event = {**sample_event(), "summary": "line one\r\nX-Injected: yes\nthird\u2028fourth"}
    config = make_config(headers={"X-Summary": "{{ summary }}"})
    outgoing = build_request(config, make_request(event=event), now=NOW)
    value = outgoing.headers["X-Summary"]
    assert "\r" not in value and "\n" not in value and "\u2028" not in value
    assert value == "line one X-Injected: yes third fourth"


def test_null_body_sends_the_received_bytes_verbatim() -> None:
    payload = b'{ "id":"3c90c3cc" ,\n  "summary": "caf\xc3\xa9", "z":1,"a":2}'
    outgoing = build_request(make_config(), make_request(payload=payload), now=NOW)
    assert outgoing.body == payload


def test_null_body_without_payload_sends_the_event_as_json() -> None:
    outgoing = build_request(make_config(), make_request(), now=NOW)
    assert json.loads(outgoing.body) == sample_event()


def test_null_body_for_a_digest_sends_the_digest() -> None:
    window = ("2026-11-20T15:00:00Z", "2026-11-20T15:02:00Z")
    digest = Digest({"sipTrunkId": "trunk-main"}, *window, [sample_event()])
    outgoing = build_request(make_config(), make_request(digest=digest, payload=b"{}"), now=NOW)
    document = json.loads(outgoing.body)
    assert document["count"] == 1
    assert document["group_key"] == {"sipTrunkId": "trunk-main"}
    assert document["calls"][0]["id"] == "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def test_a_preview_of_a_body_nested_too_deep_to_read_shows_it_as_text() -> None:
    payload = b'{"id": "c", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    sink = HttpSink("crm", make_config(), SinkResources())
    assert sink.preview(make_request(payload=payload))["body"] == payload.decode()


def test_body_template_renders_exact_json_text() -> None:
    template = (
        '{"subject": {{ ("Call " ~ status) | tojson }}, "notes": {{ summary | tojson }}, '
        '"seconds": {{ durationSeconds }}, "delivery": {{ delivery_id | tojson }}}'
    )
    outgoing = build_request(make_config(body=template), make_request(), now=NOW)
    assert outgoing.body == (
        b'{"subject": "Call COMPLETED", "notes": "Caller rescheduled a cleaning to Friday 10am.", '
        b'"seconds": 108, "delivery": "dlv-1"}'
    )


def test_body_template_rendering_invalid_json_is_permanent() -> None:
    config = make_config(body='{"notes": {{ summary }},}', headers={"X-Api-Key": TOKEN})
    with pytest.raises(Permanent) as caught:
        build_request(config, make_request(), now=NOW)
    assert caught.value.reason.startswith("body: template did not render valid JSON")
    assert TOKEN not in caught.value.reason


def test_header_template_missing_value_renders_empty() -> None:
    config = make_config(headers={"X-Tier": "{{ variables.nonexistent.deeper }}"})
    assert build_request(config, make_request(), now=NOW).headers["X-Tier"] == ""


def test_header_template_failing_otherwise_is_permanent() -> None:
    config = make_config(headers={"X-Tier": "{{ status + 1 }}"})
    with pytest.raises(Permanent) as caught:
        build_request(config, make_request(), now=NOW)
    assert caught.value.reason.startswith("headers.X-Tier: template failed")


# --- signing ------------------------------------------------------------------------------


def test_signing_key_decodes_whsec_and_takes_raw_strings_as_utf8() -> None:
    assert signing_key(WHSEC) == WHSEC_KEY
    assert signing_key(WHSEC.rstrip("=")) == WHSEC_KEY
    assert signing_key("plain-sécret") == "plain-sécret".encode()
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_!!!")


def test_signature_matches_the_standard_webhooks_reference() -> None:
    body = b'{"id": "3c90c3cc", "summary": "caf\xc3\xa9"}'
    expected = Webhook(WHSEC).sign("dlv-7", datetime.fromtimestamp(NOW, UTC), body.decode())
    assert sign(WHSEC_KEY, "dlv-7", int(NOW), body) == expected
    assert expected.startswith("v1,")


@pytest.mark.parametrize("secret", [WHSEC, "a raw shared secret"])
def test_signed_request_carries_standard_webhooks_headers(secret: str) -> None:
    config = make_config(signing_secret=secret, body='{"id": {{ id | tojson }}}')
    outgoing = build_request(config, make_request(delivery_id="dlv-9"), now=NOW + 0.7)
    assert outgoing.headers["webhook-id"] == "dlv-9"
    assert outgoing.headers["webhook-timestamp"] == str(int(NOW))
    assert outgoing.headers["webhook-signature"] == sign(
        signing_key(secret), "dlv-9", int(NOW), outgoing.body
    )
    assert outgoing.headers["Idempotency-Key"] == "dlv-9"


# --- classification -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_success(status: int) -> None:
    outcome = classify_response(status)
    assert isinstance(outcome, SendResult)
    assert outcome.status_code == status


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    outcome = classify_response(status, body=b"busy")
    assert isinstance(outcome, Retryable)
    assert outcome.status_code == status
    assert outcome.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    outcome = classify_response(status)
    assert type(outcome) is Permanent
    assert outcome.status_code == status


def test_permanent_reason_names_status_and_one_line_of_body() -> None:
    outcome = classify_response(404, body=b"no such\r\n   route\n" + b"x" * 500)
    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("HTTP 404 Not Found: no such route xxx")
    excerpt = outcome.reason.removeprefix("HTTP 404 Not Found: ")
    assert len(excerpt) == 200
    assert "\n" not in outcome.reason and "\r" not in outcome.reason


def test_retry_after_in_seconds_and_as_http_date() -> None:
    in_seconds = classify_response(429, retry_after="7", now=NOW)
    assert isinstance(in_seconds, Retryable)
    assert in_seconds.retry_after == 7
    date = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    as_date = classify_response(503, retry_after=date, now=NOW)
    assert isinstance(as_date, Retryable)
    assert as_date.retry_after == 90


def test_retry_on_and_success_codes_override_the_defaults() -> None:
    assert isinstance(classify_response(409, retry_on=[409]), Retryable)
    assert isinstance(classify_response(409, success_codes=[200, 409]), SendResult)
    not_listed = classify_response(201, success_codes=[200])
    assert isinstance(not_listed, Permanent)
    assert "not one of success_codes" in not_listed.reason


def test_redirects_are_permanent_and_do_not_echo_a_location() -> None:
    outcome = classify_response(301, body=b"see https://elsewhere.example.com/?token=1")
    assert isinstance(outcome, Permanent)
    assert outcome.reason == (
        "HTTP 301 Moved Permanently: redirects are not followed; point url at the final address"
    )


def test_reason_is_scrubbed_of_secrets_a_server_echoes() -> None:
    echoed = f"unauthorized: Bearer {TOKEN} for {SECRET_URL}".encode()
    outcome = classify_response(401, body=echoed, secrets=[f"Bearer {TOKEN}", SECRET_URL])
    assert isinstance(outcome, Permanent)
    assert TOKEN not in outcome.reason
    assert "pa55word" not in outcome.reason
    assert outcome.reason == "HTTP 401 Unauthorized: unauthorized: *** for ***"


def test_redact_hides_whole_secrets_and_their_long_words_only() -> None:
    assert redact("token tok-9f8e7d6c5b4a bad", [f"Bearer {TOKEN}"]) == "token *** bad"
    assert redact("Bearer token expired", [f"Bearer {TOKEN}"]) == "Bearer token expired"
    assert redact("abc", ["ab"]) == "abc"
    assert body_excerpt(b"\xff\xfe bad  utf8") == "\ufffd\ufffd bad utf8"


def test_only_connection_blips_are_retried_in_process() -> None:
    assert is_connection_blip(ConnectionResetError())
    assert not is_connection_blip(TimeoutError())
    assert not is_connection_blip(ValueError())


# --- render -------------------------------------------------------------------------------


def test_render_shows_the_message_with_every_secret_masked() -> None:
    config = make_config(
        headers={"X-Api-Key": f"Bearer {TOKEN}", "X-Org": "{{ organizationId }}"},
        signing_secret=WHSEC,
        body='{"call": {{ id | tojson }}, "tier": {{ variables.customer_tier | tojson }}}',
    )
    sink = HttpSink("crm", config, SinkResources())
    rendered = sink.preview(make_request(delivery_id="dlv-5"))
    text = json.dumps(rendered)
    for secret in (TOKEN, "pa55word", "svc:", "qk-123456789", "api_key", WHSEC):
        assert secret not in text
    assert rendered["method"] == "POST"
    assert rendered["url"] == "https://crm.example.com/***"
    assert rendered["headers"]["X-Api-Key"] == "***"
    assert rendered["headers"]["X-Org"] == "***"
    assert rendered["headers"]["Idempotency-Key"] == "dlv-5"
    assert rendered["headers"]["webhook-id"] == "dlv-5"
    assert rendered["headers"]["webhook-signature"] == "v1,***"
    assert rendered["body"] == {"call": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "tier": "gold"}


def test_render_of_a_verbatim_body_parses_json_or_keeps_text() -> None:
    sink = HttpSink("crm", make_config(), SinkResources())
    assert sink.preview(make_request(payload=b'{"a": 1}'))["body"] == {"a": 1}
    assert sink.preview(make_request(payload=b"not json"))["body"] == "not json"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (SECRET_URL, "https://crm.example.com/api/calls"),
        ("http://127.0.0.1:8081/hook#frag", "http://127.0.0.1:8081/hook"),
        ("https://[::1]:9443/a/b?x=1", "https://[::1]:9443/a/b"),
        ("https://crm.example.com", "https://crm.example.com"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# --- sample check -------------------------------------------------------------------------


def _config_with_body(body: str) -> str:
    return json.dumps(
        {
            "version": 1,
            "sinks": {
                "crm": {
                    "type": "http",
                    "url": "https://crm.example.com/hook",
                    "headers": {"Authorization": f"Bearer {TOKEN}", "X-Agent": "{{ agentNme }}"},
                    "body": body,
                }
            },
        }
    )


def test_sample_problems_report_invalid_json_not_missing_values() -> None:
    config = parse_config(_config_with_body('{"notes": {{ summary }},}'), "rules.yaml")
    problems = config.sinks["crm"].sample_problems(sample_event())
    assert len(problems) == 1, "a missing value (agentNme) renders empty: no problem"
    assert problems[0].startswith("body: template did not render valid JSON")
    assert all(TOKEN not in problem for problem in problems)
    assert "'agentNme' is not a field" in str(config.warnings), "check warns about it"


def test_sample_problems_empty_for_a_good_template() -> None:
    text = _config_with_body('{"notes": {{ summary | tojson }}}').replace("agentNme", "agentName")
    config = parse_config(text, "rules.yaml")
    assert config.sinks["crm"].sample_problems(sample_event()) == []


def test_phone_numbers_echoed_in_an_error_are_masked_in_the_reason():
    from sinks.http import classify_response

    failure = classify_response(
        400, body=b'{"error": "contact +14155550123 exists", "at": 1795766501}'
    )
    assert "+14155550123" not in failure.reason
    assert "+1415\u2022\u2022\u20220123" in failure.reason
    assert "1795766501" in failure.reason


def test_formatted_numbers_echoed_in_an_error_are_masked_in_the_reason():
    from sinks.http import classify_response

    failure = classify_response(
        409, body=b'{"error": "contact (415) 555-0143 / +44 20 7183 8750 exists since 2026-11-20"}'
    )
    assert "555-0143" not in failure.reason and "7183 8750" not in failure.reason
    assert "+1415\u2022\u2022\u20220143 / +4420\u2022\u2022\u20228750" in failure.reason
    assert "2026-11-20" in failure.reason


# --- what of a URL is secret ----------------------------------------------------------------


def test_words_of_a_sinks_url_stay_readable_in_a_crms_error() -> None:
    config = make_config(
        url="https://crm.example.com/upstream/calls?tier=gold",
        headers={"X-Api-Key": f"Bearer {TOKEN}"},
    )
    outcome = classify_response(
        502,
        body=b"upstream says no: calls tier gold unknown, Bearer token expired",
        secrets=config.secret_values(),
    )
    assert outcome.reason == (
        "HTTP 502 Bad Gateway: upstream says no: calls tier gold unknown, Bearer token expired"
    )


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (
            "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/AbCdEfGhIjKlMnOpQrStUvWx",
            "AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        ("https://svc:pa55word@crm.example.com/upstream", "pa55word"),
        ("https://sk_live_51H8abc@api.example.com/upstream", "sk_live_51H8abc"),
        ("https://crm.example.com/upstream?api_key=qk-123&tier=gold", "qk-123"),
        ("https://crm.example.com/upstream?token=abcDEF&tier=gold", "abcDEF"),
        ("https://crm.example.com/upstream?tier=gold&s=9f8e7d6c5b4a3f2e1d", "9f8e7d6c5b4a3f2e1d"),
        ("https://crm.example.com/upstream?code=a%2Fb%3Dc", "a/b=c"),
        (
            "https://discord.com/api/webhooks/123456789012345678/abcDEFghiJKLmnoPQRstuVWXyz",
            "abcDEFghiJKLmnoPQRstuVWXyz",
        ),
        (
            "https://acme.webhook.office.com/webhookb2/9f8e7d6c@1a2b/IncomingWebhook/"
            "0123456789abcdef0123456789abcdef/4d3c2b1a",
            "0123456789abcdef0123456789abcdef",
        ),
        ("https://hooks.zapier.com/hooks/catch/1234567/b3x9k2l/", "b3x9k2l"),
    ],
)
def test_the_secret_parts_of_a_url_are_masked_wherever_they_are_echoed(
    url: str, secret: str
) -> None:
    secrets = url_secrets(url)
    query = urlsplit(url).query
    as_served = mask_url(url) + (f"?{query}" if query else "")
    for echoed in (secret, url, mask_url(url), as_served):
        shown = redact(f"upstream says no to {echoed} (hooks, services, webhooks)", secrets)
        assert secret not in shown and url not in shown, shown
        assert (
            shown.startswith("upstream says no to ***") and "(hooks, services, webhooks)" in shown
        )
