"""OAuth2 on an `http` sink with `steps` (DESIGN.md section 17), through the real service on
a real SQLite file, against a local token endpoint and a CRM that takes only the tokens it
issued (real sockets): every step carries the token; a 401 at a step renews the token
once and resends that step alone; a second 401 fails the step; a refused refresh token
is a dead delivery naming the sink's auth with no step sent; and no secret (the client
secret, the refresh tokens, the access tokens) is in the stored attempts, the admin API
or the logs."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import fresh_event
from tests.oauth_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH,
    Reply,
    TokenEndpoint,
    answer,
)
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

CALLER = "+14155550142"


@dataclass
class Crm:
    """`/find` finds no one, `/make` creates, `/log` logs, each only for a token `tokens`
    issued (401 otherwise); `revoke_at`: the first request for that path revokes every
    token first (and scripts the token endpoint's next answers: `after_revoke`); `refuse`:
    paths answered 401 whatever the token."""

    tokens: TokenEndpoint
    revoke_at: str | None = None
    after_revoke: list[Reply] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    seen: list[tuple[str, str, str, int]] = field(default_factory=list)  # path, key, auth, status

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if self.revoke_at == request.path:
            self.revoke_at = None
            self.tokens.revoke_all()
            self.tokens.answers += self.after_revoke
        given = request.headers.get("Authorization", "")
        if given.removeprefix("Bearer ") not in self.tokens.issued or request.path in self.refuse:
            # An API that echoes what it refused: the token must still not be kept.
            response = web.json_response({"error": f"invalid token {given}"}, status=401)
        elif request.path == "/find":
            response = web.json_response({"results": []})
        elif request.path == "/make":
            response = web.json_response({"id": "c-new"}, status=201)
        else:
            response = web.json_response({"id": "call-1"}, status=201)
        key = request.headers.get("Idempotency-Key", "")
        self.seen.append((request.path, key.rsplit(":", 1)[-1], given, response.status))
        return response

    def steps(self) -> list[tuple[str, int]]:
        return [(step, status) for _, step, _, status in self.seen]


@dataclass
class World:
    tokens: TokenEndpoint
    crm: Crm
    server: TestServer

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    tokens = TokenEndpoint(rotate=True)
    crm = Crm(tokens)
    app = web.Application()
    app.router.add_post("/oauth/token", tokens.handle)
    app.router.add_route("*", "/{tail:.*}", crm.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield World(tokens, crm, server)
    await server.close()


def rules(world: World, refresh_token: str = FIRST_REFRESH) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 50ms, max_delay: 100ms}}
sinks:
  crm:
    type: http
    auth:
      type: oauth2
      token_url: "{world.url("/oauth/token")}"
      client_id: {CLIENT_ID}
      client_secret: {CLIENT_SECRET}
      refresh_token: {refresh_token}
    steps:
      - name: find
        url: {world.url("/find")}
        body: '{{"phone": "{{{{ fromNumber }}}}"}}'
        capture: {{contact: "results[0].id"}}
      - name: create
        if: not steps.find.contact
        url: {world.url("/make")}
        body: '{{"phone": "{{{{ fromNumber }}}}"}}'
        capture: {{contact: id}}
      - name: log
        url: {world.url("/log")}
        body: '{{"contact": "{{{{ steps.find.contact or steps.create.contact }}}}"}}'
rules:
  - name: every-call
    to: [crm]
"""


async def finished(client: Any, status: str) -> tuple[Any, dict[str, Any], str]:
    """The one delivery that reached `status`, and GET /admin/deliveries/{id} (and its text)."""
    store, *_ = parts(client)
    await wait_for(lambda: store.list_deliveries(status))
    [delivery] = await store.list_deliveries(status)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = await client.get(f"/admin/deliveries/{delivery.id}", headers=headers)
    assert answer.status == 200
    text = await answer.text()
    return delivery, json.loads(text), text


def stored(database: Path) -> str:
    """Every row the store keeps of the attempts and deliveries, as text."""
    with sqlite3.connect(database) as db:
        rows = [
            *db.execute("SELECT * FROM attempts").fetchall(),
            *db.execute("SELECT * FROM deliveries").fetchall(),
        ]
    db.close()
    return json.dumps(rows, ensure_ascii=False, default=str)


def secrets_of(world: World) -> list[str]:
    return [
        CLIENT_SECRET,
        FIRST_REFRESH,
        *world.tokens.refresh_tokens,
        *world.tokens.issued,
        *world.tokens.revoked,
    ]


async def test_a_401_at_a_step_renews_the_token_once_and_resends_that_step_alone(
    tmp_path: Path, write_rules, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.crm.revoke_at = "/make"  # the token revoked as the flow reaches its second step
    database = tmp_path / "router.db"
    async with running_service(write_rules(rules(world)), database) as client:
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        _, shown, text = await finished(client, "delivered")

    assert world.crm.steps() == [
        ("find", 200),
        ("create", 401),
        ("create", 201),  # renewed once, this step alone sent again
        ("log", 201),
    ]
    [first, renewed] = [grant["grant_type"] for grant in world.tokens.grants]
    assert first == renewed == "refresh_token"
    [old] = world.tokens.revoked
    [new] = world.tokens.issued
    assert [auth for _, _, auth, _ in world.crm.seen] == [f"Bearer {old}"] * 2 + [
        f"Bearer {new}"
    ] * 2
    [attempt] = shown["attempt_log"]
    assert attempt["outcome"] == "delivered"
    assert [(step["name"], step["outcome"]) for step in attempt["steps"]] == [
        ("find", "done"),
        ("create", "done"),
        ("log", "done"),
    ]
    for step in attempt["steps"]:
        assert ["Authorization", "Bearer ***"] in step["request"]["headers"]
    kept = stored(database)
    assert "c-new" in kept  # the steps' progress is there, masked
    for secret in secrets_of(world):
        assert secret not in text
        assert secret not in kept
        assert secret not in caplog.text


async def test_a_token_endpoint_down_at_a_later_step_is_retried_and_resumes_at_that_step(
    tmp_path: Path, write_rules, world: World
) -> None:
    world.crm.revoke_at = "/make"
    world.crm.after_revoke = [answer(503, '{"error": "temporarily_unavailable"}')]
    async with running_service(write_rules(rules(world)), tmp_path / "router.db") as client:
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        _, shown, _ = await finished(client, "delivered")

    # The renewal after the 401 got a 503: no token, so the step waited for the retry,
    # which resumed at it (find not repeated) with a new token.
    assert world.crm.steps() == [("find", 200), ("create", 401), ("create", 201), ("log", 201)]
    assert len(world.tokens.grants) == 3
    failed, delivered = shown["attempt_log"]
    assert failed["outcome"] == "retry"
    assert failed["error"].startswith(
        "step 'create': sink 'crm' auth: token endpoint answered 503 temporarily_unavailable"
    )
    assert [(step["name"], step["outcome"]) for step in failed["steps"]] == [
        ("find", "done"),
        ("create", "failed"),
    ]
    assert [(step["name"], step["outcome"], step["earlier"]) for step in delivered["steps"]] == [
        ("find", "done", True),
        ("create", "done", False),
        ("log", "done", False),
    ]


async def test_a_step_refused_again_with_the_renewed_token_fails_after_one_renewal(
    tmp_path: Path, write_rules, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.crm.refuse = {"/log"}
    database = tmp_path / "router.db"
    async with running_service(write_rules(rules(world)), database) as client:
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        delivery, shown, text = await finished(client, "dead")

    assert world.crm.steps() == [("find", 200), ("create", 201), ("log", 401), ("log", 401)]
    assert len(world.tokens.grants) == 2  # renewed once, not again
    assert delivery.last_error.startswith("step 'log': HTTP 401 Unauthorized: ")
    assert "invalid token Bearer ***" in delivery.last_error  # the echoed token masked
    [attempt] = shown["attempt_log"]
    assert [(step["name"], step["outcome"]) for step in attempt["steps"]] == [
        ("find", "done"),
        ("create", "done"),
        ("log", "failed"),
    ]
    kept = stored(database)
    for secret in secrets_of(world):
        assert secret not in text
        assert secret not in kept
        assert secret not in caplog.text


async def test_a_refused_refresh_token_is_dead_naming_the_auth_and_no_step_is_sent(
    tmp_path: Path, write_rules, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    revoked = "rt-revoked-0f1e2d3c4b5a"
    database = tmp_path / "router.db"
    async with running_service(write_rules(rules(world, revoked)), database) as client:
        assert (await post_event(client, fresh_event(fromNumber=CALLER))).status == 200
        delivery, shown, text = await finished(client, "dead")

    assert world.crm.seen == []  # no step went out without a token
    assert len(world.tokens.grants) == 1, "a permanent failure is not retried"
    assert world.tokens.grants[0]["refresh_token"] == revoked
    assert delivery.last_error == (
        "step 'find': sink 'crm' auth: token endpoint answered 400 invalid_grant:"
        " refresh token unknown"
    )
    [attempt] = shown["attempt_log"]
    assert attempt["outcome"] == "dead"
    [step] = attempt["steps"]
    assert (step["name"], step["outcome"]) == ("find", "failed")
    kept = stored(database)
    assert "invalid_grant" in kept
    for secret in (revoked, *secrets_of(world)):
        assert secret not in text
        assert secret not in kept
        assert secret not in caplog.text
