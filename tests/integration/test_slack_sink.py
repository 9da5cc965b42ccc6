"""The slack sink against a local aiohttp app that answers the way Slack does.

The fake serves `/api/chat.postMessage` (Web API: HTTP 200 with ok true/false, 429 with
Retry-After) and an incoming-webhook path (`ok` text, or 4xx/5xx with an error body).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.engine.requests import build_and_transmit
from sinks.base import DeliveryError, DeliveryRequest, Permanent, Retryable, SinkResources
from sinks.registry import build_sink
from sinks.slack.sink import SlackSink, SlackSinkConfig

TOKEN = "xoxb-1111-2222-SECRETTOKEN"
WEBHOOK_PATH = "/services/T0001/B0002/SECRETWEBHOOKPATH"
from tests.conftest import SAMPLES_DIR  # noqa: E402

SAMPLES = SAMPLES_DIR


@dataclass
class FakeSlack:
    """Records every request; `answer` says how the next ones are answered."""

    answer: tuple[int, Any, dict[str, str]] = (200, None, {})
    requests: list[dict[str, Any]] = field(default_factory=list)
    hang: bool = False
    drop: bool = False

    async def _record(self, request: web.Request) -> None:
        self.requests.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "body": json.loads(await request.text()),
            }
        )
        if self.hang:
            await asyncio.Event().wait()
        if self.drop:
            assert request.transport is not None
            request.transport.close()

    async def post_message(self, request: web.Request) -> web.Response:
        await self._record(request)
        status, body, headers = self.answer
        if body is None:
            body = {"ok": True, "channel": "C0123", "ts": "1732114931.000100"}
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    async def webhook(self, request: web.Request) -> web.Response:
        await self._record(request)
        status, body, headers = self.answer
        return web.Response(status=status, text="ok" if body is None else body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self.post_message)
        app.router.add_post(WEBHOOK_PATH, self.webhook)
        return app


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSlack, str]]:
    slack = FakeSlack()
    server = TestServer(slack.app(), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield slack, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture(params=["shared-session", "sdk-session"])
async def resources(request: pytest.FixtureRequest) -> AsyncIterator[SinkResources]:
    if request.param == "sdk-session":
        yield SinkResources()
        return
    async with aiohttp.ClientSession() as session:
        yield SinkResources(http=session)


def delivery(sample: str = "failed-outbound") -> DeliveryRequest:
    event = json.loads((SAMPLES / f"{sample}.json").read_text())
    return DeliveryRequest("del-1", event["id"], "ops-slack", "failed-calls", event)


def webhook_sink(base: str, resources: SinkResources, **options: Any) -> SlackSink:
    config = SlackSinkConfig(type="slack", webhook_url=base + WEBHOOK_PATH, **options)
    sink = build_sink("ops-slack", config, resources)
    assert isinstance(sink, SlackSink)
    return sink


def bot_sink(base: str, resources: SinkResources, **options: Any) -> SlackSink:
    config = SlackSinkConfig(
        type="slack", token=TOKEN, channel="#ops-alerts", api_url=base + "/api/", **options
    )
    sink = build_sink("ops-slack", config, resources)
    assert isinstance(sink, SlackSink)
    return sink


def assert_no_secret(error: DeliveryError) -> None:
    for shown in (error.reason, str(error), repr(error)):
        assert TOKEN not in shown
        assert "SECRET" not in shown
        assert WEBHOOK_PATH not in shown


async def test_webhook_mode_delivers_a_readable_alert(
    fake: tuple[FakeSlack, str], resources: SinkResources
) -> None:
    slack, base = fake
    sink = webhook_sink(base, resources)
    result = await build_and_transmit(sink, delivery("completed-inbound"))

    assert result.status_code == 200
    [received] = slack.requests
    assert received["path"] == WEBHOOK_PATH
    assert received["body"] == sink.build(delivery("completed-inbound"))
    assert received["body"]["text"].startswith(":white_check_mark: COMPLETED inbound call")
    header = received["body"]["blocks"][0]
    assert header["text"]["text"] == ":white_check_mark: COMPLETED inbound call"
    assert "channel" not in received["body"]


async def test_bot_mode_posts_to_the_channel_with_the_bearer_token(
    fake: tuple[FakeSlack, str], resources: SinkResources
) -> None:
    slack, base = fake
    sink = bot_sink(base, resources)
    result = await build_and_transmit(sink, delivery())

    assert result.status_code == 200
    assert result.detail == "ts=1732114931.000100 in C0123"
    [received] = slack.requests
    assert received["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert received["body"]["channel"] == "#ops-alerts"
    assert received["body"]["blocks"] == sink.build(delivery())["blocks"]
    assert received["body"]["text"].startswith(":red_circle: FAILED outbound call")


async def test_clients_are_built_once_per_sink(fake: tuple[FakeSlack, str]) -> None:
    slack, base = fake
    sink = bot_sink(base, SinkResources())
    await build_and_transmit(sink, delivery())
    client = sink._web
    await build_and_transmit(sink, delivery())
    assert client is not None and sink._web is client and len(slack.requests) == 2


@pytest.mark.parametrize(
    "code",
    [
        "channel_not_found",
        "invalid_auth",
        "channel_is_archived",
        "no_text",
        "invalid_blocks",
        "not_in_channel",
        "account_inactive",
        "token_revoked",
    ],
)
async def test_bot_mode_slack_errors_are_permanent_with_the_code(
    fake: tuple[FakeSlack, str], resources: SinkResources, code: str
) -> None:
    slack, base = fake
    slack.answer = (200, {"ok": False, "error": code}, {})
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(bot_sink(base, resources), delivery())
    assert caught.value.reason == f"slack: {code}"
    assert_no_secret(caught.value)
    assert len(slack.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, "invalid_payload", "slack: invalid_payload"),
        (403, "action_prohibited", "slack: action_prohibited"),
        (404, "no_service", "slack: no_service"),
        (410, "channel_is_archived", "slack: channel_is_archived"),
        (404, "<html>Not Found</html>", "slack: HTTP 404"),
    ],
)
async def test_webhook_client_errors_are_permanent_with_the_code(
    fake: tuple[FakeSlack, str], resources: SinkResources, status: int, body: str, reason: str
) -> None:
    slack, base = fake
    slack.answer = (status, body, {})
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(webhook_sink(base, resources), delivery())
    assert caught.value.reason == reason
    assert caught.value.status_code == status
    assert_no_secret(caught.value)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), (None, None)])
async def test_rate_limit_is_retryable_with_retry_after_and_not_retried_by_slack_sdk(
    fake: tuple[FakeSlack, str],
    resources: SinkResources,
    mode: str,
    header: str | None,
    seconds: float | None,
) -> None:
    slack, base = fake
    headers = {"Retry-After": header} if header else {}
    body: Any = {"ok": False, "error": "ratelimited"} if mode == "bot" else "rate_limited"
    slack.answer = (429, body, headers)
    sink = bot_sink(base, resources) if mode == "bot" else webhook_sink(base, resources)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, delivery())
    assert caught.value.reason == "slack: ratelimited"
    assert caught.value.retry_after == seconds
    assert len(slack.requests) == 1
    assert_no_secret(caught.value)


async def test_ratelimited_error_with_http_200_is_retryable(
    fake: tuple[FakeSlack, str], resources: SinkResources
) -> None:
    slack, base = fake
    slack.answer = (200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"})
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(bot_sink(base, resources), delivery())
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, {"ok": False, "error": "internal_error"}, "slack: HTTP 500 (internal_error)"),
        (503, "<html>Service Unavailable</html>", "slack: HTTP 503"),
        (502, "Bad Gateway", "slack: HTTP 502"),
        (200, "not json", "slack: unreadable answer (AttributeError)"),
        (200, {"ok": False, "error": "service_unavailable"}, "slack: service_unavailable"),
    ],
)
async def test_bot_mode_server_errors_are_retryable(
    fake: tuple[FakeSlack, str],
    resources: SinkResources,
    status: int,
    body: Any,
    reason: str | None,
) -> None:
    slack, base = fake
    headers = {"Content-Type": "text/html"} if isinstance(body, str) and "<html>" in body else {}
    slack.answer = (status, body, headers)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(bot_sink(base, resources), delivery())
    if reason is not None:
        assert caught.value.reason == reason
    assert caught.value.reason.startswith("slack: ")
    assert len(slack.requests) == 1
    assert_no_secret(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_webhook_server_errors_are_retryable(
    fake: tuple[FakeSlack, str], resources: SinkResources, status: int
) -> None:
    slack, base = fake
    slack.answer = (status, "upstream trouble", {})
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(webhook_sink(base, resources), delivery())
    assert caught.value.reason == f"slack: HTTP {status}"
    assert len(slack.requests) == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("mode", ["webhook", "bot"])
async def test_connection_refused_is_retryable_and_names_no_secret(
    resources: SinkResources, mode: str
) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    sink = bot_sink(base, resources) if mode == "bot" else webhook_sink(base, resources)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, delivery())
    assert caught.value.reason.startswith("slack: connection failed (")
    assert "127.0.0.1" not in caught.value.reason
    assert_no_secret(caught.value)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
async def test_a_dropped_connection_is_retryable_and_slack_sdk_does_not_retry_it(
    fake: tuple[FakeSlack, str], resources: SinkResources, mode: str
) -> None:
    slack, base = fake
    slack.drop = True
    sink = bot_sink(base, resources) if mode == "bot" else webhook_sink(base, resources)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, delivery())
    assert caught.value.reason == "slack: connection failed (ServerDisconnectedError)"
    assert len(slack.requests) == 1


@pytest.mark.parametrize("mode", ["webhook", "bot"])
async def test_a_hanging_slack_times_out_as_retryable(
    fake: tuple[FakeSlack, str], resources: SinkResources, mode: str
) -> None:
    slack, base = fake
    slack.hang = True
    options = {"timeout": "200ms"}
    sink = (
        bot_sink(base, resources, **options)
        if mode == "bot"
        else webhook_sink(base, resources, **options)
    )
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, delivery())
    assert caught.value.reason == "slack: timed out after 0.2s"
    assert len(slack.requests) == 1


async def test_a_failing_template_is_permanent_and_sends_nothing(
    fake: tuple[FakeSlack, str],
) -> None:
    slack, base = fake
    sink = webhook_sink(base, SinkResources(), blocks='[{"type": "section", "text": {{ id }}},]')
    with pytest.raises(Permanent, match="blocks: template did not render valid JSON"):
        await build_and_transmit(sink, delivery())
    assert slack.requests == []


async def test_text_template_sends_only_the_escaped_text(
    fake: tuple[FakeSlack, str], resources: SinkResources
) -> None:
    slack, base = fake
    sink = bot_sink(base, resources, text="{{ status }}: {{ errorMessage }}")
    event = json.loads((SAMPLES / "failed-outbound.json").read_text())
    event["errorMessage"] = "<!channel> carrier down"
    await build_and_transmit(sink, DeliveryRequest("d", event["id"], "ops-slack", "r", event))
    [received] = slack.requests
    assert received["body"]["text"] == "FAILED: &lt;!channel&gt; carrier down"
    assert "blocks" not in received["body"]


def test_secrets_stay_out_of_the_config_repr() -> None:
    webhook = SlackSinkConfig(type="slack", webhook_url="https://hooks.slack.com" + WEBHOOK_PATH)
    bot = SlackSinkConfig(type="slack", token=TOKEN, channel="#c")
    assert "SECRET" not in repr(webhook) and "SECRET" not in str(webhook.model_dump())
    assert TOKEN not in repr(bot)


def test_an_empty_webhook_url_leaves_the_sink_unconfigured() -> None:
    # The engine sends nothing to an unconfigured sink (tests/unit/test_fast_path.py).
    assert SlackSinkConfig(type="slack", webhook_url="").missing_settings() == ["webhook_url"]
    assert SlackSinkConfig(type="slack").missing_settings() == ["webhook_url"]


def test_default_rate_limit_is_one_per_second_and_overridable() -> None:
    default = SlackSinkConfig(type="slack", webhook_url="https://x.example/h")
    custom = SlackSinkConfig(type="slack", webhook_url="https://x.example/h", rate_limit="30/m")
    assert default.effective_rate_limit() is not None
    assert default.effective_rate_limit().per_second == 1.0
    assert custom.effective_rate_limit().per_second == 0.5


@pytest.mark.parametrize("mode", ["webhook", "bot"])
async def test_each_answer_is_reported_with_the_request_that_got_it_and_no_secret(
    fake: tuple[FakeSlack, str], resources: SinkResources, mode: str
) -> None:
    slack, base = fake
    body: Any = {"ok": False, "error": "ratelimited"} if mode == "bot" else "rate_limited"
    slack.answer = (429, body, {"Retry-After": "7"})
    sink = bot_sink(base, resources) if mode == "bot" else webhook_sink(base, resources)
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink, delivery())
    limited = caught.value.exchange
    assert limited is not None and limited.response is not None
    assert limited.request.method == "POST"
    if mode == "bot":
        assert limited.request.target == base + "/api/chat.postMessage"
        assert ("Authorization", "Bearer ***") in limited.request.headers
    else:
        assert limited.request.target == base + "/services/***/***/***"
    assert json.loads(limited.request.body)["text"] == slack.requests[0]["body"]["text"]
    assert limited.response.status == 429
    assert ("Retry-After", "7") in limited.response.headers
    assert "ratelimited" in limited.response.body or "rate_limited" in limited.response.body
    for kept in (repr(limited), str(limited)):
        assert TOKEN not in kept and "SECRETWEBHOOKPATH" not in kept
        assert "+14155550142" not in kept  # the sample caller, masked in the body

    slack.answer = (200, None, {})
    sent = await build_and_transmit(sink, delivery())
    assert sent.exchange is not None and sent.exchange.response is not None
    assert sent.exchange.response.status == 200
    assert TOKEN not in repr(sent.exchange)


async def test_an_answer_that_never_came_reports_the_request_alone(
    fake: tuple[FakeSlack, str], resources: SinkResources
) -> None:
    slack, base = fake
    slack.drop = True
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(webhook_sink(base, resources), delivery())
    assert caught.value.exchange is not None
    assert caught.value.exchange.response is None
    assert "SECRETWEBHOOKPATH" not in repr(caught.value.exchange)
