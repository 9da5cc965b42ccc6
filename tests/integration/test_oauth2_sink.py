"""OAuth2 on the http sink (DESIGN.md section 17), against a fake token endpoint and a
fake API on real sockets: client credentials and the refresh-token grant, rotation kept
across a restart, one token for two replicas on PostgreSQL, a 401 renewed once, one
grant for many concurrent deliveries, a fifth of the lifetime left renews, refusals and
garbage from the token endpoint, and no secret in what is kept."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.core.samples import sample_event
from router.store import OutboundToken, Store, open_store
from router.store.sqlite import SQLiteStore
from sinks.base import DeliveryRequest, Permanent, Retryable, SinkResources
from sinks.http import HttpSink, HttpSinkConfig
from tests.integration.conftest import fresh_postgres_schema
from tests.oauth_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH,
    OAuthWorld,
    answer,
    start_world,
)


@pytest.fixture
async def world() -> AsyncIterator[OAuthWorld]:
    started = await start_world()
    yield started
    await started.server.close()


def settings(world: OAuthWorld, **auth: Any) -> HttpSinkConfig:
    return HttpSinkConfig.model_validate(
        {
            "type": "http",
            "url": world.api_url,
            "auth": {
                "type": "oauth2",
                "token_url": world.token_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                **auth,
            },
        }
    )


def sink_of(config: HttpSinkConfig, store: Store | None = None) -> HttpSink:
    return HttpSink("hubspot", config, SinkResources(tokens=store))


def request(number: int = 1) -> DeliveryRequest:
    event = sample_event()
    return DeliveryRequest(f"d-{number}", str(event["id"]), "hubspot", "all", event)


async def send(sink: HttpSink, number: int = 1) -> Any:
    return await sink.transmit(sink.build(request(number)))


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    yield store
    await store.close()


async def test_client_credentials_get_a_token_the_api_takes(
    world: OAuthWorld, sqlite_store: Store
) -> None:
    sink = sink_of(settings(world, scope="crm.objects.contacts.write"), sqlite_store)
    result = await send(sink)
    await send(sink, 2)
    await sink.close()

    assert result.status_code == 201
    assert world.tokens.grants == [
        {
            "grant_type": "client_credentials",
            "scope": "crm.objects.contacts.write",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ], "one grant for both deliveries"
    [token] = world.tokens.issued
    assert [authorization for authorization, _ in world.api.received] == [f"Bearer {token}"] * 2
    # The exchange kept shows neither the token nor the client's secret.
    shown = json.dumps(str(result.exchange))
    assert token not in shown and CLIENT_SECRET not in shown
    assert ("Authorization", "Bearer ***") in result.exchange.request.headers
    stored = await sqlite_store.outbound_token("hubspot", sink.authenticator.grants.auth_key)
    assert stored is not None and stored.access_token == token and stored.refresh_token is None


async def test_client_secret_basic_sends_the_credentials_as_http_basic(world: OAuthWorld) -> None:
    world.tokens.answers.append(answer(200, '{"access_token": "at-basic-1234567890"}'))
    world.tokens.issued.append("at-basic-1234567890")
    sink = sink_of(settings(world, client_auth="basic"))
    await send(sink)
    await sink.close()
    [grant] = world.tokens.grants
    assert grant == {"grant_type": "client_credentials"}
    pair = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert world.tokens.basic == [f"Basic {pair}"]


async def test_a_rotated_refresh_token_is_kept_across_a_restart(
    world: OAuthWorld, tmp_path: Path
) -> None:
    world.tokens.rotate = True
    config = settings(world, refresh_token=FIRST_REFRESH)
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    sink = sink_of(config, store)
    await send(sink)
    await sink.close()
    await store.close()
    assert world.tokens.grants[0]["refresh_token"] == FIRST_REFRESH
    assert FIRST_REFRESH not in world.tokens.refresh_tokens, "spent: the server rotated it"

    world.tokens.revoke_all()  # the token is no longer taken: the restarted router renews
    restarted = SQLiteStore(tmp_path / "router.db")
    await restarted.open()
    try:
        again = sink_of(config, restarted)
        result = await send(again, 2)
        await again.close()
    finally:
        await restarted.close()

    assert result.status_code == 201
    [_, second] = world.tokens.grants
    assert second["grant_type"] == "refresh_token"
    assert second["refresh_token"].startswith("rt-rotated-1-")
    assert world.api.refused == 1 and len(world.api.received) == 2


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_share_one_token(world: OAuthWorld) -> None:
    async with fresh_postgres_schema("tokens") as url:
        first, second = open_store(url), open_store(url)
        await first.open()
        await second.open()
        try:
            config = settings(world, refresh_token=FIRST_REFRESH)
            one, other = sink_of(config, first), sink_of(config, second)
            await send(one)
            await send(other, 2)
            await send(other, 3)
            await one.close()
            await other.close()
        finally:
            await first.close()
            await second.close()
    assert len(world.tokens.grants) == 1
    assert len({authorization for authorization, _ in world.api.received}) == 1
    assert len(world.api.received) == 3


async def test_a_revoked_token_is_renewed_once_and_the_request_sent_again(
    world: OAuthWorld, sqlite_store: Store
) -> None:
    sink = sink_of(settings(world), sqlite_store)
    await send(sink)
    world.tokens.revoke_all()
    result = await send(sink, 2)
    await sink.close()
    assert result.status_code == 201
    assert len(world.tokens.grants) == 2
    assert world.api.refused == 1
    assert world.api.received[-1][0] == f"Bearer {world.tokens.issued[-1]}"


async def test_a_token_still_refused_after_renewal_fails_without_a_third_grant(
    world: OAuthWorld,
) -> None:
    sink = sink_of(settings(world))
    await send(sink)
    world.tokens.revoke_all()
    world.tokens.answers.append(answer(200, '{"access_token": "at-unknown-1234567890"}'))
    with pytest.raises(Permanent) as refused:
        await send(sink, 2)
    await sink.close()
    assert refused.value.status_code == 401
    assert len(world.tokens.grants) == 2, "renewed once, not again"
    assert "at-unknown-1234567890" not in refused.value.reason


async def test_many_concurrent_deliveries_wait_for_one_grant(world: OAuthWorld) -> None:
    world.tokens.hold = asyncio.Event()
    sink = sink_of(settings(world))
    sending = [asyncio.create_task(send(sink, number)) for number in range(20)]
    await world.tokens.asked.wait()
    for _ in range(20):  # every delivery has had its turn to ask
        await asyncio.sleep(0)
    world.tokens.hold.set()
    results = await asyncio.gather(*sending)
    await sink.close()
    assert len(world.tokens.grants) == 1
    assert {result.status_code for result in results} == {201}


class CountingStore:
    """The store's token face, counting reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.kept: dict[tuple[str, str], OutboundToken] = {}

    async def outbound_token(self, sink: str, auth_key: str) -> OutboundToken | None:
        self.reads += 1
        return self.kept.get((sink, auth_key))

    async def keep_outbound_token(self, token: OutboundToken) -> None:
        self.kept[token.sink, token.auth_key] = token


async def test_a_token_is_renewed_when_a_fifth_of_its_lifetime_is_left_and_not_before(
    world: OAuthWorld,
) -> None:
    world.tokens.lifetime = 100
    now = [1000.0]
    store = CountingStore()
    sink = HttpSink("hubspot", settings(world), SinkResources())
    provider = sink.token_provider(sink.authenticator.grants)  # type: ignore[union-attr]
    provider._clock = lambda: now[0]
    provider._store = store
    sink.authenticator = provider
    await send(sink)
    for number, at in enumerate((1050.0, 1079.0), start=2):
        now[0] = at
        await send(sink, number)
    assert len(world.tokens.grants) == 1
    assert store.reads == 1, "a fresh token in memory costs no store read"
    now[0] = 1081.0  # less than a fifth (20 s) of its 100 s left
    await send(sink, 9)
    await sink.close()
    assert len(world.tokens.grants) == 2
    assert world.api.received[-1][0] == f"Bearer {world.tokens.issued[-1]}"


async def test_a_refused_refresh_is_permanent_and_names_the_sinks_auth(world: OAuthWorld) -> None:
    sink = sink_of(settings(world, refresh_token="rt-revoked-by-the-user-42"))
    with pytest.raises(Permanent) as refused:
        await send(sink)
    await sink.close()
    reason = refused.value.reason
    assert reason.startswith("sink 'hubspot' auth: token endpoint answered 400 invalid_grant")
    assert "rt-revoked-by-the-user-42" not in reason
    exchange = str(refused.value.exchange)
    assert "rt-revoked-by-the-user-42" not in exchange and CLIENT_SECRET not in exchange
    assert world.api.received == [] and world.api.refused == 0


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (answer(200, "<html>sign in</html>", "text/html"), "answered 200 with something"),
        (answer(200, '{"token": "x"}'), "answered 200 without an access_token"),
        (answer(503, "maintenance"), "answered 503 maintenance"),
        (answer(429, '{"error": "slow_down"}'), "answered 429 slow_down"),
    ],
)
async def test_garbage_or_an_outage_at_the_token_endpoint_is_retryable(
    world: OAuthWorld, reply: Any, said: str
) -> None:
    world.tokens.answers.append(reply)
    sink = sink_of(settings(world))
    with pytest.raises(Retryable) as failed:
        await send(sink)
    assert failed.value.reason.startswith("sink 'hubspot' auth: token endpoint")
    assert said in failed.value.reason
    result = await send(sink, 2)  # the next try asks again
    await sink.close()
    assert result.status_code == 201 and len(world.tokens.grants) == 2


async def test_an_unreachable_token_endpoint_is_retryable(world: OAuthWorld) -> None:
    config = settings(world)
    await world.server.close()
    sink = sink_of(config)
    with pytest.raises(Retryable) as failed:
        await send(sink)
    await sink.close()
    assert failed.value.reason.startswith("sink 'hubspot' auth: token endpoint: ")


async def test_no_secret_in_the_logs_or_the_config(
    world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = settings(world, refresh_token=FIRST_REFRESH)
    world.tokens.rotate = True
    sink = sink_of(config)
    logging.getLogger("test").info("config %r %s", config, config)
    await send(sink)
    world.tokens.answers.append(answer(400, '{"error": "invalid_grant"}'))
    world.tokens.revoke_all()
    with pytest.raises(Permanent):
        await send(sink, 2)
    await sink.close()
    secrets = [CLIENT_SECRET, FIRST_REFRESH, *world.tokens.refresh_tokens]
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in repr(config)
    assert CLIENT_SECRET in config.secret_values() and FIRST_REFRESH in config.secret_values()
    assert sink.preview(request())["headers"]["Authorization"] == "Bearer ***"
