"""The teams sink against a local fake of a Teams Workflows webhook (a real socket): the
card it posts, every answer Teams gives, escaping, the size limit, digests, a `card`
template, and the webhook URL kept out of every reason and log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from router.config.schema import parse_config
from router.core.units import Rate
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryError, DeliveryRequest, Digest, Permanent, Retryable, SinkResources
from sinks.registry import build_sink
from sinks.teams.card import MAX_MESSAGE_BYTES, message_size
from sinks.teams.sink import TeamsSink, TeamsSinkConfig
from tests.conftest import fresh_event, sample
from tests.fakes import TEAMS_PATH, FakeTeams
from tests.integration.test_delivery import engine
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    fake = await FakeTeams().start(TEAMS_PATH)
    yield fake
    await fake.close()


@pytest.fixture
async def resources() -> AsyncIterator[SinkResources]:
    async with aiohttp.ClientSession() as session:
        yield SinkResources(http=session)


def sink(url: str, resources: SinkResources, **options: Any) -> TeamsSink:
    config = TeamsSinkConfig.model_validate({"type": "teams", "webhook_url": url, **options})
    built = build_sink("ops-teams", config, resources)
    assert isinstance(built, TeamsSink)
    return built


def delivery(name: str = "failed-outbound", **changes: Any) -> DeliveryRequest:
    event = {**sample(name), **changes}
    return DeliveryRequest("del-1", event["id"], "ops-teams", "failed-calls", event)


def card_of(body: dict[str, Any]) -> dict[str, Any]:
    [attachment] = body["attachments"]
    return attachment["content"]


def texts(card: dict[str, Any]) -> list[str]:
    shown = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    for block in card["body"]:
        if block["type"] == "FactSet":
            shown += [f"{fact['title']}: {fact['value']}" for fact in block["facts"]]
    return shown


def assert_no_secret(error: DeliveryError, teams: FakeTeams) -> None:
    for shown in (error.reason, str(error), repr(error)):
        assert "TEAMSSIGSECRET" not in shown
        assert "4f1c0a9e2b7d4c1aa0e9" not in shown
        assert teams.url not in shown


async def test_a_call_posts_an_adaptive_card_in_a_message(
    teams: FakeTeams, resources: SinkResources
) -> None:
    result = await build_and_transmit(sink(teams.url, resources), delivery("completed-inbound"))

    assert result.status_code == 202
    [request] = teams.requests
    assert request["path"] == TEAMS_PATH and "sig=TEAMSSIGSECRETxyz" in request["query"]
    body = request["body"]
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    shown = texts(card)
    assert shown[0] == "✅ COMPLETED inbound call"
    assert "Agent: Ava" in shown
    assert "From: +1415•••0123" in shown and "To: +1415•••0199" in shown
    assert "Duration: 1m 48s" in shown
    assert "Hang-up cause: USER\\_ENDED" in shown
    assert "Caller rescheduled a cleaning to Friday 10am." in shown
    assert "agent: Thanks for calling Acme Dental, this is Ava. How can I help?" in shown
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open recording",
            "url": "https://recordings.example.com/3c90c3cc.mp3",
        }
    ]
    assert "+14155550123" not in json.dumps(body)


async def test_a_failed_call_shows_the_error_and_no_recording_action(
    teams: FakeTeams, resources: SinkResources
) -> None:
    await build_and_transmit(sink(teams.url, resources), delivery())
    card = card_of(teams.bodies()[0])
    shown = texts(card)
    assert shown[0] == "🔴 FAILED outbound call"
    assert "Error: SIP 503 Service Unavailable from carrier" in shown
    assert "To: +4420•••8750" in shown
    assert "actions" not in card


async def test_event_text_cannot_format_link_or_mention(
    teams: FakeTeams, resources: SinkResources
) -> None:
    hostile = "**URGENT** <at>General</at> [click](https://evil.example) _now_\n- item"
    await build_and_transmit(
        sink(teams.url, resources),
        delivery("completed-inbound", summary=hostile, agentName="<at>Ops</at>"),
    )
    shown = texts(card_of(teams.bodies()[0]))
    assert (
        "\\*\\*URGENT\\*\\* \\<at\\>General\\</at\\> \\[click\\](https://evil.example) "
        "\\_now\\_\n\\- item"
    ) in shown
    assert "Agent: \\<at\\>Ops\\</at\\>" in shown


async def test_a_huge_call_is_cut_under_the_limit_and_still_delivered(
    teams: FakeTeams, resources: SinkResources
) -> None:
    long_turn = {"role": "user", "content": "word " * 4000}
    huge = delivery(
        "completed-inbound",
        summary="é" * 30_000,
        errorMessage="x" * 30_000,
        transcript=[long_turn] * 50,
        agentName="A" * 10_000,
    )
    result = await build_and_transmit(sink(teams.url, resources), huge)
    assert result.status_code == 202
    [request] = teams.requests
    assert message_size(request["body"]) <= MAX_MESSAGE_BYTES < 28 * 1024
    card = card_of(request["body"])
    assert card["actions"][0]["url"] == "https://recordings.example.com/3c90c3cc.mp3"
    assert any(text.endswith("…") for text in texts(card))


async def test_a_digest_is_one_card_with_the_count_and_the_first_calls(
    teams: FakeTeams, resources: SinkResources
) -> None:
    calls = [fresh_event(sipTrunkId="sip-7") for _ in range(37)]
    digest = Digest(
        {"sipTrunkId": "sip-7"}, "2026-11-20T15:02:00+00:00", "2026-11-20T15:04:00+00:00", calls
    )
    request = DeliveryRequest(
        "d", calls[0]["id"], "ops-teams", "trunk-outage", calls[0], digest=digest
    )
    await build_and_transmit(sink(teams.url, resources), request)
    [body] = teams.bodies()
    shown = texts(card_of(body))
    assert shown[0] == "🛎️ 37 FAILED calls on trunk sip-7 in 2 min"
    listed = [text for text in shown if text.startswith("🔴 FAILED outbound call to +4420•••8750")]
    assert len(listed) == 10
    assert "…and 27 more" in shown
    assert "By status: FAILED ×37" in shown
    assert "+442071838750" not in json.dumps(body)


async def test_a_card_template_replaces_the_card_with_its_values_escaped(
    teams: FakeTeams, resources: SinkResources
) -> None:
    card = """{
      "type": "AdaptiveCard", "version": "1.4",
      "body": [
        {"type": "TextBlock", "text": "**{{ status }}** call: {{ summary }}"},
        {"type": "TextBlock", "text": {{ errorMessage }}}
      ],
      "actions": [{"type": "Action.OpenUrl", "title": "Recording", "url": "{{ recordingUrl }}"}]
    }"""
    event_changes = {
        "summary": 'Said "hi" *loudly*", "injected": "yes',
        "errorMessage": "<at>all</at>",
        "recordingUrl": "https://rec.example.com/a_b/c_d.mp3",
    }
    await build_and_transmit(
        sink(teams.url, resources, card=card), delivery("completed-inbound", **event_changes)
    )
    sent = card_of(teams.bodies()[0])
    assert sent["body"][0]["text"] == (
        '**COMPLETED** call: Said "hi" \\*loudly\\*", "injected": "yes'
    )
    assert sent["body"][1]["text"] == "\\<at\\>all\\</at\\>"
    assert "injected" not in sent
    assert sent["actions"][0]["url"] == "https://rec.example.com/a_b/c_d.mp3"


async def test_a_card_template_failing_on_a_call_is_permanent_and_sends_nothing(
    teams: FakeTeams, resources: SinkResources
) -> None:
    card = '{"type": "AdaptiveCard", "body": [{{ status + 1 }}]}'
    with pytest.raises(Permanent, match="teams: card: template failed: TypeError"):
        await build_and_transmit(sink(teams.url, resources, card=card), delivery())
    assert teams.requests == []


@pytest.mark.parametrize("status", [200, 202])
async def test_200_and_202_are_delivered(
    teams: FakeTeams, resources: SinkResources, status: int
) -> None:
    teams.answer = lambda n: (status, "", {})
    assert (await build_and_transmit(sink(teams.url, resources), delivery())).status_code == status


async def test_429_is_retried_after_teams_retry_after(
    teams: FakeTeams, resources: SinkResources
) -> None:
    teams.answer = lambda n: (429, "Too many requests", {"Retry-After": "17"})
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink(teams.url, resources), delivery())
    assert caught.value.retry_after == 17.0
    assert caught.value.reason == "teams: HTTP 429 Too Many Requests: Too many requests"
    assert_no_secret(caught.value, teams)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(
    teams: FakeTeams, resources: SinkResources, status: int
) -> None:
    teams.answer = lambda n: (status, "", {})
    with pytest.raises(Retryable) as caught:
        await build_and_transmit(sink(teams.url, resources), delivery())
    assert caught.value.reason.startswith(f"teams: HTTP {status}")
    assert len(teams.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
async def test_client_errors_are_permanent_with_the_reason_and_no_url(
    teams: FakeTeams, resources: SinkResources, status: int
) -> None:
    echo = {
        "error": {"code": "TriggerInputSchemaMismatch", "message": f"bad input at {TEAMS_PATH}"}
    }
    teams.answer = lambda n: (status, echo, {})
    with pytest.raises(Permanent) as caught:
        await build_and_transmit(sink(teams.url, resources), delivery())
    assert caught.value.reason.startswith(f"teams: HTTP {status}")
    assert "TriggerInputSchemaMismatch" in caught.value.reason
    assert_no_secret(caught.value, teams)


def test_a_preview_and_the_repr_keep_the_webhook_url_secret() -> None:
    url = "https://prod-01.westus.logic.azure.com" + TEAMS_PATH + "?sig=TEAMSSIGSECRETxyz"
    config = TeamsSinkConfig(type="teams", webhook_url=url)
    rendered = TeamsSink("t", config, SinkResources()).preview(delivery())
    assert "TEAMSSIGSECRET" not in json.dumps(rendered)
    assert "TEAMSSIGSECRET" not in repr(config) and "TEAMSSIGSECRET" not in str(config.model_dump())


def test_an_empty_webhook_url_leaves_the_sink_unconfigured() -> None:
    # The engine sends nothing to an unconfigured sink (tests/unit/test_fast_path.py).
    config = TeamsSinkConfig(type="teams", webhook_url="")
    assert config.missing_settings() == ["webhook_url"]


RULES = """
version: 1
defaults:
  retry: {max_attempts: 5, initial_delay: 100ms, max_delay: 200ms, max_age: 1h}
sinks:
  ops-teams:
    type: teams
    webhook_url: "%(url)s"
rules:
  - name: failed-calls
    when: {status: FAILED}
    to: [ops-teams]
"""


async def test_end_to_end_a_refused_card_is_dead_with_no_url_in_reason_log_or_admin_answer(
    tmp_path, write_rules, teams: FakeTeams, caplog: pytest.LogCaptureFixture
) -> None:
    teams.answer = lambda n: (400, f"Bad Request for {TEAMS_PATH}", {}) if n == 1 else (202, "", {})
    rules = write_rules(RULES % {"url": teams.url})
    caplog.set_level(logging.DEBUG)
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, fresh_event())
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("dead"))
        [dead] = await store.list_deliveries("dead")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        admin_answer = await (await client.get("/admin/deliveries", headers=auth)).text()
        await client.post(f"/admin/deliveries/{dead.id}/replay", headers=auth)
        await wait_for(lambda: store.list_deliveries("delivered"))
    assert dead.last_error == (
        "teams: HTTP 400 Bad Request: Bad Request for /workflows/***/triggers/manual/paths/invoke"
    )
    # The fake Teams app logs its own access lines (with the URL) in this process: skip them.
    router_log = "\n".join(
        record.getMessage() for record in caplog.records if record.name != "aiohttp.access"
    )
    assert "teams: HTTP 400" in router_log
    for shown in (admin_answer, router_log):
        assert "TEAMSSIGSECRET" not in shown and "4f1c0a9e2b7d4c1aa0e9" not in shown
    assert len(teams.requests) == 2


def test_every_sink_option_applies_to_teams() -> None:
    text = """
version: 1
sinks:
  ops-teams:
    type: teams
    webhook_url: https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=S
    rate_limit: 1/s
    concurrency: 1
    retry: {max_attempts: 4}
    timeout: 3s
rules: [{name: all, to: [ops-teams]}]
"""
    config = parse_config(text, "rules.yaml", environ={})
    sink = config.sinks["ops-teams"]
    assert sink.effective_rate_limit() == Rate(1, 1)
    assert sink.effective_concurrency() == 1
    assert config.retry_policy("ops-teams").max_attempts == 4
    assert isinstance(sink, TeamsSinkConfig) and sink.timeout == 3.0
