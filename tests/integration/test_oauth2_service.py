"""OAuth2 through the whole router (DESIGN.md section 17): a real service on a real
SQLite file delivers through an http sink whose token endpoint refuses the refresh
token (a dead delivery whose error names the sink's auth) or answers garbage (retried,
then dead with the reason), and delivers when it answers; no secret in the logs, the
stored attempts or GET /admin/deliveries/{id}."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import fresh_event
from tests.oauth_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH,
    OAuthWorld,
    answer,
    start_world,
)
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

RULES = """
version: 1
defaults:
  retry: {{max_attempts: 2, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  hubspot:
    type: http
    url: "{api_url}"
    auth:
      type: oauth2
      token_url: "{token_url}"
      client_id: {client_id}
      client_secret: {client_secret}
      refresh_token: {refresh_token}
rules:
  - name: every-call
    when: {{}}
    to: [hubspot]
"""


@pytest.fixture
async def world() -> AsyncIterator[OAuthWorld]:
    started = await start_world(rotate=True)
    yield started
    await started.server.close()


async def delivery_seen(client, store, status: str) -> tuple[dict, str]:
    await wait_for(lambda: store.list_deliveries(status))
    [delivery] = await store.list_deliveries(status)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    shown = await client.get(f"/admin/deliveries/{delivery.id}", headers=auth)
    assert shown.status == 200
    text = await shown.text()
    return json.loads(text), text


def rules_for(world: OAuthWorld, refresh_token: str) -> str:
    return RULES.format(
        api_url=world.api_url,
        token_url=world.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=refresh_token,
    )


def stored_attempts(database: Path) -> str:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT * FROM attempts").fetchall()
    db.close()
    return json.dumps(rows, ensure_ascii=False)


async def test_a_refused_refresh_token_makes_a_dead_delivery_naming_the_auth(
    tmp_path: Path, write_rules, world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    revoked = "rt-revoked-0f1e2d3c4b5a"
    database = tmp_path / "router.db"
    async with running_service(write_rules(rules_for(world, revoked)), database) as client:
        assert (await post_event(client, fresh_event())).status == 200
        store, *_ = parts(client)
        shown, text = await delivery_seen(client, store, "dead")

    assert shown["last_error"].startswith(
        "sink 'hubspot' auth: token endpoint answered 400 invalid_grant"
    )
    assert len(world.tokens.grants) == 1, "a permanent failure is not retried"
    assert world.api.received == []
    kept = stored_attempts(database)
    assert "invalid_grant" in kept
    for secret in (revoked, CLIENT_SECRET):
        assert secret not in text
        assert secret not in kept
        assert secret not in caplog.text


async def test_garbage_from_the_token_endpoint_is_retried_then_dead_with_the_reason(
    tmp_path: Path, write_rules, world: OAuthWorld
) -> None:
    world.tokens.answers += [answer(200, "<html>oops</html>", "text/html")] * 2
    database = tmp_path / "router.db"
    rules = write_rules(rules_for(world, FIRST_REFRESH))
    async with running_service(rules, database) as client:
        assert (await post_event(client, fresh_event())).status == 200
        store, *_ = parts(client)
        shown, _ = await delivery_seen(client, store, "dead")
    assert len(world.tokens.grants) == 2
    assert [attempt["outcome"] for attempt in shown["attempt_log"]] == ["retry", "dead"]
    assert shown["last_error"] == (
        "gave up after 2 attempts:"
        " sink 'hubspot' auth: token endpoint answered 200 with something that is not JSON"
    )


async def test_a_delivery_with_a_token_keeps_no_secret(
    tmp_path: Path, write_rules, world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    database = tmp_path / "router.db"
    rules = write_rules(rules_for(world, FIRST_REFRESH))
    async with running_service(rules, database) as client:
        assert (await post_event(client, fresh_event())).status == 200
        store, *_ = parts(client)
        shown, text = await delivery_seen(client, store, "delivered")
    [token] = world.tokens.issued
    [attempt] = shown["attempt_log"]
    assert ["Authorization", "Bearer ***"] in attempt["request"]["headers"]
    with sqlite3.connect(database) as db:
        [(kept_token, rotated)] = db.execute(
            "SELECT access_token, refresh_token FROM outbound_tokens"
        ).fetchall()
    db.close()
    assert kept_token == token and rotated in world.tokens.refresh_tokens
    kept = stored_attempts(database)
    for secret in (token, rotated, FIRST_REFRESH, CLIENT_SECRET):
        assert secret not in text
        assert secret not in kept
        assert secret not in caplog.text
