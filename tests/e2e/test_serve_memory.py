"""A burst of large bodies queues for the parse budget instead of growing memory, and
every call in it is accepted (RevRing does not retry a refused call); the parse
workers' memory counts too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.conftest import fresh_event
from tests.e2e.test_serve import API_KEY, free_port, start_server, stop, wait_healthy

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
RULES = """
version: 1
sinks:
  audit: {type: log}
rules:
  - name: everything
    to: [audit]
"""


def large_body(size: int = MiB - 512) -> bytes:
    """A valid call whose `transcript` fills the body with the costliest shape to
    decode and validate: small objects, many times their JSON size in memory."""
    event = fresh_event()
    empty = len(orjson.dumps(event)) + len(',"transcript":[]')
    event["transcript"] = [{}] * ((size - empty) // 3)
    return orjson.dumps(event)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (its parse workers and their fork server)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


async def test_32_concurrent_1mib_bodies_are_all_accepted_under_400_mb(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port)
    try:
        await wait_healthy(port, process)
        bodies = [large_body() for _ in range(32)]
        assert all(MiB - 1024 < len(body) <= MiB for body in bodies)
        url = f"http://127.0.0.1:{port}/webhooks/revring"
        headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=300)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def post(body: bytes) -> int:
                async with session.post(url, data=body, headers=headers) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(body) for body in bodies))
        assert statuses == [200] * 32
        assert peak_rss_mb(process.pid) < 400
        # With its parse workers, their fork server and multiprocessing's resource
        # tracker (each counting the pages the workers share with the fork server).
        workers = descendants(process.pid)
        assert len(workers) >= 3
        assert peak_rss_mb(process.pid) + sum(map(peak_rss_mb, workers)) < 450
    finally:
        stop(process)
