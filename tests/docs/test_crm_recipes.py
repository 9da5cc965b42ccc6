"""The documentation's CRM recipes render what each API documents: for HubSpot, Salesforce,
Pipedrive and the Zapier/Make catch hooks, the snippet is loaded from docs/sinks/http.md as a
user would paste it, rendered against sample calls, and sent to a local receiver (a
real socket); the request is checked field by field (names, types, units).

The CRM flows (`steps`) run through the real service against local stand-ins of the APIs
(`tests.crm_fakes`); the HubSpot and Salesforce ones authenticate with OAuth2 (`auth:`),
their stand-ins taking only the tokens their own token endpoint issued
(`tests.oauth_fakes`), one of them revoked in the middle of a flow."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from router.config.schema import parse_config
from router.core.samples import sample_event
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryRequest, SinkResources
from sinks.http import HttpSink, HttpSinkConfig
from sinks.registry import build_sink
from tests.conftest import fresh_event, sample
from tests.crm_fakes import CrmFake, GoHighLevelFake, HubSpotFake, PipedriveFake, SalesforceFake
from tests.docs import blocks, section
from tests.oauth_fakes import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, TokenEndpoint
from tests.receivers import Received, Receiver
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

PAGE = "sinks/http.md"
ENVIRONMENT = {
    "HUBSPOT_TOKEN": "pat-na1-hubspot-token",
    "HUBSPOT_CLIENT_ID": CLIENT_ID,
    "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET,
    "HUBSPOT_REFRESH_TOKEN": FIRST_REFRESH,
    "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
    "SALESFORCE_ACCESS_TOKEN": "00Dxx!salesforce-token",
    "SALESFORCE_CLIENT_ID": CLIENT_ID,
    "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
    "SALESFORCE_REFRESH_TOKEN": FIRST_REFRESH,
    "PIPEDRIVE_API_TOKEN": "pipedrive-token-123",
    "ZAPIER_CATCH_HOOK_URL": "https://hooks.zapier.com/hooks/catch/123456/abcdef/",
    "MAKE_WEBHOOK_URL": "https://hook.eu1.make.com/abc123def456",
    "GHL_TOKEN": "pit-ghl-token-0123",
    "GHL_LOCATION_ID": "loc-1",
}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOURS_MINUTES = re.compile(r"^\d{2}:\d{2}$")
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
HUBSPOT_STATUSES = {
    "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED",
    "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING",
}  # fmt: skip


def load(heading: str, index: int = 0) -> HttpSinkConfig:
    """The sink of the `index`-th yaml snippet under the recipe heading starting `heading`,
    loaded as `revring-router` loads rules.yaml, its templates clean against the sample."""
    snippet = blocks(section(PAGE, heading), "yaml")[index]
    config = parse_config("version: 1\n" + snippet, PAGE, ENVIRONMENT)
    [sink] = config.sinks.values()
    assert isinstance(sink, HttpSinkConfig)
    assert sink.sample_problems(sample_event()) == []
    return sink


def call(name: str, **variables: Any) -> dict[str, Any]:
    event = sample(name)
    event["variables"] = {**(event.get("variables") or {}), **variables}
    return event


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver(answer=lambda request, n: 201).start()
    yield receiver
    await receiver.close()


async def send(config: HttpSinkConfig, event: dict[str, Any], receiver: Receiver) -> Received:
    """The request the recipe sends for `event`, caught by a local server in the CRM's
    place (same method, headers and body; only the address differs)."""
    local = config.model_copy(update={"url": SecretStr(receiver.url("/crm"))})
    sink = HttpSink("crm", local, SinkResources())
    try:
        await build_and_transmit(sink, DeliveryRequest("dlv-1", event["id"], "crm", "r", event))
    finally:
        await sink.close()
    return receiver.received[-1]


async def test_hubspot_creates_a_call_engagement_with_documented_properties(
    receiver: Receiver,
) -> None:
    config = load("HubSpot")
    assert config.url.get_secret_value() == "https://api.hubapi.com/crm/v3/objects/calls"
    assert config.success_codes == [201]
    received = await send(config, call("completed-inbound", hubspot_contact_id="501"), receiver)

    assert received.headers["Authorization"] == "Bearer pat-na1-hubspot-token"
    assert received.headers["Content-Type"] == "application/json"
    body = received.json
    properties = body["properties"]
    assert all(isinstance(value, str) for value in properties.values())  # HubSpot's type
    assert ISO_UTC.match(properties["hs_timestamp"])
    assert properties["hs_timestamp"] == "2026-11-20T15:04:01Z"
    assert properties["hs_call_duration"] == "108000"  # milliseconds
    assert properties["hs_call_direction"] == "INBOUND"
    assert properties["hs_call_status"] in HUBSPOT_STATUSES
    assert properties["hs_call_status"] == "COMPLETED"
    assert properties["hs_call_recording_url"] == "https://recordings.example.com/3c90c3cc.mp3"
    assert properties["hs_call_from_number"] == "+14155550123"
    assert properties["hs_call_to_number"] == "+14155550199"
    assert properties["hs_call_title"] == "RevRing inbound call (completed)"
    assert properties["hs_call_body"].startswith("Caller rescheduled a cleaning")
    assert "agent: Thanks for calling Acme Dental" in properties["hs_call_body"]
    assert body["associations"] == [
        {
            "to": {"id": "501"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("FAILED", "FAILED"), ("CANCELED", "CANCELED"), ("TRANSFERRED", "COMPLETED"),
     ("SOMETHING_NEW", "COMPLETED")],
)  # fmt: skip
async def test_hubspot_maps_every_revring_status_to_a_hubspot_one(
    receiver: Receiver, status: str, expected: str
) -> None:
    event = {**sample("failed-outbound"), "status": status}
    properties = (await send(load("HubSpot"), event, receiver)).json["properties"]
    assert properties["hs_call_status"] == expected
    assert properties["hs_call_duration"] == "0"
    assert properties["hs_timestamp"] == "2026-11-20T15:02:11Z"  # no endedAt: initiatedAt
    assert "hs_call_recording_url" not in properties  # none, or not https
    assert (await send(load("HubSpot"), event, receiver)).json["associations"] == []


async def test_hubspot_leaves_out_a_recording_that_is_not_https(receiver: Receiver) -> None:
    event = {**sample("completed-inbound"), "recordingUrl": "http://rec.example.com/a.mp3"}
    properties = (await send(load("HubSpot"), event, receiver)).json["properties"]
    assert "hs_call_recording_url" not in properties


async def test_salesforce_creates_a_completed_task_on_the_matching_record(
    receiver: Receiver,
) -> None:
    config = load("Salesforce")
    assert config.url.get_secret_value() == (
        "https://acme.my.salesforce.com/services/data/v62.0/sobjects/Task"
    )
    assert config.success_codes == [201]
    event = call("completed-inbound", salesforce_who_id="003XXXXXXXXXXXXXXX")
    received = await send(config, event, receiver)

    assert received.headers["Authorization"] == "Bearer 00Dxx!salesforce-token"
    task = received.json
    assert task["Status"] == "Completed"
    assert task["TaskSubtype"] == "Call"
    assert task["CallType"] in ("Inbound", "Outbound", "Internal")
    assert task["CallType"] == "Inbound"
    assert task["CallDurationInSeconds"] == 108 and isinstance(task["CallDurationInSeconds"], int)
    assert DATE.match(task["ActivityDate"]) and task["ActivityDate"] == "2026-11-20"
    assert task["WhoId"] == "003XXXXXXXXXXXXXXX"
    assert task["WhatId"] is None
    assert task["CallObject"] == event["id"]
    assert task["CallDisposition"] == "USER_ENDED"
    assert len(task["Subject"]) <= 255 and task["Subject"] == "RevRing inbound call: completed"
    assert task["Description"].startswith("Caller rescheduled a cleaning")
    assert len(task["Description"]) <= 32_000


async def test_salesforce_a_failed_call_is_still_a_completed_task_with_its_error(
    receiver: Receiver,
) -> None:
    task = (await send(load("Salesforce"), sample("failed-outbound"), receiver)).json
    assert task["Status"] == "Completed" and task["CallType"] == "Outbound"
    assert task["CallDurationInSeconds"] == 0
    assert task["CallDisposition"] == "SIP 503 Service Unavailable from carrier"
    assert task["WhoId"] is None and task["Description"] == "No summary"


async def test_pipedrive_logs_a_done_call_activity(receiver: Receiver) -> None:
    config = load("Pipedrive")
    url = config.url.get_secret_value()
    assert url == (
        "https://yourcompany.pipedrive.com/api/v1/activities?api_token=pipedrive-token-123"
    )
    event = call("completed-inbound", pipedrive_person_id="42")
    event["summary"] = "Asked about <b>prices</b> & hours"
    activity = (await send(config, event, receiver)).json

    assert activity["type"] == "call"
    assert activity["done"] == 1
    assert activity["subject"] == "RevRing inbound call: completed"
    assert DATE.match(activity["due_date"]) and activity["due_date"] == "2026-11-20"
    assert HOURS_MINUTES.match(activity["due_time"]) and activity["due_time"] == "15:02"
    assert activity["duration"] == "00:02"  # 108 s, to the nearest minute, as HH:MM
    assert activity["person_id"] == 42
    assert activity["note"] == "Asked about &lt;b&gt;prices&lt;/b&gt; &amp; hours"  # HTML


async def test_pipedrive_long_calls_and_calls_without_a_person(receiver: Receiver) -> None:
    event = {**sample("failed-outbound"), "durationSeconds": 3 * 3600 + 25 * 60 + 10}
    activity = (await send(load("Pipedrive"), event, receiver)).json
    assert activity["duration"] == "03:25"
    assert activity["person_id"] is None
    assert activity["note"] == "No summary"


def test_pipedrive_token_never_shows_in_a_render() -> None:
    config = load("Pipedrive")
    request = DeliveryRequest("dlv-1", "e", "pipedrive", "r", sample_event())
    rendered = HttpSink("pipedrive", config, SinkResources()).preview(request)
    assert rendered["url"] == "https://yourcompany.pipedrive.com/***"
    assert "pipedrive-token-123" not in json.dumps(rendered)


@pytest.mark.parametrize(("heading", "index"), [("Zapier or Make", 0), ("Zapier or Make", 1)])
async def test_catch_hooks_get_the_call_exactly_as_revring_sent_it(
    receiver: Receiver, heading: str, index: int
) -> None:
    config = load(heading, index)
    assert config.body is None
    assert config.url.get_secret_value() in (
        ENVIRONMENT["ZAPIER_CATCH_HOOK_URL"],
        ENVIRONMENT["MAKE_WEBHOOK_URL"],
    )
    raw = json.dumps(sample("completed-inbound"), indent=2).encode()
    local = config.model_copy(update={"url": SecretStr(receiver.url("/hook"))})
    sink = HttpSink("hook", local, SinkResources())
    event = json.loads(raw)
    try:
        await build_and_transmit(
            sink, DeliveryRequest("dlv-7", event["id"], "hook", "r", event, payload=raw)
        )
    finally:
        await sink.close()
    [received] = receiver.received
    assert received.body == raw  # the same bytes
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Idempotency-Key"] == "dlv-7"


# --- CRM flows (`steps`): each recipe's YAML from the page, run by the real service ----


@dataclass(frozen=True)
class Flow:
    fake: type[CrmFake]
    hosts: tuple[str, ...]  # the addresses the recipe writes, each served by the fake
    secrets: tuple[str, ...]  # the credentials the recipe sends or spends: never shown
    oauth: bool = False  # `auth: {type: oauth2}`: the fake takes its token endpoint's tokens


OAUTH_SECRETS = (CLIENT_SECRET, FIRST_REFRESH)
TOKEN_URLS = {
    "HubSpot flow": "https://api.hubapi.com/oauth/v1/token",
    "Salesforce flow": "https://login.salesforce.com/services/oauth2/token",
}
FLOWS: dict[str, Flow] = {
    "HubSpot flow": Flow(HubSpotFake, ("https://api.hubapi.com",), OAUTH_SECRETS, oauth=True),
    "Salesforce flow": Flow(
        SalesforceFake,
        ("https://login.salesforce.com", "${SALESFORCE_INSTANCE_URL}"),
        OAUTH_SECRETS,
        oauth=True,
    ),
    "Pipedrive flow": Flow(
        PipedriveFake,
        ("https://yourcompany.pipedrive.com",),
        (ENVIRONMENT["PIPEDRIVE_API_TOKEN"],),
    ),
    "GoHighLevel flow": Flow(
        GoHighLevelFake, ("https://services.leadconnectorhq.com",), (ENVIRONMENT["GHL_TOKEN"],)
    ),
}
FLOW_RULES = """\
version: 1
defaults:
  retry: {{max_attempts: 5, initial_delay: 50ms, max_delay: 100ms}}
{sinks}
rules:
  - name: every-call
    when: {{direction: [INBOUND, OUTBOUND]}}
    to: [{sink}]
"""


def flow_snippet(heading: str) -> str:
    [snippet] = blocks(section(PAGE, heading), "yaml")
    return snippet


def test_every_flow_recipe_loads_and_its_templates_are_clean() -> None:
    for heading in FLOWS:
        config = parse_config("version: 1\n" + flow_snippet(heading), PAGE, ENVIRONMENT)
        [sink] = config.sinks.values()
        assert isinstance(sink, HttpSinkConfig) and sink.steps is not None
        assert [step.name for step in sink.steps][:2] == ["find", "create"]
        assert sink.setting_errors() == []
        assert sink.sample_problems(sample_event()) == [], heading


def test_a_flow_render_shows_every_step_with_earlier_answers_unknown() -> None:
    config = parse_config("version: 1\n" + flow_snippet("HubSpot flow"), PAGE, ENVIRONMENT)
    [(name, sink_config)] = config.sinks.items()
    request = DeliveryRequest("dlv-1", "e", name, "r", sample("completed-inbound"))
    shown = build_sink(name, sink_config, SinkResources()).preview(request)
    assert [step["name"] for step in shown["steps"]] == ["find", "create", "log"]
    log_step = shown["steps"][2]
    [association] = log_step["body"]["associations"]
    assert association["to"]["id"] == "⟨steps.find.contact: known once sent⟩"
    assert shown["steps"][1]["if"] == "not steps.find.contact"
    assert [step["headers"]["Authorization"] for step in shown["steps"]] == ["Bearer ***"] * 3
    assert not any(secret in json.dumps(shown) for secret in OAUTH_SECRETS)


@pytest.mark.parametrize("heading", [heading for heading, flow in FLOWS.items() if flow.oauth])
def test_the_oauth_flows_take_their_tokens_from_the_crms_token_endpoint(heading: str) -> None:
    config = parse_config("version: 1\n" + flow_snippet(heading), PAGE, ENVIRONMENT)
    [sink] = config.sinks.values()
    assert isinstance(sink, HttpSinkConfig) and sink.auth is not None
    assert sink.auth.token_url == TOKEN_URLS[heading]
    assert sink.auth.refresh_token is not None  # the refresh-token grant
    assert not any(name.lower() == "authorization" for name in sink.headers)


@pytest.mark.parametrize("heading", list(FLOWS))
async def test_a_flow_creates_a_contact_once_and_a_retry_resumes_at_the_last_step(
    heading: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = FLOWS[heading]
    tokens = TokenEndpoint() if recipe.oauth else None
    fake = await recipe.fake(
        secret="" if recipe.oauth else recipe.secrets[0], tokens=tokens
    ).start()
    snippet = flow_snippet(heading)
    for host in recipe.hosts:
        snippet = snippet.replace(host, fake.base)
    for variable, value in ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", fake.base)
    [sink_name] = re.findall(r"^  ([\w-]+):$", snippet, re.MULTILINE)
    rules = tmp_path / "rules.yaml"
    rules.write_text(FLOW_RULES.format(sinks=snippet.rstrip(), sink=sink_name))
    new_caller = fresh_event("completed-inbound", fromNumber="+14155550123")
    again = fresh_event("completed-inbound", fromNumber="+14155550123")
    another = fresh_event("completed-inbound", fromNumber="+14155550177")
    try:
        async with running_service(rules, tmp_path / "router.db") as client:
            store, *_ = parts(client)

            # A new caller: one contact created, one call logged against it.
            assert (await post_event(client, new_caller)).status == 200
            await wait_for(lambda: len(fake.logged) == 1)
            assert len(fake.contacts) == 1
            assert str(fake.logged[0]["contact"]) == str(fake.contacts[0]["id"])

            # The same caller again: found, no second contact.
            assert (await post_event(client, again)).status == 200
            await wait_for(lambda: len(fake.logged) == 2)
            assert len(fake.contacts) == 1
            assert str(fake.logged[1]["contact"]) == str(fake.contacts[0]["id"])

            # Another new caller, the last step failing once: the retry resumes there.
            fake.fail_log = 1
            seen_before = len(fake.seen)
            assert (await post_event(client, another)).status == 200
            await wait_for(lambda: len(fake.logged) == 3)
            await wait_for(lambda: store.list_deliveries("delivered"))
            await wait_for(lambda: _delivered_count(store, 3), limit=10.0)
            assert len(fake.contacts) == 2  # one created for this caller, not two
            assert str(fake.logged[2]["contact"]) == str(fake.contacts[1]["id"])
            flow = fake.seen[seen_before:]
            keys = [request.headers["Idempotency-Key"] for request in flow]
            delivery_id = keys[0].rsplit(":", 1)[0]
            last = [step.name for step in _steps(snippet)][-1]
            assert keys == [
                f"{delivery_id}:find",
                f"{delivery_id}:create",
                f"{delivery_id}:{last}",
                f"{delivery_id}:{last}",  # the retry: the last step only
            ]
            assert [request.status for request in flow][-2] == 503

            failed, delivered = await store.list_attempts(delivery_id)
            assert failed.outcome == "retry" and "503" in (failed.error or "")
            assert f"step {last!r}" in (failed.error or "")
            assert [(s.name, s.outcome, s.earlier) for s in failed.steps] == [
                ("find", "done", False),
                ("create", "done", False),
                (last, "failed", False),
            ]
            assert [(s.name, s.outcome, s.earlier) for s in delivered.steps] == [
                ("find", "done", True),
                ("create", "done", True),
                (last, "done", False),
            ]
            assert delivered.steps[-1].exchange is not None
            shown = repr(failed) + repr(delivered)
            assert not any(secret in shown for secret in recipe.secrets)
            assert "4155550177" not in shown, shown[max(0, shown.find("4155550177") - 300) :][:400]

            if tokens is not None:
                await _token_revoked_at_the_second_step(client, fake, tokens, snippet)
    finally:
        await fake.close()


async def _token_revoked_at_the_second_step(
    client: Any, fake: CrmFake, tokens: TokenEndpoint, snippet: str
) -> None:
    """Until now one token served every step of every delivery; revoked when a new
    caller's flow reaches its second step (the fake answers it 401), it is renewed once,
    that step alone is sent again, and the flow completes: one more contact, not two."""
    store, *_ = parts(client)
    assert [grant["grant_type"] for grant in tokens.grants] == ["refresh_token"]
    assert len(tokens.issued) == 1
    steps = _steps(snippet)
    fake.revoke_at = urlsplit(steps[1].url.source).path
    seen_before = len(fake.seen)
    caller = fresh_event("completed-inbound", fromNumber="+14155550188")
    assert (await post_event(client, caller)).status == 200
    await wait_for(lambda: len(fake.logged) == 4)
    await wait_for(lambda: _delivered_count(store, 4), limit=10.0)
    assert len(fake.contacts) == 3
    assert str(fake.logged[3]["contact"]) == str(fake.contacts[2]["id"])
    assert len(tokens.grants) == 2 and len(tokens.revoked) == 1 and len(tokens.issued) == 1
    flow = fake.seen[seen_before:]
    names = [request.headers["Idempotency-Key"].rsplit(":", 1)[1] for request in flow]
    assert names == ["find", "create", "create", steps[-1].name]  # find not repeated
    assert [request.status for request in flow][1:3] == [401, 201]
    assert [request.headers["Authorization"] for request in flow] == [
        f"Bearer {tokens.revoked[0]}",
        f"Bearer {tokens.revoked[0]}",
        f"Bearer {tokens.issued[0]}",
        f"Bearer {tokens.issued[0]}",
    ]

    delivery_id = flow[0].headers["Idempotency-Key"].rsplit(":", 1)[0]
    [attempt] = await store.list_attempts(delivery_id)
    assert attempt.outcome == "delivered"
    assert [(s.name, s.outcome) for s in attempt.steps] == [
        ("find", "done"),
        ("create", "done"),
        (steps[-1].name, "done"),
    ]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    api = await client.get(f"/admin/deliveries/{delivery_id}", headers=headers)
    text = await api.text()
    assert api.status == 200
    [shown] = json.loads(text)["attempt_log"]
    for step in shown["steps"]:
        assert ["Authorization", "Bearer ***"] in step["request"]["headers"]
    for secret in (*tokens.revoked, *tokens.issued, *OAUTH_SECRETS):
        assert secret not in text
        assert secret not in repr(attempt)


async def _delivered_count(store: Any, count: int) -> bool:
    return len(await store.list_deliveries("delivered")) >= count


def _steps(snippet: str) -> list[Any]:
    config = parse_config("version: 1\n" + snippet, PAGE, {**ENVIRONMENT, "X": ""})
    [sink] = config.sinks.values()
    assert isinstance(sink, HttpSinkConfig) and sink.steps is not None
    return list(sink.steps)


@pytest.mark.parametrize("heading", list(FLOWS))
def test_a_flow_render_shows_no_credential(heading: str) -> None:
    config = parse_config("version: 1\n" + flow_snippet(heading), PAGE, ENVIRONMENT)
    [(name, sink_config)] = config.sinks.items()
    request = DeliveryRequest("dlv-1", "e", name, "r", sample("completed-inbound"))
    shown = json.dumps(build_sink(name, sink_config, SinkResources()).preview(request))
    assert not any(secret in shown for secret in FLOWS[heading].secrets)
    assert json.loads(shown)["steps"][0]["name"] == "find"
