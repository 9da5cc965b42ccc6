"""Each attempt's request and response, stored with it and shown: a real router on a
real SQLite file sends through the HTTP sink to a local receiver that answers 500 then
200; both attempts are stored with what was sent and answered (secrets and numbers
masked), `GET /admin/deliveries/{id}` lists them and the delivery's page shows them.
The log sink keeps what it wrote; the store keeps an exchange on every kind of store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.store import AttemptRecord, Exchange, IngestRecord, NewDelivery, Store
from sinks.exchange import request_seen, response_seen
from tests.conftest import fresh_event
from tests.integration.conftest import StoreFactory
from tests.integration.test_console import sign_in
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

CRM_TOKEN = "crm-token-0123456789abcdef"
API_KEY = "apikey-9f8e7d6c5b4a"
SIGNING_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NQ=="
CALLER = "+14155550142"


class Crm:
    """Answers the first request with a 500 that echoes the credential and names the
    caller, then 200 with a JSON body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        if len(self.bodies) == 1:
            text = f"upstream down; got {request.headers['Authorization']} for {CALLER}"
            return web.Response(status=500, text=text, headers={"Set-Cookie": "sid=abc123"})
        return web.json_response({"id": "crm-42", "caller": CALLER}, status=200)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hooks/calls", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/hooks/calls")) + f"?api_key={API_KEY}&source=router"


@pytest.fixture
async def crm() -> AsyncIterator[tuple[Crm, str]]:
    receiver = Crm()
    url = await receiver.start()
    yield receiver, url
    assert receiver.server is not None
    await receiver.server.close()


RULES = """
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{url}"
    headers: {{Authorization: "Bearer {token}"}}
    signing_secret: "{signing}"
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [crm]
"""


async def test_both_attempts_are_stored_with_their_request_and_response_and_shown(
    tmp_path: Path, write_rules, crm: tuple[Crm, str]
) -> None:
    receiver, url = crm
    rules = write_rules(RULES.format(url=url, token=CRM_TOKEN, signing=SIGNING_SECRET))
    database = tmp_path / "router.db"
    event = fresh_event(fromNumber=CALLER)
    async with running_service(rules, database) as client:
        assert (await post_event(client, event)).status == 200
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("delivered"))
        [delivery] = await store.list_deliveries("delivered")
        failed, delivered = await store.list_attempts(delivery.id)

        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        answer = await client.get(f"/admin/deliveries/{delivery.id}", headers=auth)
        assert answer.status == 200
        api_text = await answer.text()
        api = json.loads(api_text)

        assert (await sign_in(client)).status == 303
        page = await client.get(f"/ui/deliveries/{delivery.id}")
        assert page.status == 200
        html = await page.text()

    assert [failed.outcome, delivered.outcome] == ["retry", "delivered"]
    assert failed.exchange is not None and delivered.exchange is not None
    sent = failed.exchange.request
    assert sent.method == "POST"
    assert sent.target.endswith("/hooks/calls?api_key=***&source=router")
    headers = dict(sent.headers)
    assert headers["Authorization"] == "Bearer ***"
    assert headers["webhook-signature"] == "***"
    assert headers["Idempotency-Key"] == delivery.id
    assert headers["Content-Type"] == "application/json"
    assert sent.size == len(receiver.bodies[0]) and not sent.truncated
    assert json.loads(sent.body)["id"] == event["id"]
    assert "+1415•••0142" in sent.body
    assert failed.exchange.response is not None
    assert failed.exchange.response.status == 500
    assert failed.exchange.response.body == "upstream down; got *** for +1415•••0142"
    assert dict(failed.exchange.response.headers)["Set-Cookie"] == "***"
    # A success keeps the request's heads and size, not its body (nothing to mask).
    kept = delivered.exchange.request
    assert kept.body == "" and kept.truncated and kept.size == len(receiver.bodies[1])
    assert dict(kept.headers)["Authorization"] == "Bearer ***"
    assert delivered.exchange.response is not None
    assert delivered.exchange.response.status == 200
    assert json.loads(delivered.exchange.response.body) == {
        "id": "crm-42",
        "caller": "+1415•••0142",
    }

    [first, second] = api["attempt_log"]
    assert first["recorded"] and first["response"]["status"] == 500
    assert ["Authorization", "Bearer ***"] in first["request"]["headers"]
    assert second["response"]["body"] == delivered.exchange.response.body
    assert "<details" in html and "upstream down; got *** for +1415•••0142" in html
    assert "Authorization: Bearer ***" in html

    # Nothing secret and no number in what was stored, what the API answered, the page.
    with sqlite3.connect(database) as db:
        stored = json.dumps(db.execute("SELECT * FROM attempts").fetchall(), ensure_ascii=False)
    db.close()
    for shown in (stored, api_text, html):
        for secret in (CRM_TOKEN, API_KEY, SIGNING_SECRET, "abc123", CALLER, "5550142"):
            assert secret not in shown


async def test_the_log_sink_keeps_what_it_wrote(tmp_path: Path, write_rules) -> None:
    out = tmp_path / "calls.log"
    rules = write_rules(
        f"""
version: 1
sinks:
  audit: {{type: log, path: "{out}"}}
rules:
  - name: all
    when: {{}}
    to: [audit]
"""
    )
    async with running_service(rules, tmp_path / "r.db") as client:
        await post_event(client, fresh_event())
        store, *_ = parts(client)
        await wait_for(lambda: store.list_deliveries("delivered"))
        [delivery] = await store.list_deliveries("delivered")
        [attempt] = await store.list_attempts(delivery.id)
    assert attempt.exchange is not None
    assert (attempt.exchange.request.method, attempt.exchange.request.target) == (
        "WRITE",
        str(out),
    )
    assert attempt.exchange.request.body == out.read_text()
    assert attempt.exchange.response is None


# --- the store keeps an exchange, on every kind of store ------------------------------

NOW = 1_800_000_000.0


def an_exchange() -> Exchange:
    sent = request_seen(
        "POST",
        "https://crm.example/in?token=t0k3n-abcdef",
        [("Authorization", "Bearer t0k3n-abcdef"), ("Content-Type", "application/json")],
        '{"summary": "rappeler +1 415 555 0142 — été"}'.encode(),
    )
    return Exchange(sent, response_seen(503, [("Retry-After", "30")], b"busy \xe2\x80\x94 later"))


async def test_a_store_keeps_each_attempts_exchange_and_none_where_there_was_none(
    store_factory: StoreFactory,
) -> None:
    store: Store = await store_factory()
    record = IngestRecord("c1", b'{"id": "c1"}', NOW, [NewDelivery("c1:crm", "crm", "r")])
    await store.ingest(record)
    exchange = an_exchange()
    [claimed] = await store.claim("crm", 10, "w", 30.0, NOW)
    retry = AttemptRecord(1, NOW, 0.2, "retry", 503, "HTTP 503", None, exchange)
    assert await store.finish(claimed.id, "w", retry, next_attempt_at=NOW + 1)
    [claimed] = await store.claim("crm", 10, "w", 30.0, NOW + 2)
    done = AttemptRecord(2, NOW + 2, 0.1, "delivered", 200)
    assert await store.finish(claimed.id, "w", done)
    await store.close()

    reopened = await store_factory()
    try:
        first, second = await reopened.list_attempts("c1:crm")
        assert first.exchange == exchange
        assert first.exchange.request.body == '{"summary": "rappeler +1415•••0142 — été"}'
        assert second.exchange is None
        # Retention: a purged call takes its attempts' exchanges with it.
        assert await reopened.purge(NOW + 10) == 1
        assert await reopened.list_attempts("c1:crm") == []
    finally:
        await reopened.close()


async def test_the_page_says_not_recorded_and_shows_an_answer_as_text(
    tmp_path: Path, write_rules, crm: tuple[Crm, str]
) -> None:
    _, url = crm
    rules = write_rules(RULES.format(url=url, token=CRM_TOKEN, signing=SIGNING_SECRET))
    async with running_service(rules, tmp_path / "router.db") as client:
        store, *_ = parts(client)
        record = IngestRecord("c1", b'{"id": "c1"}', NOW, [NewDelivery("c1:old", "gone", "r")])
        await store.ingest(record)
        [claimed] = await store.claim("gone", 10, "w", 30.0, NOW)
        old = AttemptRecord(1, NOW, 0.1, "retry", 503, "HTTP 503")  # as older routers kept it
        assert await store.finish(claimed.id, "w", old, next_attempt_at=NOW + 1)
        [claimed] = await store.claim("gone", 10, "w", 30.0, NOW + 2)
        sent = request_seen("POST", "https://crm.example/in", (), b"{}")
        hostile = response_seen(502, [("Content-Type", "text/html")], b"<script>alert(1)</script>")
        new = AttemptRecord(2, NOW + 2, 0.1, "dead", 502, "HTTP 502", None, Exchange(sent, hostile))
        assert await store.finish(claimed.id, "w", new)

        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        api = await (await client.get("/admin/deliveries/c1:old", headers=auth)).json()
        assert (await sign_in(client)).status == 303
        html = await (await client.get("/ui/deliveries/c1:old")).text()
    [first, second] = api["attempt_log"]
    assert (first["recorded"], first["request"], first["response"]) == (False, None, None)
    assert second["recorded"] and second["response"]["body"] == "<script>alert(1)</script>"
    assert "Request and response not recorded" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
