"""Outbound auth's pure parts (DESIGN.md section 17): when a token is renewed, what a
token endpoint's answer means, the grants OAuth2 settings make, the settings' checks and
secrets, and the console's rules.yaml masking the new keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from router.store import OutboundToken
from router.web.ui.views import masked_rules_text
from sinks.base import Permanent, Retryable
from sinks.http import HttpSinkConfig
from sinks.oauth2 import OAuth2Grants, OAuth2Settings
from sinks.tokens import TokenAnswer, is_fresh, settings_hash, token_answer


def token(obtained: float, expires: float) -> OutboundToken:
    return OutboundToken("s", "k", "at", obtained, expires)


def test_a_token_is_fresh_until_a_fifth_of_its_lifetime_is_left() -> None:
    assert is_fresh(token(0, 100), 79.9)
    assert not is_fresh(token(0, 100), 80.0)
    assert not is_fresh(token(0, 0), 0.0), "a token given for no time is never fresh"


@given(st.floats(0, 1e9), st.floats(0, 1e6, exclude_min=True), st.floats(0, 1, exclude_max=True))
def test_freshness_is_a_fifth_of_the_lifetime_whatever_the_numbers(
    start: float, lifetime: float, elapsed: float
) -> None:
    at = start + lifetime * elapsed
    expected = lifetime * (1 - elapsed) > lifetime * 0.2
    if abs(lifetime * (1 - elapsed) - lifetime * 0.2) > 1e-6 * max(lifetime, 1):
        assert is_fresh(token(start, start + lifetime), at) == expected


def test_a_token_answer_is_read() -> None:
    body = b'{"access_token": "at-1", "expires_in": "120", "refresh_token": "rt-2"}'
    assert token_answer("crm", 200, body) == TokenAnswer("at-1", 120.0, "rt-2")
    assert token_answer("crm", 200, b'{"access_token": "at-1"}') == TokenAnswer(
        "at-1", 3600.0, None
    )


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (400, b'{"error": "invalid_grant"}', Permanent, "answered 400 invalid_grant"),
        (
            401,
            b'{"error": "invalid_client", "error_description": "bad secret s3cr3t-value"}',
            Permanent,
            "answered 401 invalid_client: bad secret ***",
        ),
        (403, b"forbidden", Permanent, "answered 403 forbidden"),
        (500, b"", Retryable, "answered 500"),
        (429, b'{"error": "slow_down"}', Retryable, "answered 429 slow_down"),
        (200, b"[1, 2]", Retryable, "answered 200 with something that is not JSON"),
        (200, b'{"access_token": ""}', Retryable, "answered 200 without an access_token"),
        (
            200,
            b'{"access_token": "a", "expires_in": "soon"}',
            Retryable,
            "answered 200 with an expires_in that is not a number of seconds",
        ),
        (400, b'{"error": {"message": "Invalid JWT Signature."}}', Permanent, "Invalid JWT"),
    ],
)
def test_a_token_endpoint_failure_is_classified_and_named(
    status: int, body: bytes, kind: type, reason: str
) -> None:
    outcome = token_answer("crm", status, body, secrets=["s3cr3t-value"])
    assert type(outcome) is kind
    assert str(outcome).startswith("sink 'crm' auth: token endpoint ")
    assert reason in str(outcome)


def test_a_retry_after_from_the_token_endpoint_is_kept() -> None:
    outcome = token_answer("crm", 503, b"", retry_after="30", now=0.0)
    assert isinstance(outcome, Retryable) and outcome.retry_after == 30


def settings(**changes: object) -> OAuth2Settings:
    return OAuth2Settings.model_validate(
        {
            "type": "oauth2",
            "token_url": "https://auth.example.com/token",
            "client_id": "id-1",
            "client_secret": "cs-123456",
            **changes,
        }
    )


def test_grants_use_client_credentials_or_the_latest_refresh_token() -> None:
    plain = OAuth2Grants(settings(scope="a b"))
    assert dict(plain.grant(None, 0).form) == {
        "grant_type": "client_credentials",
        "scope": "a b",
        "client_id": "id-1",
        "client_secret": "cs-123456",
    }
    refreshing = OAuth2Grants(settings(refresh_token="rt-configured"))
    assert refreshing.grant(None, 0).form["refresh_token"] == "rt-configured"
    rotated = refreshing.grant("rt-rotated", 0)
    assert rotated.form["refresh_token"] == "rt-rotated"
    assert {"rt-rotated", "rt-configured", "cs-123456"} <= set(rotated.secrets)


def test_changed_settings_get_another_key() -> None:
    assert OAuth2Grants(settings()).auth_key == OAuth2Grants(settings()).auth_key
    assert OAuth2Grants(settings()).auth_key != OAuth2Grants(settings(scope="x")).auth_key
    assert settings_hash("a", None) != settings_hash("a", "")
    assert "cs-123456" not in OAuth2Grants(settings()).auth_key


def http(**auth: object) -> HttpSinkConfig:
    return HttpSinkConfig.model_validate(
        {"type": "http", "url": "https://crm.example.com/x", **auth}
    )


def test_the_http_sink_takes_auth_and_knows_its_secrets() -> None:
    config = http(
        auth=settings(refresh_token="rt-configured").model_dump(mode="json")
        | {
            "client_secret": "cs-123456",
            "refresh_token": "rt-configured",
        }
    )
    assert {"cs-123456", "rt-configured"} <= set(config.secret_values())
    assert "cs-123456" not in repr(config) and "rt-configured" not in repr(config)


def test_empty_auth_settings_leave_the_sink_unconfigured() -> None:
    auth = {"type": "oauth2", "token_url": "https://a.example/t", "client_id": "i"}
    config = http(auth=auth | {"client_secret": "", "refresh_token": ""})
    assert config.missing_settings() == ["auth.client_secret", "auth.refresh_token"]


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"headers": {"Authorization": "Bearer x"}}, "auth sets the Authorization header"),
        ({"url": "https://u:p@crm.example.com/x"}, "auth sets the Authorization header"),
    ],
)
def test_auth_and_other_credentials_are_refused_together(
    changes: dict[str, object], said: str
) -> None:
    auth = {"type": "oauth2", "token_url": "https://a.example/t", "client_id": "i"}
    with pytest.raises(ValidationError, match=said):
        http(auth=auth | {"client_secret": "cs-123456"}, **changes)


def test_a_token_url_must_be_http() -> None:
    with pytest.raises(ValidationError, match="token_url must be an http"):
        settings(token_url="ftp://auth.example.com/token")


def test_the_console_masks_the_new_secret_keys_of_rules_yaml() -> None:
    text = "    client_secret: ${HS_SECRET:-cs-default-1}\n    refresh_token: rt-literal-9\n"
    shown = masked_rules_text(text, [])
    assert "cs-default-1" not in shown and "rt-literal-9" not in shown
    assert "${HS_SECRET:-***}" in shown
