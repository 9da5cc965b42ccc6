"""Two `revring-router serve` processes on one PostgreSQL database, one killed mid-load:
nothing accepted is lost, and duplicates stay within what the killed one had leased."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import fresh_event
from tests.e2e.test_serve import API_KEY, free_port, stop, wait_healthy
from tests.integration.conftest import fresh_postgres_schema
from tests.receivers import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE_SECONDS = 3
CONCURRENCY = 4  # per replica, for the one sink: the most deliveries one replica leases
EVENTS = 400


@pytest.fixture
async def schema_url() -> AsyncIterator[str]:
    async with fresh_postgres_schema("e2e") as url:
        yield url


def start_replica(rules: Path, store_url: str, port: int, logs: Path) -> subprocess.Popen:
    """One replica as a subprocess; its output goes to files (never an unread pipe)."""
    environ = {
        **os.environ,
        "ROUTER_API_KEYS": API_KEY,
        "ROUTER_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    command = [sys.executable, "-m", "router", "serve", "--config", str(rules)]
    command += ["--store", store_url, "--port", str(port)]
    stdout = (logs / f"replica-{port}.out").open("w")
    stderr = (logs / f"replica-{port}.err").open("w+")
    process = subprocess.Popen(command, env=environ, stdout=stdout, stderr=stderr, text=True)
    process.stderr_file = stderr  # type: ignore[attr-defined]
    return process


async def post_alternately(
    ports: list[int], events: list[dict], accepted: dict[int, list[str]]
) -> None:
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(index: int, event: dict) -> None:
            port = ports[index % len(ports)]
            url = f"http://127.0.0.1:{port}/webhooks/revring"
            try:
                async with session.post(url, json=event, headers={"x-api-key": API_KEY}) as r:
                    if r.status == 200 and (await r.json())["status"] == "accepted":
                        accepted[port].append(event["id"])
            except (TimeoutError, aiohttp.ClientError):
                pass

        await asyncio.gather(*(post(index, event) for index, event in enumerate(events)))


async def test_a_replica_killed_mid_load_loses_nothing_accepted(
    tmp_path: Path, schema_url: str
) -> None:
    receiver = await Receiver(delay=0.02).start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\n"
        "defaults: {retry: {initial_delay: 100ms, max_delay: 500ms, max_attempts: 1000}}\n"
        f'sinks: {{crm: {{type: http, url: "{receiver.url()}", concurrency: {CONCURRENCY}}}}}\n'
        "rules: [{name: all, to: [crm]}]\n"
    )
    ports = [free_port(), free_port()]
    survivor, victim = (start_replica(rules, schema_url, port, tmp_path) for port in ports)
    accepted: dict[int, list[str]] = {port: [] for port in ports}
    try:
        await wait_healthy(ports[0], survivor)
        await wait_healthy(ports[1], victim)
        events = [fresh_event() for _ in range(EVENTS)]
        load = asyncio.create_task(post_alternately(ports, events, accepted))
        while sum(map(len, accepted.values())) < EVENTS // 2 and not load.done():
            await asyncio.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        await load
        victim.wait(timeout=10)
        every = accepted[ports[0]] + accepted[ports[1]]
        assert EVENTS // 2 <= len(every) < EVENTS, "the kill should land in the middle"
        assert accepted[ports[0]] and accepted[ports[1]], "both replicas took load"

        deadline = time.monotonic() + 60
        while not set(every) <= set(receiver.delivered_ids()):
            assert survivor.poll() is None, "the surviving replica died"
            assert time.monotonic() < deadline, "not every accepted event was delivered"
            await asyncio.sleep(0.1)
    finally:
        stop(survivor)
        stop(victim)
        await receiver.close()

    delivered = Counter(receiver.delivered_ids())
    assert set(every) <= set(delivered)
    duplicates = sum(count - 1 for count in delivered.values())
    # Only what the killed replica had in flight (its concurrency, one sink) can be sent twice.
    assert duplicates <= CONCURRENCY * 1
