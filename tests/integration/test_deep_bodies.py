"""Bodies nested deeper than 64 levels (DESIGN.md section 5) are refused with 422 on
every way in: the webhook parsed on the loop or in a parse worker, verify mode and
backfill. Calls stored before the limit may nest deeper: the console and the sinks
show them without failing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from router.cli.main import main
from router.engine.intake import IngestLimits
from router.engine.records import new_delivery_id
from router.revring.api import ApiRetries, RevRingApi
from router.store import GroupJoin, IngestRecord, NewDelivery
from tests.conftest import fresh_event
from tests.fakes import TEAMS_PATH, FakeTeams
from tests.integration.test_console import csrf_of, signed_in_page
from tests.revring_fake import FAKE_API_KEY
from tests.service import ADMIN_TOKEN, API_KEY, parts, running_service, wait_for
from tests.slack_fake import WEBHOOK_PATH, FakeSlack

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console]
"""
HEADERS = {"x-api-key": API_KEY, "Content-Type": "application/json"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INLINE = IngestLimits.inline_parse_bytes
PLACEHOLDER = '"__nested__"'


def nested(levels: int) -> str:
    """JSON text of a value `levels` containers deep (`[[1]]` is 2)."""
    return "[" * levels + "1" + "]" * levels


def with_nested(event: dict[str, Any], levels: int) -> bytes:
    """`event` as JSON, its `__nested__` string replaced by a value `levels` deep."""
    text = json.dumps(event)
    assert text.count(PLACEHOLDER) == 1
    return text.replace(PLACEHOLDER, nested(levels)).encode()


def deep_call(where: str, levels: int) -> bytes:
    """A FAILED call whose body nests `levels` levels, through `where`."""
    event = fresh_event(status="FAILED")
    if where == "transcript entry":
        event["transcript"] = [{"role": "user", "content": "hi"}, "__nested__"]
        return with_nested(event, levels - 2)
    if where == "metrics value":
        event["metrics"] = {"latencyMs": "__nested__"}
        return with_nested(event, levels - 2)
    event[where] = "__nested__"
    return with_nested(event, levels - 1)


@pytest.fixture
async def client(tmp_path, write_rules):
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    async with running_service(rules, tmp_path / "router.db") as client:
        yield client


async def post(client, body: bytes):
    return await client.post("/webhooks/revring", data=body, headers=HEADERS)


async def test_a_body_64_levels_deep_is_accepted_and_one_level_more_is_422(client):
    at_limit = deep_call("metrics value", 64)
    assert (await post(client, at_limit)).status == 200
    answer = await post(client, deep_call("metrics value", 65))
    assert answer.status == 422
    assert await answer.json() == {
        "error": "invalid post-call event",
        "problems": ["metrics: nested deeper than 64 levels"],
    }


@pytest.mark.parametrize(
    ("where", "levels", "named"),
    [
        ("metrics", 1000, "metrics"),
        ("metrics value", 1000, "metrics"),
        ("transcript entry", 1000, "transcript"),
        ("variables", 300, "variables"),
        ("sentiment", 999, "sentiment"),  # a field RevRing may add
        ("metrics", 1100, "body"),  # deeper than orjson reads: the field is not known
    ],
)
async def test_a_deeper_body_is_422_naming_the_field_on_the_loop_and_in_a_worker(
    client, where, levels, named
):
    body = deep_call(where, levels)
    answers = []
    for sent in (body, b" " * INLINE + body):  # padded: parsed by a parse worker
        answer = await post(client, sent)
        answers.append((answer.status, await answer.json()))
    expected = {
        "error": "invalid post-call event",
        "problems": [f"{named}: nested deeper than 64 levels"],
    }
    assert answers == [(422, expected), (422, expected)]
    store, *_ = parts(client)
    assert await store.list_deliveries() == []


async def test_verify_mode_refuses_a_deep_body_before_holding_it(tmp_path, write_rules, revring):
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    api = RevRingApi(FAKE_API_KEY, revring.url, retries=ApiRetries(max_tries=1))
    try:
        async with running_service(
            rules, tmp_path / "r.db", revring_api=api, verify_calls=True
        ) as client:
            answer = await post(client, deep_call("metrics", 200))
            assert answer.status == 422
            assert (await answer.json())["problems"] == ["metrics: nested deeper than 64 levels"]
            store, *_ = parts(client)
            assert await store.due_held(1e12, 10) == []
    finally:
        await api.close()


async def test_backfill_reports_deep_calls_as_failed_and_ingests_the_rest(
    tmp_path, write_rules, revring
):
    api = RevRingApi(FAKE_API_KEY, revring.url, retries=ApiRetries(max_tries=1))
    good = fresh_event(status="FAILED")
    deep = [json.loads(deep_call("metrics", levels)) for levels in (65, 400)]
    revring.know(good, *deep)
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    try:
        async with running_service(rules, tmp_path / "r.db", revring_api=api) as client:
            ids = [good["id"], *(call["id"] for call in deep)]
            answer = await client.post("/admin/backfill", json={"ids": ids}, headers=ADMIN)
            assert answer.status == 200, await answer.text()
            summary = await answer.json()
            store, *_ = parts(client)
            assert [view.event_id for view in await store.list_deliveries()] == [good["id"]]
    finally:
        await api.close()
    assert (summary["fetched"], summary["new"]) == (3, 1)
    failures = {failure["id"]: failure["error"] for failure in summary["failures"]}
    assert set(failures) == {call["id"] for call in deep}
    for error in failures.values():
        assert "metrics: nested deeper than 64 levels" in error


STORED_RULES = """
version: 1
sinks:
  ops-slack: {type: slack, webhook_url: "%(slack)s"}
  ops-teams: {type: teams, webhook_url: "%(teams)s"}
  console: {type: log, path: "%(log)s"}
  digests: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [ops-slack, ops-teams, console]
  - name: by-trunk
    when: {status: FAILED}
    to: [digests]
    group: {by: [sipTrunkId], window: 100ms}
"""


async def test_a_deep_call_stored_before_the_limit_is_delivered_and_shown(tmp_path, write_rules):
    """Calls stored before the limit, 1,000 levels deep in a transcript entry and in
    `metrics`: Slack, Teams and the log get their alerts, and the console's calls page,
    the call's page, a digest's page and the playground answer 200 (cut at 64 levels)."""
    slack, teams = await FakeSlack().start(), await FakeTeams().start(TEAMS_PATH)
    settings = {"slack": slack.base + WEBHOOK_PATH, "teams": teams.url, "log": tmp_path / "log"}
    try:
        async with running_service(
            write_rules(STORED_RULES % settings), tmp_path / "r.db"
        ) as client:
            store, engine, *_ = parts(client)
            calls = [
                (json.loads(deep_call(where, 5)), deep_call(where, 1000))
                for where in ("transcript entry", "metrics")
            ]
            for call, body in calls:
                deliveries = [
                    NewDelivery(new_delivery_id(), sink, "failed")
                    for sink in ("ops-slack", "ops-teams", "console")
                ]
                digest = NewDelivery(
                    new_delivery_id(), "digests", "by-trunk", GroupJoin('{"sipTrunkId":"t"}', 0.1)
                )
                record = IngestRecord(
                    call["id"], body, time.time(), [*deliveries, digest], "FAILED", "OUTBOUND"
                )
                assert (await store.ingest(record)).status == "accepted"
            engine.new_deliveries(None)
            await wait_for(lambda: len(slack.posted) == 2 and len(teams.requests) == 2)
            await wait_for(_all_delivered(store), limit=20)

            listing = await signed_in_page(client, "/ui/calls")
            for call, _ in calls:
                assert call["id"] in listing
                page = await signed_in_page(client, f"/ui/calls/{call['id']}")
                assert "nested deeper" not in page and "…" in page
                loaded = await client.post(
                    "/ui/rules/playground",
                    data={"csrf": csrf_of(page), "call_id": call["id"], "load_call": "1"},
                )
                assert loaded.status == 200, await loaded.text()
            [digest_view] = [v for v in await store.list_deliveries() if v.kind == "digest"]
            assert (await client.get(f"/ui/deliveries/{digest_view.id}")).status == 200
    finally:
        await slack.close()
        await teams.close()
    transcript = slack.posted[0]["blocks"]
    assert any("Transcript" in str(block) for block in transcript)


def _all_delivered(store):
    async def check() -> bool:
        views = await store.list_deliveries()
        return len(views) == 7 and all(view.status == "delivered" for view in views)

    return check


def deep_when(levels: int) -> dict[str, Any]:
    """A silence's `when` nesting `levels` levels: `not` inside `not` around a condition."""
    when: dict[str, Any] = {"status": "FAILED"}
    for _ in range(levels - 1):
        when = {"not": when}
    return when


@pytest.mark.parametrize("levels", [65, 170, 500])
async def test_a_silence_whose_when_nests_deeper_than_64_levels_is_422(client, levels):
    answer = await client.post(
        "/admin/silences", json={"when": deep_when(levels), "for": "1h"}, headers=ADMIN
    )
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["errors"] == ["when: nested deeper than 64 levels"]
    store, *_ = parts(client)
    assert await store.list_silences() == []


async def test_a_silence_whose_when_nests_64_levels_is_taken(client):
    # A `when` must name values (DESIGN §9), and what stands under `not` does not count:
    # the value named beside the deep `not`s does.
    when = {"agentId": "agent-1", **deep_when(63)}
    answer = await client.post("/admin/silences", json={"when": when, "for": "1h"}, headers=ADMIN)
    assert answer.status == 201, await answer.text()


@pytest.mark.parametrize("levels", [170, 5000])
async def test_the_console_form_names_a_when_nested_too_deep(client, levels):
    page = await signed_in_page(client, "/ui/silences")
    text = "{" + '"not": {' * (levels - 1) + '"status": "FAILED"' + "}" * levels
    answer = await client.post(
        "/ui/silences",
        data={"csrf": csrf_of(page), "when": text, "for": "1h"},
        allow_redirects=False,
    )
    assert answer.status == 422
    assert "when: nested deeper than 64 levels" in await answer.text()


@pytest.mark.parametrize("levels", [170, 5000])
def test_silence_add_names_a_when_nested_too_deep(tmp_path, capsys, levels):
    text = "{" + '"not": {' * (levels - 1) + '"status": "FAILED"' + "}" * levels
    store = f"sqlite:///{tmp_path / 'r.db'}"
    code = main(["silence", "add", "--when", text, "--for", "1h", "--store", store])
    assert (code, capsys.readouterr().err.count("nested deeper than 64 levels")) == (2, 1)
