"""An `http` sink with `steps`, run by the real service on real sockets: a step's `if`
skips it, a step that captures from an answer that is not JSON and a step answered 4xx
fail for good naming the step, with every earlier step stored; a timeout is retried and
resumes at that step; the admin API and the console show each step (captures masked,
never the raw values), and the playground shows every step before anything is sent."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import fresh_event
from tests.integration.test_console import csrf_of, signed_in_page
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

TOKEN = "crm-token-5f4e3d2c1b0a"
CALLER = "+14155550142"


class Crm:
    """`/find` answers from `find` (JSON text or not), `/make` creates, `/log` logs;
    `answers` scripts a status per path, in order, before the normal answer."""

    def __init__(self) -> None:
        self.find = json.dumps({"results": [{"id": "c-1", "phone": CALLER}]})
        self.answers: dict[str, list[int]] = {}
        self.stall_first_find = False
        self.seen: list[tuple[str, str, bytes]] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append((request.path, request.headers.get("Idempotency-Key", ""), body))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        scripted = self.answers.get(request.path)
        if scripted:
            return web.json_response({"error": "scripted"}, status=scripted.pop(0))
        if request.path == "/find":
            if self.stall_first_find and self.paths().count("/find") == 1:
                await asyncio.sleep(5)  # past the step's own timeout: no answer in time
            return web.Response(text=self.find, content_type="application/json")
        if request.path == "/make":
            return web.json_response({"id": "c-new"}, status=201)
        return web.json_response({"logged": json.loads(body)}, status=201)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.seen]


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    fake = Crm()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    yield fake
    await fake.server.close()


def rules(crm: Crm) -> str:
    assert crm.server is not None
    base = str(crm.server.make_url("")).rstrip("/")
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 50ms, max_delay: 100ms}}
sinks:
  crm:
    type: http
    headers: {{Authorization: "Bearer {TOKEN}"}}
    timeout: 2s
    steps:
      - name: find
        url: {base}/find
        timeout: 300ms
        body: '{{"phone": "{{{{ fromNumber }}}}"}}'
        capture: {{contact: "results[0].id", phone: "results[0].phone"}}
      - name: create
        if: not steps.find.contact
        url: {base}/make
        body: '{{"phone": "{{{{ fromNumber }}}}"}}'
        capture: {{contact: id}}
      - name: log
        url: {base}/log
        body: '{{"contact": "{{{{ steps.find.contact or steps.create.contact }}}}"}}'
rules:
  - name: every-call
    to: [crm]
"""


async def finished(store, status: str) -> list:
    return await store.list_deliveries(status)


async def test_a_found_contact_skips_create_and_the_api_shows_each_step_masked(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        await wait_for(lambda: finished(store, "delivered"))
        [delivery] = await store.list_deliveries("delivered")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        api = await (await client.get(f"/admin/deliveries/{delivery.id}", headers=auth)).json()
        html = await signed_in_page(client, f"/ui/deliveries/{delivery.id}")

    assert crm.paths() == ["/find", "/log"]
    assert json.loads(crm.seen[1][2]) == {"contact": "c-1"}
    assert [key for _, key, _ in crm.seen] == [f"{delivery.id}:find", f"{delivery.id}:log"]
    [attempt] = api["attempt_log"]
    steps = attempt["steps"]
    assert [(s["name"], s["outcome"]) for s in steps] == [
        ("find", "done"),
        ("create", "skipped"),
        ("log", "done"),
    ]
    assert steps[0]["captures"]["contact"] == "c-1"
    assert steps[0]["captures"]["phone"] != CALLER and "0142" in steps[0]["captures"]["phone"]
    assert steps[0]["request"]["headers"] and steps[0]["response"]["status"] == 200
    assert steps[1]["request"] is None
    text = json.dumps(api) + html
    assert TOKEN not in text and CALLER not in text
    assert 'class="step step-skipped"' in html and "<code>create</code> skipped" in html


async def test_an_answer_that_is_not_json_kills_the_delivery_naming_the_step(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    crm.find = "<html>search is down for maintenance</html>"
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        await wait_for(lambda: finished(store, "dead"))
        [dead] = await store.list_deliveries("dead")
        [attempt] = await store.list_attempts(dead.id)
    assert dead.last_error == "step 'find': its answer is not JSON"
    assert [(s.name, s.outcome) for s in attempt.steps] == [("find", "failed")]
    assert crm.paths() == ["/find"]  # permanent: not retried


async def test_a_4xx_at_a_later_step_is_permanent_and_keeps_the_earlier_steps(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    crm.find = json.dumps({"results": []})
    crm.answers["/log"] = [422]
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        await wait_for(lambda: finished(store, "dead"))
        [dead] = await store.list_deliveries("dead")
        [attempt] = await store.list_attempts(dead.id)
    assert dead.last_error is not None
    assert dead.last_error.startswith("step 'log': HTTP 422 Unprocessable")
    assert [(s.name, s.outcome) for s in attempt.steps] == [
        ("find", "done"),
        ("create", "done"),
        ("log", "failed"),
    ]
    assert crm.paths() == ["/find", "/make", "/log"]


async def test_a_5xx_in_the_middle_is_retried_from_that_step(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    crm.find = json.dumps({"results": []})
    crm.answers["/make"] = [502, 429]
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        await wait_for(lambda: finished(store, "delivered"))
        [delivery] = await store.list_deliveries("delivered")
        attempts = await store.list_attempts(delivery.id)
    assert crm.paths() == ["/find", "/make", "/make", "/make", "/log"]
    assert [a.outcome for a in attempts] == ["retry", "retry", "delivered"]
    assert [(s.name, s.outcome, s.earlier) for s in attempts[2].steps] == [
        ("find", "done", True),
        ("create", "done", False),
        ("log", "done", False),
    ]
    assert json.loads(crm.seen[-1][2]) == {"contact": "c-new"}


async def test_the_playground_shows_every_step_with_earlier_answers_unknown(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        page = await signed_in_page(client, "/ui/rules")
        event = fresh_event(fromNumber=CALLER)
        response = await client.post(
            "/ui/rules/playground", data={"csrf": csrf_of(page), "event": json.dumps(event)}
        )
        assert response.status == 200
        html = await response.text()
    assert crm.seen == []  # nothing sent
    names = re.findall(r'<h4 class="step">Step <code>(\w+)</code>', html)
    assert names == ["find", "create", "log"]
    assert "steps.find.contact: known once sent" in html
    assert "if <code>not steps.find.contact</code>" in html
    assert TOKEN not in html


async def test_a_step_that_times_out_is_retried_with_its_own_timeout(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    crm.stall_first_find = True
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, *_ = parts(client)
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        await wait_for(lambda: finished(store, "delivered"))
        [delivery] = await store.list_deliveries("delivered")
        first, second = await store.list_attempts(delivery.id)
    assert first.outcome == "retry"
    assert first.error is not None and first.error.startswith("step 'find': timeout after 300ms")
    assert [(s.name, s.outcome) for s in first.steps] == [("find", "failed")]
    assert [(s.name, s.outcome) for s in second.steps] == [
        ("find", "done"),
        ("create", "skipped"),
        ("log", "done"),
    ]


async def test_a_large_call_is_built_in_a_parse_worker_and_its_steps_run_here(
    tmp_path: Path, write_rules, crm: Crm
) -> None:
    import os

    from tests.integration.test_large_deliveries import large_event

    event = large_event(fromNumber=CALLER)
    async with running_service(write_rules(rules(crm)), tmp_path / "r.db") as client:
        store, engine, *_ = parts(client)
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: finished(store, "delivered"))
        apart = engine.render_apart
        assert apart is not None and apart.last_pid not in (None, os.getpid())
    assert crm.paths() == ["/find", "/log"]
    assert json.loads(crm.seen[1][2]) == {"contact": "c-1"}
