"""Bodies nested deeper than 64 levels (DESIGN.md section 5) are refused with 422 on
every way in: the webhook parsed on the loop or in a parse worker, verify mode and
backfill. Calls stored before the limit may nest deeper: the console and the sinks
show them without failing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.ingest import IngestLimits
from router.revring_api import ApiRetries, RevRingApi
from tests.conftest import fresh_event
from tests.revring_fake import FAKE_API_KEY, FakeRevRing
from tests.service import ADMIN_TOKEN, API_KEY, parts, running_service

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


async def test_verify_mode_refuses_a_deep_body_before_holding_it(tmp_path, write_rules):
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    fake = await FakeRevRing().start()
    api = RevRingApi(FAKE_API_KEY, fake.url, retries=ApiRetries(max_tries=1))
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
        await fake.stop()


async def test_backfill_reports_deep_calls_as_failed_and_ingests_the_rest(tmp_path, write_rules):
    fake = await FakeRevRing().start()
    api = RevRingApi(FAKE_API_KEY, fake.url, retries=ApiRetries(max_tries=1))
    good = fresh_event(status="FAILED")
    deep = [json.loads(deep_call("metrics", levels)) for levels in (65, 400)]
    fake.know(good, *deep)
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
        await fake.stop()
    assert (summary["fetched"], summary["new"]) == (3, 1)
    failures = {failure["id"]: failure["error"] for failure in summary["failures"]}
    assert set(failures) == {call["id"] for call in deep}
    for error in failures.values():
        assert "metrics: nested deeper than 64 levels" in error
