"""What the SMTP server's answers and errors mean for an email delivery, and config checks."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from router.config.schema import ConfigError, parse_config
from sinks.base import Permanent, Retryable
from sinks.email.sink import classify_smtp_error, describe_acceptance


def test_server_replies_are_classified_by_code() -> None:
    data_4xx = classify_smtp_error(aiosmtplib.SMTPDataError(452, "4.3.1 Out of space"), "h", 25)
    assert isinstance(data_4xx, Retryable) and data_4xx.status_code == 452
    data_5xx = classify_smtp_error(aiosmtplib.SMTPDataError(554, "5.7.1 No"), "h", 25)
    assert isinstance(data_5xx, Permanent) and data_5xx.reason == "message refused: 554 5.7.1 No"
    sender = aiosmtplib.SMTPSenderRefused(553, "5.7.1 Not yours", "r@example.com")
    assert classify_smtp_error(sender, "h", 25).reason == (
        "sender r@example.com refused: 553 5.7.1 Not yours"
    )
    closing = aiosmtplib.SMTPResponseException(421, "4.7.0 Too busy")
    assert isinstance(classify_smtp_error(closing, "h", 25), Retryable)


def test_authentication_failures_follow_their_code() -> None:
    rejected = aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials")
    assert isinstance(classify_smtp_error(rejected, "h", 587), Permanent)
    temporary = aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Temporary auth failure")
    assert isinstance(classify_smtp_error(temporary, "h", 587), Retryable)


def test_recipient_refusals_retry_only_when_all_are_temporary() -> None:
    def refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
        return aiosmtplib.SMTPRecipientsRefused(
            [
                aiosmtplib.SMTPRecipientRefused(code, "x", f"r{i}@example.com")
                for i, code in enumerate(codes)
            ]
        )

    assert isinstance(classify_smtp_error(refused(450, 451), "h", 25), Retryable)
    mixed = classify_smtp_error(refused(450, 550), "h", 25)
    assert isinstance(mixed, Permanent) and mixed.status_code == 550
    assert "r1@example.com (550 x)" in mixed.reason


def test_network_failures_are_retryable_and_tls_misconfiguration_permanent() -> None:
    assert isinstance(classify_smtp_error(ConnectionResetError("reset"), "h", 25), Retryable)
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPReadTimeoutError("t"), "h", 25), Retryable)
    assert isinstance(
        classify_smtp_error(aiosmtplib.SMTPServerDisconnected("gone"), "h", 25), Retryable
    )
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate"
    wrapped = aiosmtplib.SMTPConnectError("Error connecting")
    wrapped.__cause__ = untrusted
    outcome = classify_smtp_error(wrapped, "mail.example.com", 465)
    assert isinstance(outcome, Permanent)
    assert "mail.example.com:465 not trusted (self-signed certificate)" in outcome.reason


def test_acceptance_detail_lists_refused_recipients() -> None:
    refused = {"gone@example.com": aiosmtplib.SMTPResponse(550, "5.1.1 No\nsuch user")}
    detail = describe_acceptance("2.0.0 Ok: queued", refused, ["a@example.com", "gone@example.com"])
    assert detail == (
        "250 2.0.0 Ok: queued; refused 1 of 2 recipients: gone@example.com (550 5.1.1 No such user)"
    )


RULES = """\
version: 1
sinks:
  mail:
    type: email
    host: ${SMTP_HOST:-}
    from: "Router <router@example.com>"
    to: ${ALERT_TO:-}
    tls: ssl
    port: 465
rules: []
"""


def test_empty_settings_from_the_environment_leave_the_sink_unconfigured() -> None:
    config = parse_config(RULES, "rules.yaml", environ={})
    assert config.unconfigured_sinks() == {"mail": ["host", "to"]}
    ready = parse_config(RULES, "rules.yaml", environ={"SMTP_HOST": "smtp", "ALERT_TO": "a@b.io"})
    assert ready.unconfigured_sinks() == {}


def test_a_bad_address_is_a_located_config_error() -> None:
    text = RULES.replace("${ALERT_TO:-}", '["support@example.com", "not an address"]')
    with pytest.raises(ConfigError) as failure:
        parse_config(text, "rules.yaml", environ={})
    [error] = failure.value.errors
    assert str(error).startswith("rules.yaml:7:")
    assert "'not an address' is not one email address" in str(error)


def test_an_html_template_that_does_not_compile_is_a_config_error() -> None:
    text = RULES.replace("tls: ssl", 'tls: ssl\n    html: "{{ broken"')
    with pytest.raises(ConfigError, match="template does not compile"):
        parse_config(text, "rules.yaml", environ={})
