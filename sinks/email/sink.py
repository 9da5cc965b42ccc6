"""The `email` sink: one well-formed message per routed call over SMTP (aiosmtplib).

The message itself is built by `sinks.email.message` (pure); this module holds
the settings and the SMTP conversation, and turns what the server says into an
outcome:

    connection refused/lost, timeout, SMTP 4xx        -> Retryable (the server's reply)
    SMTP 5xx, AUTH rejected, STARTTLS not offered,
    untrusted certificate, TLS to a plain port        -> Permanent (the server's reply)
    some recipients refused, message accepted         -> success; refusals in the detail
    every recipient refused                           -> Retryable if all 4xx, else Permanent

A reason never contains the password.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email import policy as email_policy
from email.parser import BytesHeaderParser
from typing import Any

import aiosmtplib

from router.core.templates import TemplateRenderError
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Permanent,
    Retryable,
    SendResult,
    Sink,
    SinkConfig,
    SinkResources,
)
from sinks.email.message import (
    WIRE_POLICY,
    EmailContent,
    build_message,
    describe_message,
    envelope_recipients,
    envelope_sender,
    parse_message,
)
from sinks.email.settings import EmailSinkConfig
from sinks.exchange import (
    Exchange,
    ReceivedResponse,
    SentRequest,
    request_seen,
    response_seen,
)
from sinks.notices import notice_text, notice_title


class EmailSink(Sink[bytes]):
    config: EmailSinkConfig
    config_class = EmailSinkConfig

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        self._tls_context: ssl.SSLContext | None = None

    def build(self, request: DeliveryRequest) -> bytes:
        try:
            content = None
            if request.notice is not None:  # a dead delivery's notice, in plain words
                notice = request.notice
                content = EmailContent(notice_title(notice), notice_text(notice), None)
            message = build_message(self.config, request, now=datetime.now(UTC), content=content)
        except TemplateRenderError as exc:
            raise Permanent(str(exc)) from None
        return message.as_bytes(policy=WIRE_POLICY)

    def show(self, payload: bytes) -> dict[str, Any]:
        return describe_message(
            parse_message(payload), envelope_sender(self.config), envelope_recipients(self.config)
        )

    async def transmit(self, payload: bytes) -> SendResult:
        sender = envelope_sender(self.config)
        recipients = envelope_recipients(self.config)
        sent = self._request_seen(sender, recipients, payload)
        try:
            result = await self._converse(sender, recipients, payload)
        except DeliveryError as exc:
            raise exc.with_reason(self._scrub(exc.reason)).with_exchange(Exchange(sent)) from None
        except Exception as exc:
            outcome = classify_smtp_error(exc, self.config.host, self.config.port)
            exchange = Exchange(sent, self._reply_seen(exc))
            raise outcome.with_reason(self._scrub(outcome.reason)).with_exchange(exchange) from None
        reply = response_seen(250, (), result.detail or "", secrets=self._exchange_secrets())
        return replace(result, exchange=Exchange(sent, reply))

    def _exchange_secrets(self) -> list[str]:
        """The settings' secrets, and the password as AUTH sends it (base64)."""
        password = self.config.password.get_secret_value() if self.config.password else ""
        encoded = [base64.b64encode(password.encode()).decode()] if password else []
        return [*self.secrets(), *encoded]

    def _request_seen(self, sender: str, recipients: list[str], payload: bytes) -> SentRequest:
        """The SMTP envelope and the message's headers, as kept; the body is the message's
        MIME body (after its headers)."""
        head, _, body = payload.partition(b"\r\n\r\n")
        parsed = BytesHeaderParser(policy=email_policy.default).parsebytes(head + b"\r\n\r\n")
        envelope = [("MAIL FROM", sender), *(("RCPT TO", address) for address in recipients)]
        headers = [*envelope, *((name, str(value)) for name, value in parsed.items())]
        config = self.config
        where = f"smtp://{config.host}:{config.port} (tls: {config.tls})"
        return request_seen(
            "SMTP", where, headers, body, secrets=self._exchange_secrets(), target_is_url=False
        )

    def _reply_seen(self, exc: Exception) -> ReceivedResponse | None:
        """The server's reply that failed the send (None: it never answered)."""
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refused = exc.recipients
            lines = [f"{item.recipient}: {_reply(item.code, item.message)}" for item in refused]
            code = refused[0].code if refused else None
            return response_seen(code, (), "\n".join(lines), secrets=self._exchange_secrets())
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
            return response_seen(exc.code, (), exc.message, secrets=self._exchange_secrets())
        return None

    async def _converse(self, sender: str, recipients: list[str], payload: bytes) -> SendResult:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.tls == "ssl",
            start_tls=False,
            tls_context=self._tls() if config.tls != "none" else None,
            timeout=config.timeout,
        )
        await client.connect()
        try:
            if config.tls == "starttls":
                await client.ehlo()
                if not client.supports_extension("starttls"):
                    raise Permanent(
                        f"{config.host}:{config.port} does not offer STARTTLS "
                        "(tls: starttls requires it; use tls: ssl for port 465, "
                        "or tls: none for a trusted relay)"
                    )
                await client.starttls()
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                await client.login(config.username, password)
            refused, reply = await client.sendmail(sender, recipients, payload)
        except BaseException:
            client.close()
            raise
        await _quit_quietly(client)
        return SendResult(status_code=250, detail=describe_acceptance(reply, refused, recipients))

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            try:
                context = ssl.create_default_context(cafile=self.config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise Permanent(f"cannot load ca_file {self.config.ca_file!r}: {exc}") from None
            if not self.config.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls_context = context
        return self._tls_context

    def _scrub(self, reason: str) -> str:
        password = self.config.password.get_secret_value() if self.config.password else ""
        if not password:
            return reason
        encoded = base64.b64encode(password.encode()).decode()
        return reason.replace(password, "***").replace(encoded, "***")


async def _quit_quietly(client: aiosmtplib.SMTP) -> None:
    """QUIT after the message was accepted; a failure here must not fail the delivery."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def describe_acceptance(
    reply: str, refused: Mapping[str, aiosmtplib.SMTPResponse], recipients: list[str]
) -> str:
    """The success detail: the server's reply, plus any recipients it refused and why."""
    detail = _reply(250, reply)
    if refused:
        listed = "; ".join(
            f"{address} ({_reply(response.code, response.message)})"
            for address, response in refused.items()
        )
        detail += f"; refused {len(refused)} of {len(recipients)} recipients: {listed}"
    return detail


def _by_code(code: int, reason: str) -> DeliveryError:
    if 500 <= code < 600:
        return Permanent(reason, status_code=code)
    return Retryable(reason, status_code=code)


def _certificate_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def classify_smtp_error(exc: BaseException, host: str, port: int) -> DeliveryError:
    """What an exception from the SMTP conversation means for the delivery."""
    where = f"{host}:{port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        listed = "; ".join(
            f"{item.recipient} ({_reply(item.code, item.message)})" for item in refusals
        )
        reason = f"every recipient refused: {listed}"
        if refusals and all(400 <= item.code < 500 for item in refusals):
            return Retryable(reason, status_code=refusals[0].code)
        codes = [item.code for item in refusals if not 400 <= item.code < 500]
        return Permanent(reason, status_code=codes[0] if codes else None)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return _by_code(exc.code, f"authentication failed: {_reply(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _by_code(exc.code, f"sender {exc.sender} refused: {_reply(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code(exc.code, f"message refused: {_reply(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"{where} answered {_reply(exc.code, exc.message)}")
    tls_error = _certificate_error(exc)
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        return Permanent(
            f"TLS certificate of {where} not trusted ({tls_error.verify_message}); "
            "set ca_file to its CA, or tls_verify: false"
        )
    if tls_error is not None and "WRONG_VERSION_NUMBER" in str(tls_error):
        return Permanent(
            f"{where} did not speak TLS (tls: ssl is for implicit TLS, usually port 465; "
            "port 587 uses tls: starttls)"
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Retryable(f"timed out talking to {where}: {exc}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError | OSError):
        return Retryable(f"connection to {where} failed: {exc}")
    if isinstance(exc, aiosmtplib.SMTPException):
        if "AUTH extension" in exc.message:
            return Permanent(
                f"{where} does not offer AUTH on this connection "
                "(most servers offer it only over TLS: use tls: starttls or ssl)"
            )
        return Permanent(f"SMTP error with {where}: {exc.message}")
    if isinstance(exc, ValueError):
        return Permanent(f"message cannot be sent: {exc}")
    return Retryable(f"unexpected error talking to {where}: {type(exc).__name__}: {exc}")
