"""The email sink against a real SMTP server (aiosmtpd) on 127.0.0.1: TLS modes, AUTH,
the server's replies turned into outcomes, and the delivered bytes parsed back."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from router.engine.requests import build_and_transmit
from sinks.base import DeliveryRequest, Permanent, Retryable, SinkResources
from sinks.email.message import message_id_for
from sinks.email.settings import EmailSinkConfig
from sinks.email.sink import EmailSink
from tests.conftest import SAMPLES_DIR

SAMPLES = SAMPLES_DIR
USERNAME = "router"
PASSWORD = "s3cret-Pa55-do-not-leak"


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class RecordingHandler:
    """Accepts mail and records it; scripted replies refuse chosen recipients or DATA."""

    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        scripted = self.rcpt_replies.get(address)
        if scripted:
            return scripted.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        assert isinstance(envelope.content, bytes)
        self.delivered.append(
            Delivered(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                envelope.content,
                bool(session.authenticated),
            )
        )
        return "250 2.0.0 Ok: queued as 4242"


def check_login(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    valid = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=valid, handled=False)


StartServer = Callable[..., Awaitable[int]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Starts aiosmtpd on 127.0.0.1:0 on the test's loop; returns its port."""
    servers: list[asyncio.Server] = []

    async def start(
        handler: RecordingHandler, *, ssl_context: ssl.SSLContext | None = None, **smtp: Any
    ) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTPServer(handler, hostname="mail.test", **smtp),
            "127.0.0.1",
            0,
            ssl=ssl_context,
        )
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(certificate_authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


def sink(port: int, **settings: Any) -> EmailSink:
    values: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "from": "Call Router <router@example.com>",
        "to": ["support@example.com"],
        "timeout": "5s",
    }
    values.update(settings)
    config = EmailSinkConfig.model_validate(values)
    return EmailSink("support-email", config, SinkResources())


def failed_call(delivery_id: str = "dlv-1", attempt: int = 1) -> DeliveryRequest:
    event = json.loads((SAMPLES / "failed-outbound.json").read_text())
    return DeliveryRequest(
        delivery_id, event["id"], "support-email", "failed-calls", event, attempt
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_plain_delivery_parses_back_with_every_header(start_server: StartServer) -> None:
    handler = RecordingHandler()
    port = await start_server(handler)
    email_sink = sink(
        port,
        **{"from": "Équipe Appels <router@example.com>"},
        to=["Support <support@example.com>", "oncall@example.com"],
        cc=["Ops Team <ops@example.com>"],
        bcc=["audit@example.com"],
        reply_to="help@example.com",
    )
    result = await build_and_transmit(email_sink, failed_call())
    assert result.status_code == 250
    assert result.detail == "250 2.0.0 Ok: queued as 4242"
    [delivered] = handler.delivered
    assert delivered.mail_from == "router@example.com"
    assert delivered.rcpt_tos == [
        "support@example.com",
        "oncall@example.com",
        "ops@example.com",
        "audit@example.com",
    ]
    message = delivered.message
    assert str(message["From"]) == "Équipe Appels <router@example.com>"
    assert str(message["To"]) == "Support <support@example.com>, oncall@example.com"
    assert str(message["Cc"]) == "Ops Team <ops@example.com>"
    assert str(message["Reply-To"]) == "help@example.com"
    assert "Bcc" not in message
    assert b"audit@example.com" not in delivered.data
    assert message["Subject"] == "[revring] FAILED outbound call +1415•••0199 → +4420•••8750"
    assert b"=?utf-8?" in delivered.data.split(b"\r\n\r\n", 1)[0]
    assert message["Message-ID"] == message_id_for("dlv-1", "router@example.com")
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "SIP 503 Service Unavailable from carrier" in text.get_content()
    assert "SIP 503 Service Unavailable from carrier" in html.get_content()


async def test_retries_of_one_delivery_carry_the_same_message_id(start_server: StartServer) -> None:
    handler = RecordingHandler()
    email_sink = sink(await start_server(handler))
    await build_and_transmit(email_sink, failed_call("dlv-7", attempt=1))
    await build_and_transmit(email_sink, failed_call("dlv-7", attempt=2))
    await build_and_transmit(email_sink, failed_call("dlv-8"))
    ids = [delivered.message["Message-ID"] for delivered in handler.delivered]
    assert ids[0] == ids[1] == "<revring.dlv-7@example.com>"
    assert ids[2] == "<revring.dlv-8@example.com>"


async def test_starttls_with_a_private_ca(
    start_server: StartServer, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    handler = RecordingHandler()
    port = await start_server(handler, tls_context=server_tls, require_starttls=True)
    await build_and_transmit(sink(port, tls="starttls", ca_file=ca_file), failed_call())
    assert len(handler.delivered) == 1


async def test_starttls_refuses_an_untrusted_certificate(
    start_server: StartServer, server_tls: ssl.SSLContext
) -> None:
    handler = RecordingHandler()
    port = await start_server(handler, tls_context=server_tls, require_starttls=True)
    with pytest.raises(Permanent, match=r"certificate .* not trusted"):
        await build_and_transmit(sink(port, tls="starttls"), failed_call())
    await build_and_transmit(sink(port, tls="starttls", tls_verify=False), failed_call())
    assert len(handler.delivered) == 1


async def test_starttls_required_but_not_offered_is_permanent(start_server: StartServer) -> None:
    handler = RecordingHandler()
    port = await start_server(handler)
    with pytest.raises(Permanent, match="does not offer STARTTLS"):
        await build_and_transmit(sink(port, tls="starttls"), failed_call())
    assert handler.delivered == []


async def test_implicit_tls(
    start_server: StartServer, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    handler = RecordingHandler()
    port = await start_server(handler, ssl_context=server_tls)
    await build_and_transmit(sink(port, tls="ssl", ca_file=ca_file), failed_call())
    assert len(handler.delivered) == 1


async def test_implicit_tls_against_a_plain_port_is_permanent(start_server: StartServer) -> None:
    port = await start_server(RecordingHandler())
    with pytest.raises(Permanent, match="did not speak TLS"):
        await build_and_transmit(sink(port, tls="ssl", timeout="2s"), failed_call())


async def test_auth_after_starttls(
    start_server: StartServer, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    handler = RecordingHandler()
    port = await start_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    settings = {"tls": "starttls", "ca_file": ca_file, "username": USERNAME}
    await build_and_transmit(sink(port, **settings, password=PASSWORD), failed_call())
    assert [delivered.authenticated for delivered in handler.delivered] == [True]

    with pytest.raises(Permanent) as refused:
        await build_and_transmit(
            sink(port, **settings, password=PASSWORD + "-wrong"), failed_call()
        )
    assert refused.value.status_code == 535
    assert "authentication failed: 535" in refused.value.reason
    assert PASSWORD not in refused.value.reason and PASSWORD not in str(refused.value)
    assert len(handler.delivered) == 1


async def test_auth_without_tls_is_not_offered_and_permanent(start_server: StartServer) -> None:
    port = await start_server(RecordingHandler(), authenticator=check_login, auth_required=True)
    with pytest.raises(Permanent, match="does not offer AUTH") as refused:
        await build_and_transmit(sink(port, username=USERNAME, password=PASSWORD), failed_call())
    assert PASSWORD not in refused.value.reason


async def test_auth_over_implicit_tls(
    start_server: StartServer, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    handler = RecordingHandler()
    # aiosmtpd cannot tell an implicit-TLS transport from a plain one, so it would withhold
    # AUTH; the connection is encrypted all the same.
    port = await start_server(
        handler, ssl_context=server_tls, authenticator=check_login, auth_require_tls=False
    )
    email_sink = sink(port, tls="ssl", ca_file=ca_file, username=USERNAME, password=PASSWORD)
    await build_and_transmit(email_sink, failed_call())
    assert [delivered.authenticated for delivered in handler.delivered] == [True]


async def test_a_451_on_data_is_retryable_then_the_retry_succeeds(
    start_server: StartServer,
) -> None:
    handler = RecordingHandler(data_replies=["451 4.3.0 Temporary local problem, try later"])
    email_sink = sink(await start_server(handler))
    with pytest.raises(Retryable) as first:
        await build_and_transmit(email_sink, failed_call(attempt=1))
    assert first.value.status_code == 451
    assert first.value.reason == "message refused: 451 4.3.0 Temporary local problem, try later"
    result = await build_and_transmit(email_sink, failed_call(attempt=2))
    assert result.status_code == 250
    assert len(handler.delivered) == 1


async def test_a_451_on_the_only_recipient_is_retryable_then_the_retry_succeeds(
    start_server: StartServer,
) -> None:
    handler = RecordingHandler(rcpt_replies={"support@example.com": ["451 4.7.1 Greylisted"]})
    email_sink = sink(await start_server(handler))
    with pytest.raises(Retryable, match=r"support@example.com \(451 4.7.1 Greylisted\)"):
        await build_and_transmit(email_sink, failed_call())
    await build_and_transmit(email_sink, failed_call())
    assert handler.delivered[0].rcpt_tos == ["support@example.com"]


async def test_a_550_is_permanent_with_the_reply(start_server: StartServer) -> None:
    handler = RecordingHandler(data_replies=["550 5.7.1 Message rejected as spam"])
    with pytest.raises(Permanent) as refused:
        await build_and_transmit(sink(await start_server(handler)), failed_call())
    assert refused.value.status_code == 550
    assert refused.value.reason == "message refused: 550 5.7.1 Message rejected as spam"


async def test_partial_recipient_refusal_is_a_success_with_the_refusals_recorded(
    start_server: StartServer,
) -> None:
    handler = RecordingHandler(
        rcpt_replies={
            "gone@example.com": ["550 5.1.1 No such user"],
            "full@example.com": ["452 4.2.2 Mailbox full"],
        }
    )
    email_sink = sink(
        await start_server(handler),
        to=["support@example.com", "gone@example.com"],
        bcc=["full@example.com"],
    )
    result = await build_and_transmit(email_sink, failed_call())
    assert result.status_code == 250
    assert result.detail is not None
    assert "refused 2 of 3 recipients" in result.detail
    assert "gone@example.com (550 5.1.1 No such user)" in result.detail
    assert "full@example.com (452 4.2.2 Mailbox full)" in result.detail
    assert handler.delivered[0].rcpt_tos == ["support@example.com"]


async def test_every_recipient_refused_follows_their_codes(start_server: StartServer) -> None:
    temporary = RecordingHandler(
        rcpt_replies={
            "support@example.com": ["450 4.2.0 Busy"],
            "ops@example.com": ["451 4.3.0 Later"],
        }
    )
    with pytest.raises(Retryable, match="every recipient refused"):
        await build_and_transmit(
            sink(await start_server(temporary), cc="ops@example.com"), failed_call()
        )

    mixed = RecordingHandler(
        rcpt_replies={
            "support@example.com": ["450 4.2.0 Busy"],
            "ops@example.com": ["550 5.1.1 No such user"],
        }
    )
    with pytest.raises(Permanent) as refused:
        await build_and_transmit(
            sink(await start_server(mixed), cc="ops@example.com"), failed_call()
        )
    assert refused.value.status_code == 550
    assert "ops@example.com (550 5.1.1 No such user)" in refused.value.reason
    assert temporary.delivered == mixed.delivered == []


async def test_connection_refused_is_retryable() -> None:
    with pytest.raises(Retryable, match=r"connection to 127\.0\.0\.1:\d+ failed"):
        await build_and_transmit(sink(free_port()), failed_call())


async def test_a_server_that_never_greets_times_out_as_retryable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(Retryable, match="timed out"):
            await build_and_transmit(sink(port, timeout="200ms"), failed_call())
    finally:
        server.close()
        await server.wait_closed()


async def test_a_template_failure_is_permanent_and_sends_nothing(
    start_server: StartServer,
) -> None:
    handler = RecordingHandler()
    email_sink = sink(await start_server(handler), subject="{{ status + 1 }}")
    with pytest.raises(Permanent, match="TypeError"):
        await build_and_transmit(email_sink, failed_call())
    assert handler.delivered == []


async def test_each_attempt_reports_the_envelope_headers_and_the_servers_reply(
    start_server: StartServer, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    handler = RecordingHandler(data_replies=["451 4.3.0 Temporary local problem, try later"])
    port = await start_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    settings = {"tls": "starttls", "ca_file": ca_file, "username": USERNAME}
    email_sink = sink(port, **settings, password=PASSWORD)
    with pytest.raises(Retryable) as first:
        await build_and_transmit(email_sink, failed_call(attempt=1))
    refused = first.value.exchange
    assert refused is not None and refused.response is not None
    assert refused.request.method == "SMTP"
    assert refused.request.target == f"smtp://127.0.0.1:{port} (tls: starttls)"
    headers = refused.request.headers
    assert headers[:2] == (
        ("MAIL FROM", "router@example.com"),
        ("RCPT TO", "support@example.com"),
    )
    assert any(name == "Subject" for name, _ in headers)
    assert (refused.response.status, refused.response.body) == (
        451,
        "4.3.0 Temporary local problem, try later",
    )

    accepted = await build_and_transmit(email_sink, failed_call(attempt=2))
    assert accepted.exchange is not None and accepted.exchange.response is not None
    assert accepted.exchange.response.status == 250
    assert "queued as 4242" in accepted.exchange.response.body
    assert accepted.exchange.request.body  # the MIME body, after the headers
    for exchange in (refused, accepted.exchange):
        kept = repr(exchange)
        assert PASSWORD not in kept
        assert "+14155550199" not in kept and "5550199" not in kept  # the sample's caller


async def test_a_server_that_is_not_there_leaves_the_request_and_no_reply(
    start_server: StartServer,
) -> None:
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink(free_port()), failed_call())
    assert caught.value.exchange is not None
    assert caught.value.exchange.response is None
