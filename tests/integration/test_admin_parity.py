"""The admin API does what the console and the CLI do (DESIGN.md section 4), over real
HTTP into a real SQLite store: deliveries filtered by rule and by call, a bulk replay by
status, sink and rule, stored calls searched like `calls --q`. Bad parameters are a 400
or 422 naming the problem; every route needs the bearer token, and a wrong one counts
in the shared limit on failed credentials."""

from __future__ import annotations

import json

import pytest

from router.engine.prepare import Prepared, prepare
from router.engine.records import call_record
from router.store import NewDelivery
from tests.conftest import sample
from tests.service import ADMIN_TOKEN, parts, running_service

RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}
T0 = 1_700_000_000.0
# Sinks with no URL: their replayed deliveries wait in the store, unsent.
RULES = """
version: 1
sinks:
  crm: {type: http, url: ""}
  slack: {type: slack, webhook_url: ""}
rules: []
"""


@pytest.fixture
async def client(tmp_path, write_rules):
    async with running_service(write_rules(RULES), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        calls = [
            (sample("completed-inbound") | {"id": "inbound"}, ["crm", "slack"]),
            (sample("failed-outbound") | {"id": "failed", "toNumber": "+14155550123"}, ["slack"]),
            (sample("minimal-canceled") | {"id": "other", "fromNumber": "+442071838750"}, []),
        ]
        for n, (call, sinks) in enumerate(calls):
            body = json.dumps(call).encode()
            prepared = prepare(body, ())
            assert isinstance(prepared, Prepared)
            deliveries = [
                NewDelivery(f"{call['id']}:{sink}", sink, "failed" if n else "all")
                for sink in sinks
            ]
            await store.ingest(call_record(prepared, body, T0 + n, deliveries))
        for delivery in ("inbound:crm", "inbound:slack", "failed:slack"):
            await store.kill(delivery, None, "HTTP 500")
        yield client


async def answer(client, method: str, path: str, **kwargs) -> tuple[int, object]:
    response = await client.request(method, path, headers=RIGHT, **kwargs)
    return response.status, await response.json()


async def test_deliveries_by_rule_and_by_call(client) -> None:
    status, shown = await answer(client, "GET", "/admin/deliveries?rule=failed")
    assert status == 200 and [d["id"] for d in shown] == ["failed:slack"]
    status, shown = await answer(client, "GET", "/admin/deliveries?call=inbound")
    assert {d["id"] for d in shown} == {"inbound:crm", "inbound:slack"}
    status, shown = await answer(client, "GET", "/admin/deliveries?call=inbound&sink=crm")
    assert [d["id"] for d in shown] == ["inbound:crm"]
    status, shown = await answer(client, "GET", "/admin/deliveries?call=nope")
    assert (status, shown) == (200, [])
    status, shown = await answer(client, "GET", "/admin/deliveries?rule=" + "r" * 201)
    assert status == 400 and shown == {"error": "rule must be at most 200 characters"}


async def test_a_bulk_replay_by_status_sink_and_rule(client) -> None:
    store, *_ = parts(client)
    status, shown = await answer(
        client, "POST", "/admin/deliveries/replay", json={"status": "dead", "sink": "slack"}
    )
    assert (status, shown) == (
        200,
        {"status": "requeued", "count": 2, "replayed": "dead", "sink": "slack", "rule": None},
    )
    assert [d.id for d in await store.list_deliveries("dead")] == ["inbound:crm"]
    status, shown = await answer(
        client, "POST", "/admin/deliveries/replay", json={"status": "dead", "rule": "failed"}
    )
    assert shown["count"] == 0, "failed:slack is pending again already"
    status, shown = await answer(
        client, "POST", "/admin/deliveries/replay", json={"status": "dead"}
    )
    assert shown["count"] == 1
    status, shown = await answer(
        client, "POST", "/admin/deliveries/replay", json={"status": "muted"}
    )
    assert (status, shown["count"]) == (200, 0)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, ["status: required, one of dead or muted (missing)"]),
        (
            {"status": "pending", "sink": 7, "colour": "red"},
            [
                "colour: unknown field (expected status, sink, rule)",
                "status: required, one of dead or muted (got 'pending')",
                "sink: expected a sink name (1 to 200 characters)",
            ],
        ),
        ([], ["the body must be a JSON object, not a list"]),
    ],
)
async def test_a_bad_bulk_replay_is_422_naming_every_problem(client, body, errors) -> None:
    status, shown = await answer(client, "POST", "/admin/deliveries/replay", json=body)
    assert (status, shown) == (422, {"error": "invalid request", "errors": errors})
    store, *_ = parts(client)
    assert len(await store.list_deliveries("dead")) == 3, "nothing replayed"


async def test_a_bulk_replay_body_that_is_not_json_is_422(client) -> None:
    status, shown = await answer(client, "POST", "/admin/deliveries/replay", data=b"{dead")
    assert status == 422 and shown["errors"][0].startswith("the body is not JSON")


async def test_calls_searched_like_the_cli(client) -> None:
    async def ids(query: str) -> list[str]:
        status, shown = await answer(client, "GET", f"/admin/calls{query}")
        assert status == 200, shown
        return [call["id"] for call in shown]

    assert await ids("") == ["other", "failed", "inbound"]
    assert await ids("?q=%28415%29%20555-0123") == ["failed", "inbound"]
    assert await ids("?q=%2B44%2020%207183%208750") == ["other"]
    assert await ids("?q=Friday%20cleaning") == ["inbound"]
    assert await ids("?q=%2B14155550123&status=failed") == ["failed"]
    assert await ids("?limit=1") == ["other"]
    assert await ids("?verification=pending") == []
    # Words through the store's full-text index: the beginnings of words, in any case;
    # its query syntax typed in is plain text.
    assert await ids("?q=CLEAN") == ["inbound"]
    assert await ids("?q=leaning") == []
    for syntax in ("%22", "NEAR%28", "%2A", "%27%3A%2A", "%26%21"):
        assert await ids(f"?q={syntax}") == [], syntax
    assert await ids("?q=%22friday%22%20OR") == []
    assert await ids("?status=Failed") == ["failed"]
    status, shown = await answer(client, "GET", "/admin/calls?status=COMPLETED")
    assert status == 200
    [inbound] = shown
    assert inbound["from_number"] == "+1415•••0123"
    assert inbound["summary"] == "Caller rescheduled a cleaning to Friday 10am."
    assert "payload" not in inbound


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?q=" + "+".join("abcdefghi"), "q: at most 8 words, got 9"),
        ("?q=" + "x" * 201, "q: at most 200 characters, got 201"),
        ("?q=" + "-".join("abcdefghijklmnopq"), "q: at most 16 words and parts of words"),
        ("?limit=ten", "limit must be an integer"),
        ("?verification=maybe", "verification must be one of"),
    ],
)
async def test_bad_call_parameters_are_400_naming_them(client, query, error) -> None:
    status, shown = await answer(client, "GET", f"/admin/calls{query}")
    assert status == 400 and shown["error"].startswith(error)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/calls?q=friday"),
        ("GET", "/admin/deliveries?call=inbound"),
        ("POST", "/admin/deliveries/replay"),
    ],
)
async def test_each_needs_the_token_and_a_wrong_one_counts_toward_the_limit(
    client, method, path
) -> None:
    assert (await client.request(method, path)).status == 401
    for _ in range(4):
        assert (await client.request(method, path, headers=WRONG)).status == 401
    assert (await client.request(method, path, headers=RIGHT)).status == 429
    store, *_ = parts(client)
    assert len(await store.list_deliveries("dead")) == 3, "nothing replayed"
