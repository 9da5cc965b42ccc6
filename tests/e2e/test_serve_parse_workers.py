"""`serve`'s parse worker processes end with it, also when it is killed (it cannot stop
them itself then): nothing is left waiting on a queue nobody will write to."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_serve import API_KEY, finish, free_port, start_server, wait_healthy
from tests.e2e.test_serve_memory import RULES, descendants, large_body

pytestmark = pytest.mark.slow


def running(pid: int) -> bool:
    """Whether `pid` runs (an ended process its parent has not reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def until_gone(pids: list[int], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"still running: {[pid for pid in pids if running(pid)]}")
        await asyncio.sleep(0.1)


async def post_large(port: int) -> int:
    url = f"http://127.0.0.1:{port}/webhooks/revring"
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=large_body(), headers=headers) as answer,
    ):
        return answer.status


async def test_a_killed_server_leaves_no_parse_worker_behind(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port)
    try:
        await wait_healthy(port, process)
        assert await post_large(port) == 200
        workers = descendants(process.pid)
        assert len(workers) >= 3  # fork server, a worker, the resource tracker
    finally:
        process.kill()
        finish(process, 10)
    await until_gone(workers)
