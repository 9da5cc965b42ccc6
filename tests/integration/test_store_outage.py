"""The service while its store fails: a frozen PostgreSQL, a SQLite file that cannot be
written. Webhooks get a prompt 503 (never a hang), /readyz says so within its own time
limit, the outage is logged once and summed up when it ends, and the delivery lanes
back off instead of hammering the store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from router.engine.delivery import failure_backoff
from router.engine.health import HealthPolicy, StoreHealth
from router.web.app import HEALTH
from tests.conftest import fresh_event
from tests.faults import FreezableProxy, fill, small_volume, unwritable_sqlite
from tests.integration.conftest import fresh_postgres_schema
from tests.service import post_event, running_service, wait_for

RULES = """
version: 1
sinks:
  crm: {type: http, url: "http://127.0.0.1:9/hook"}
rules:
  - {name: all, to: [crm]}
"""

# Generous: a request that hangs behind a frozen store fails the test at this bound
# instead of hanging it; a working deadline answers long before.
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=20)


def _through(proxy: FreezableProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.postgres
async def test_a_frozen_postgresql_gets_503_not_a_hang(tmp_path: Path, write_rules) -> None:
    async with fresh_postgres_schema("outage") as url:
        target = urlsplit(url)
        proxy = FreezableProxy(target.hostname or "127.0.0.1", target.port or 5432)
        async with (
            proxy,
            running_service(
                write_rules(RULES),
                tmp_path / "unused.db",
                store_url=_through(proxy, url),
                store_timeout=0.5,
            ) as client,
        ):
            assert (await post_event(client, fresh_event())).status == 200
            proxy.freeze()
            try:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            "/webhooks/revring",
                            json=fresh_event(),
                            headers={"x-api-key": "test-key-1"},
                            timeout=CLIENT_TIMEOUT,
                        )
                        for _ in range(20)
                    )
                )
                assert [answer.status for answer in answers] == [503] * 20
                body = await answers[0].json()
                assert body["error"] == "store unavailable, try again"
                ready = await client.get("/readyz", timeout=CLIENT_TIMEOUT)
                assert ready.status == 503
                assert "did not answer" in " ".join((await ready.json())["problems"])
            finally:
                proxy.thaw()  # also before the service shuts down, or its close hangs
            await wait_for(lambda: _ready(client), limit=15)
            assert (await post_event(client, fresh_event())).status == 200


@pytest.mark.postgres
async def test_a_frozen_postgresql_that_thaws_under_load_is_one_outage(
    tmp_path: Path, write_rules, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls every 20 ms through a 2 s freeze and after: calls queued during it time out
    between others that go through once it thaws. One "store unavailable" line, not a
    flapping pair per time-out."""
    async with fresh_postgres_schema("thaw") as url:
        target = urlsplit(url)
        proxy = FreezableProxy(target.hostname or "127.0.0.1", target.port or 5432)
        async with (
            proxy,
            running_service(
                write_rules(RULES),
                tmp_path / "unused.db",
                store_url=_through(proxy, url),
                store_timeout=0.5,
            ) as client,
        ):
            assert (await post_event(client, fresh_event())).status == 200
            caplog.set_level(logging.INFO)
            caplog.clear()
            stop = asyncio.Event()

            async def steady_calls() -> list[int]:
                posts = []
                while not stop.is_set():
                    posts.append(asyncio.create_task(post_event(client, fresh_event())))
                    await asyncio.sleep(0.02)
                return [answer.status for answer in await asyncio.gather(*posts)]

            calls = asyncio.create_task(steady_calls())
            await asyncio.sleep(0.3)
            proxy.freeze()
            await asyncio.sleep(2.0)
            proxy.thaw()
            await asyncio.sleep(1.5)
            stop.set()
            statuses = await calls
    assert 200 in statuses and 503 in statuses
    lines = [r.getMessage() for r in caplog.records if r.name == "router.store"]
    assert len([line for line in lines if line.startswith("store unavailable")]) == 1, lines


@pytest.mark.postgres
async def test_a_postgresql_outage_is_not_logged_once_per_webhook(
    tmp_path: Path, write_rules, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection cut: every call is a group commit of its own, and each fails. One
    "store unavailable" line, and the group commit's failures at most once a minute."""
    async with fresh_postgres_schema("cut") as url:
        target = urlsplit(url)
        proxy = FreezableProxy(target.hostname or "127.0.0.1", target.port or 5432)
        async with (
            proxy,
            running_service(
                write_rules(RULES), tmp_path / "unused.db", store_url=_through(proxy, url)
            ) as client,
        ):
            assert (await post_event(client, fresh_event())).status == 200
            caplog.set_level(logging.INFO)
            caplog.clear()
            proxy.cut()
            try:
                for _ in range(30):
                    answer = await client.post(
                        "/webhooks/revring",
                        json=fresh_event(),
                        headers={"x-api-key": "test-key-1"},
                        timeout=CLIENT_TIMEOUT,
                    )
                    assert answer.status == 503
            finally:
                proxy.thaw()
            await wait_for(lambda: _ready(client), limit=15)
            assert (await post_event(client, fresh_event())).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("router.store")]
    assert len([line for line in lines if "group commit" in line]) <= 1, lines
    assert len([line for line in lines if line.startswith("store unavailable")]) == 1, lines


async def _ready(client) -> bool:
    return (await client.get("/readyz")).status == 200


async def _settled(client, health: StoreHealth) -> bool:
    await client.get("/readyz")
    return not health.down


async def test_readyz_says_not_ready_while_the_store_cannot_write(
    tmp_path: Path, write_rules
) -> None:
    db = tmp_path / "router.db"
    async with running_service(write_rules(RULES), db) as client:
        assert (await post_event(client, fresh_event())).status == 200
        with unwritable_sqlite(db) as frozen:
            if not frozen:
                pytest.skip("chattr +i is not available here (needs root on ext4/xfs)")
            assert (await post_event(client, fresh_event())).status == 503
            ready = await client.get("/readyz")
            assert ready.status == 503
            assert "store cannot write" in " ".join((await ready.json())["problems"])
        await wait_for(lambda: _ready(client))
        assert (await post_event(client, fresh_event())).status == 200


async def test_readyz_probes_a_write_when_nothing_was_written_lately(
    tmp_path: Path, write_rules
) -> None:
    """Idle (no webhook yet), the store answers reads but cannot write: not ready."""
    db = tmp_path / "router.db"
    async with running_service(write_rules(RULES), db) as client:
        assert (await client.get("/readyz")).status == 200
        with unwritable_sqlite(db) as frozen:
            if not frozen:
                pytest.skip("chattr +i is not available here (needs root on ext4/xfs)")
            assert (await client.get("/readyz")).status == 503


async def test_readyz_says_not_ready_while_calls_are_refused_for_space(
    tmp_path: Path, write_rules
) -> None:
    """A full volume with a little room: /readyz's one-row probe still writes, a call
    with a 200 KB summary does not. Calls refused for space count for a while; once the
    space is back, the replica is ready by itself and takes the call."""
    volume = tmp_path / "volume"
    with small_volume(volume, "4m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        memory = HealthPolicy(refusal_memory=1.0)
        async with running_service(
            write_rules("version: 1\n"), volume / "router.db", health=memory
        ) as client:
            assert (await post_event(client, fresh_event())).status == 200
            filler = fill(volume, leave=64 * 1024)
            large = fresh_event(summary="words " * 35_000)
            assert (await post_event(client, large)).status == 503
            ready = await client.get("/readyz")
            assert ready.status == 503
            problems = " ".join((await ready.json())["problems"])
            assert "refused a write" in problems and "no space left" in problems
            filler.unlink()
            await wait_for(lambda: _ready(client))
            assert (await post_event(client, large)).status == 200


async def test_an_outage_is_logged_once_then_summed_up(
    tmp_path: Path, write_rules, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "router.db"
    posts = 30
    settles = HealthPolicy(settle_seconds=0.2, settle_successes=2)
    async with running_service(write_rules(RULES), db, health=settles) as client:
        assert (await post_event(client, fresh_event())).status == 200
        health = client.app[HEALTH]
        caplog.set_level(logging.INFO)
        caplog.clear()
        with unwritable_sqlite(db) as frozen:
            if not frozen:
                pytest.skip("chattr +i is not available here (needs root on ext4/xfs)")
            for _ in range(posts):
                assert (await post_event(client, fresh_event())).status == 503
            failures_in_outage = health.failures
        await wait_for(lambda: _ready(client))
        assert (await post_event(client, fresh_event())).status == 200
        await wait_for(lambda: _settled(client, health))  # each probe a success
    router_records = [r for r in caplog.records if r.name.startswith("router")]
    assert [r for r in router_records if r.exc_info] == []
    started = [r for r in router_records if "store unavailable" in r.getMessage()]
    ended = [r for r in router_records if "store available again" in r.getMessage()]
    assert len(started) == 1 and started[0].levelno == logging.ERROR
    assert len(ended) == 1 and f"{failures_in_outage} operations failed" in ended[0].getMessage()
    # Each failed ingest used to wake the lane into another failing claim: the failures
    # are the posts and a few backed-off claims, not one claim per post on top.
    assert posts <= failures_in_outage < posts + 10


def test_a_lane_backs_off_doubling_up_to_its_longest_sleep() -> None:
    assert [failure_backoff(n, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert failure_backoff(10_000, 5.0) == 5.0
