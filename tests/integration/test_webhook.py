"""POST /webhooks/revring through a real socket into a real SQLite store."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import fresh_event, sample
from tests.service import API_KEY, parts, post_event, running_service

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
  other: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console, other]
  - name: all
    to: [console]
"""


@pytest.fixture
async def client(tmp_path, write_rules):
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    async with running_service(rules, tmp_path / "router.db") as client:
        yield client


async def test_accepts_an_event_with_one_delivery_per_sink(client):
    event = fresh_event("failed-outbound")
    response = await post_event(client, event)
    assert response.status == 200
    assert await response.json() == {
        "status": "accepted",
        "event_id": event["id"],
        "deliveries": 2,
    }
    store, *_ = parts(client)
    views = await store.list_deliveries()
    assert sorted((v.sink, v.rule) for v in views) == [("console", "failed"), ("other", "failed")]


async def test_repeated_call_id_is_a_duplicate_with_no_new_deliveries(client):
    event = fresh_event("completed-inbound")
    first = await post_event(client, event)
    second = await post_event(client, event)
    assert (await first.json())["status"] == "accepted"
    assert await second.json() == {"status": "duplicate", "event_id": event["id"], "deliveries": 0}
    store, *_ = parts(client)
    assert len(await store.list_deliveries()) == 1


async def test_concurrent_identical_posts_are_accepted_once(client):
    event = fresh_event("failed-outbound")
    responses = await asyncio.gather(*(post_event(client, event) for _ in range(20)))
    bodies = [await r.json() for r in responses]
    assert all(r.status == 200 for r in responses)
    assert sorted(b["status"] for b in bodies).count("accepted") == 1
    store, *_ = parts(client)
    assert len(await store.list_deliveries()) == 2


async def test_every_key_of_the_rotation_is_accepted(client):
    response = await post_event(client, fresh_event(), key="test-key-2")
    assert response.status == 200


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
async def test_missing_or_wrong_key_is_401(client, headers):
    response = await client.post("/webhooks/revring", json=fresh_event(), headers=headers)
    assert response.status == 401
    assert "x-api-key" in (await response.json())["error"]


async def test_body_over_one_mebibyte_is_413(client):
    event = fresh_event(summary="x" * (1024 * 1024))
    response = await post_event(client, event)
    assert response.status == 413


async def test_chunked_body_over_one_mebibyte_is_413(client):
    async def chunks():
        yield b'{"summary": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post(
        "/webhooks/revring",
        data=chunks(),
        headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
    )
    assert response.status == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_content_type_is_415(client, content_type):
    headers = {"x-api-key": API_KEY}
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post("/webhooks/revring", data=b"{}", headers=headers)
    assert response.status == 415
    assert "application/json" in (await response.json())["error"]


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"id": }', b"\xff\xfe", b""])
async def test_malformed_json_is_400(client, body):
    response = await client.post(
        "/webhooks/revring",
        data=body,
        headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert "malformed JSON" in (await response.json())["error"]


async def test_schema_errors_are_422_naming_every_bad_field(client):
    event = fresh_event()
    del event["direction"]
    event["durationSeconds"] = "long"
    event["fromNumber"] = 14155550123
    response = await post_event(client, event)
    assert response.status == 422
    problems = (await response.json())["problems"]
    fields = {p.split(":")[0] for p in problems}
    assert fields == {"direction", "durationSeconds", "fromNumber"}


async def test_unknown_status_is_accepted_and_counted(client):
    response = await post_event(client, fresh_event(status="NO_ANSWER"))
    assert response.status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'revring_router_unknown_values_total{field="status"} 1.0' in metrics


NASTY_BODIES = [
    b"null",
    b"[]",
    b"42",
    b'"text"',
    b"true",
    b"[{}]",
    b'{"id": null}',
    b'{"id": "x", "status": ["FAILED"]}',
    b'{"id": 1e999}',
    b'{"id": 123456789012345678901234567890}',
    json.dumps({**sample("failed-outbound"), "transcript": "not a list"}).encode(),
    json.dumps({**sample("failed-outbound"), "metrics": [1, 2]}).encode(),
    json.dumps({**sample("failed-outbound"), "initiatedAt": "yesterday"}).encode(),
    json.dumps(
        {**sample("failed-outbound"), "variables": {"a": {"b": {"c": [None] * 50}}}}
    ).encode(),
    json.dumps({**sample("failed-outbound"), "id": "\u0000\ud7ff"}).encode(),
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
]


@pytest.mark.parametrize("body", NASTY_BODIES, ids=range(len(NASTY_BODIES)))
async def test_no_input_gets_a_500(client, body):
    response = await client.post(
        "/webhooks/revring",
        data=body,
        headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
    )
    assert response.status in (200, 400, 422), await response.text()
    assert "error" in await response.json() or response.status == 200


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ready"
