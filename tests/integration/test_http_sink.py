"""The http sink against real receivers on 127.0.0.1: plain HTTP, TLS (trustme), raw TCP."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from router.core.samples import sample_event
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryError, DeliveryRequest, Permanent, Retryable, SinkResources
from sinks.http import HttpSink, HttpSinkConfig

TOKEN = "tok-0a1b2c3d4e5f"
URL_KEY = "qk-9z8y7x6w5v"
WHSEC = "whsec_" + base64.b64encode(b"integration-signing-key-32bytes!").decode()
RAW_SECRET = "raw shared secret 42"
SECRETS = (TOKEN, URL_KEY, "pa55word", WHSEC, RAW_SECRET)
PAYLOAD = json.dumps(sample_event(), indent=1).encode() + b"\n"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A fake CRM: records every request, answers from a script (default 200)."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    replies: list[Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(
        default_factory=list
    )
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.method, request.path, dict(request.headers), body))
        if request.path == "/slow":
            await self.release.wait()
            return web.Response(text="too late")
        if self.replies:
            return await self.replies.pop(0)(request)
        return web.json_response({"ok": True}, status=201)


def reply(status: int, text: str = "", **headers: str) -> Callable[..., Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text, headers=headers)

    return respond


def echo(status: int) -> Callable[..., Awaitable[web.Response]]:
    """A careless server that echoes the request's URL and headers in its error body."""

    async def respond(request: web.Request) -> web.Response:
        return web.Response(status=status, text=f"{request.url} {dict(request.headers)}")

    return respond


async def _start(
    receiver: Receiver, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    fake = Receiver()
    runner, port = await _start(fake)
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    fake.release.set()
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


def make_sink(url: str, session: aiohttp.ClientSession | None = None, **settings: Any) -> HttpSink:
    config = HttpSinkConfig.model_validate({"type": "http", "url": url, **settings})
    sink = HttpSink("crm", config, SinkResources(http=session))
    sink.blip_retry_waits = (0.01, 0.01)
    return sink


def make_request(delivery_id: str = "dlv-1", attempt: int = 1, **fields: Any) -> DeliveryRequest:
    event = sample_event()
    return DeliveryRequest(
        delivery_id=delivery_id,
        event_id=event["id"],
        sink="crm",
        rule="all-calls",
        event=event,
        attempt=attempt,
        **fields,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_delivers_the_received_bytes_verbatim(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    sink = make_sink(f"{receiver.base_url}/hook", session, headers={"X-Call": "{{ id }}"})
    result = await build_and_transmit(sink, make_request(payload=PAYLOAD))
    assert result.status_code == 201
    [received] = receiver.requests
    assert received.method == "POST"
    assert received.path == "/hook"
    assert received.body == PAYLOAD
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"].startswith("revring-router/")
    assert received.headers["Idempotency-Key"] == "dlv-1"
    assert received.headers["X-Call"] == "3c90c3cc-0d44-4b50-8888-8dd25736052a"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_put_and_patch_with_a_body_template(
    receiver: Receiver, session: aiohttp.ClientSession, method: str
) -> None:
    body = '{"type": "CALL", "notes": {{ summary | tojson }}}'
    sink = make_sink(f"{receiver.base_url}/calls/1", session, method=method, body=body)
    await build_and_transmit(sink, make_request())
    [received] = receiver.requests
    assert received.method == method
    assert json.loads(received.body) == {
        "type": "CALL",
        "notes": "Caller rescheduled a cleaning to Friday 10am.",
    }


@pytest.mark.parametrize(
    ("secret", "verifier"),
    [(WHSEC, Webhook(WHSEC)), (RAW_SECRET, Webhook(RAW_SECRET.encode()))],
    ids=["whsec", "raw"],
)
async def test_signature_verifies_with_the_standard_webhooks_library(
    receiver: Receiver, session: aiohttp.ClientSession, secret: str, verifier: Webhook
) -> None:
    sink = make_sink(f"{receiver.base_url}/hook", session, signing_secret=secret)
    await build_and_transmit(sink, make_request(delivery_id="dlv-signed", payload=PAYLOAD))
    [received] = receiver.requests
    assert verifier.verify(received.body, received.headers) == sample_event()
    assert received.headers["webhook-id"] == "dlv-signed"
    tampered = received.body.replace(b"COMPLETED", b"FAILED")
    with pytest.raises(Exception, match="No matching signature"):
        verifier.verify(tampered, received.headers)


async def test_idempotency_key_is_stable_across_attempts(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    receiver.replies.append(reply(500, "try later"))
    sink = make_sink(f"{receiver.base_url}/hook", session, signing_secret=WHSEC)
    with pytest.raises(Retryable):
        await build_and_transmit(sink, make_request("dlv-7", attempt=1))
    await build_and_transmit(sink, make_request("dlv-7", attempt=2))
    await build_and_transmit(sink, make_request("dlv-8"))
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert keys == ids == ["dlv-7", "dlv-7", "dlv-8"]


async def test_500_is_retryable_and_not_retried_in_process(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    receiver.replies.append(reply(500, "database\nunavailable"))
    sink = make_sink(f"{receiver.base_url}/hook", session)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "HTTP 500 Internal Server Error: database unavailable"
    assert caught.value.status_code == 500
    assert len(receiver.requests) == 1


async def test_429_honours_retry_after_seconds_and_http_date(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    receiver.replies += [
        reply(429, "slow down", **{"Retry-After": "7"}),
        reply(429, **{"Retry-After": format_datetime(later, usegmt=True)}),
    ]
    sink = make_sink(f"{receiver.base_url}/hook", session)
    with pytest.raises(Retryable) as first:
        await build_and_transmit(sink, make_request())
    assert first.value.retry_after == 7
    assert first.value.status_code == 429
    with pytest.raises(Retryable) as second:
        await build_and_transmit(sink, make_request())
    assert second.value.retry_after is not None
    assert 100 < second.value.retry_after <= 120


async def test_404_is_permanent_with_the_reason(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    receiver.replies.append(reply(404, "no route for this tenant"))
    sink = make_sink(f"{receiver.base_url}/hook", session)
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "HTTP 404 Not Found: no route for this tenant"
    assert caught.value.status_code == 404


async def test_retry_on_makes_409_retryable(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    receiver.replies.append(reply(409, "locked"))
    sink = make_sink(f"{receiver.base_url}/hook", session, retry_on=[409])
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "HTTP 409 Conflict: locked"


async def test_a_huge_error_body_yields_a_short_reason(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    receiver.replies.append(reply(503, "overloaded " * 200_000))
    sink = make_sink(f"{receiver.base_url}/hook", session)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason.startswith("HTTP 503 Service Unavailable: overloaded overloaded")
    assert len(caught.value.reason) < 250


async def test_timeout_is_retryable_and_not_retried_in_process(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    sink = make_sink(f"{receiver.base_url}/slow", session, timeout="200ms")
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "timeout after 200ms"
    assert len(receiver.requests) == 1


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    sink = make_sink(f"http://127.0.0.1:{closed_port()}/hook", session)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "connection refused by host 127.0.0.1"


async def test_dns_failure_names_only_the_host(session: aiohttp.ClientSession) -> None:
    sink = make_sink(f"http://crm.invalid/hook?key={URL_KEY}", session, timeout="5s")
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason == "DNS lookup failed for host crm.invalid"


class DroppingServer:
    """A raw TCP server that hangs up on the first `drops` connections, then answers 200."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if self.connections > self.drops:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(("drops", "delivered"), [(2, True), (3, False)])
async def test_connection_blips_get_two_quick_retries(
    session: aiohttp.ClientSession, drops: int, delivered: bool
) -> None:
    dropping = DroppingServer(drops)
    server = await asyncio.start_server(dropping.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = make_sink(f"http://127.0.0.1:{port}/hook", session)
    try:
        if delivered:
            assert (await build_and_transmit(sink, make_request())).status_code == 200
        else:
            with pytest.raises(Retryable) as caught:
                await build_and_transmit(sink, make_request())
            assert caught.value.reason == "server 127.0.0.1 disconnected before answering"
    finally:
        server.close()
        await server.wait_closed()
    assert dropping.connections == 3


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_receiver(certificate_authority: trustme.CA) -> AsyncIterator[Receiver]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    fake = Receiver()
    runner, port = await _start(fake, server_context)
    fake.base_url = f"https://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


async def test_https_with_a_trusted_ca_delivers(
    tls_receiver: Receiver, certificate_authority: trustme.CA
) -> None:
    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context)) as trusted:
        sink = make_sink(f"{tls_receiver.base_url}/hook", trusted)
        assert (await build_and_transmit(sink, make_request(payload=PAYLOAD))).status_code == 201
    assert tls_receiver.requests[0].body == PAYLOAD


async def test_untrusted_certificate_is_a_retryable_tls_error(tls_receiver: Receiver) -> None:
    sink = make_sink(f"{tls_receiver.base_url}/hook")  # its own session, default trust store
    try:
        with pytest.raises(Retryable) as caught:
            await build_and_transmit(sink, make_request())
    finally:
        await sink.close()
    assert caught.value.reason.startswith("TLS error: certificate not accepted for host 127.0.0.1")
    assert "certificate" in caught.value.reason.removeprefix("TLS error: certificate")
    assert tls_receiver.requests == []


async def test_https_against_plain_http_is_a_retryable_tls_error(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    sink = make_sink(receiver.base_url.replace("http://", "https://") + "/hook", session)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, make_request())
    assert caught.value.reason.startswith("TLS error: handshake with host 127.0.0.1 failed")


async def test_own_session_is_created_lazily_and_closed(receiver: Receiver) -> None:
    sink = make_sink(f"{receiver.base_url}/hook")
    await build_and_transmit(sink, make_request())
    await build_and_transmit(sink, make_request())
    own = sink._own_session
    assert own is not None and not own.closed
    await sink.close()
    assert own.closed
    assert len(receiver.requests) == 2


async def test_no_secret_appears_in_any_failure_reason(
    receiver: Receiver, session: aiohttp.ClientSession, tls_receiver: Receiver
) -> None:
    settings = {
        "headers": {"X-Api-Token": f"Bearer {TOKEN}", "X-Key": URL_KEY},
        "signing_secret": WHSEC,
        "timeout": "200ms",
        "retry_on": [409],
    }

    def secret_url(base: str, path: str) -> str:
        return base.replace("://", "://svc:pa55word@") + f"{path}?api_key={URL_KEY}"

    for status in (500, 429, 409, 404, 401, 302):
        receiver.replies.append(echo(status))
    attempts: list[tuple[str, str]] = [
        (secret_url(receiver.base_url, "/hook"), "HTTP 500"),
        (secret_url(receiver.base_url, "/hook"), "HTTP 429"),
        (secret_url(receiver.base_url, "/hook"), "HTTP 409"),
        (secret_url(receiver.base_url, "/hook"), "HTTP 404"),
        (secret_url(receiver.base_url, "/hook"), "HTTP 401"),
        (secret_url(receiver.base_url, "/hook"), "HTTP 302"),
        (secret_url(receiver.base_url, "/slow"), "timeout"),
        (secret_url(f"http://127.0.0.1:{closed_port()}", "/hook"), "connection refused"),
        (secret_url(tls_receiver.base_url, "/hook"), "TLS error"),
        (secret_url(receiver.base_url.replace("http:", "https:"), "/hook"), "TLS error"),
        (secret_url("http://crm.invalid", "/hook"), "DNS lookup failed"),
    ]
    failures: list[DeliveryError] = []
    for url, expected in attempts:
        sink = make_sink(url, session, **settings)
        with pytest.raises(DeliveryError) as caught:
            await build_and_transmit(sink, make_request())
        assert expected in caught.value.reason
        failures.append(caught.value)
    assert TOKEN in receiver.requests[0].headers["X-Api-Token"]  # the echo did carry them
    for failure in failures:
        shown = f"{failure.reason} {failure} {failure!r}"
        for secret in (*SECRETS, "svc:pa55word", "/hook", "api_key"):
            assert secret not in shown, (secret, shown)


@pytest.mark.parametrize(
    ("answer", "kept"),
    [(b'{"id":"crm-42"}', '{"id":"crm-42"}'), (b"x" * 20_000, "")],
    ids=["short answer kept", "long answer not read"],
)
async def test_a_success_keeps_no_request_body_and_only_a_short_answer(
    session: aiohttp.ClientSession, answer: bytes, kept: str
) -> None:
    """`PostingSink.transmit` on a success: the request's heads and size, not its body;
    the answer's body only when short and already come (`sinks.exchange`)."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        sink = make_sink(f"http://127.0.0.1:{port}/hook", session)
        result = await build_and_transmit(sink, make_request(payload=PAYLOAD))
    finally:
        await runner.cleanup()
    assert result.exchange is not None and result.exchange.response is not None
    sent, got = result.exchange.request, result.exchange.response
    assert (sent.body, sent.size, sent.truncated) == ("", len(PAYLOAD), True)
    assert got.status == 200 and got.body == kept
    assert got.truncated == (kept == "")
