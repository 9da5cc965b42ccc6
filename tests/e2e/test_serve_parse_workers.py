"""`serve`'s parse worker processes end with it, also when it is killed (it cannot stop
them itself then): nothing is left waiting on a queue nobody will write to."""

from __future__ import annotations

import asyncio
import os
import signal
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


def semaphores_mapped(pid: int) -> set[str]:
    """The POSIX semaphores `pid` has open, as their /dev/shm lines in its memory map."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {line.split(None, 5)[5] for line in maps.splitlines() if "/dev/shm/sem." in line}


@pytest.mark.parametrize("ending", [signal.SIGKILL, signal.SIGTERM])
async def test_a_server_ended_any_way_leaves_no_semaphore_and_writes_only_json(tmp_path, ending):
    """The pool's semaphores are unlinked once its workers hold them: when the router is
    killed, Python's resource tracker has nothing to clean up, and so writes nothing (it
    used to warn of "leaked semaphore objects", in two lines that were not JSON); when it
    stops, nothing unlinks them twice."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port)
    workers: list[int] = []
    try:
        await wait_healthy(port, process)
        assert await post_large(port) == 200
        workers = descendants(process.pid)
        mapped = set().union(*(semaphores_mapped(pid) for pid in [process.pid, *workers]))
        named = {line for line in mapped if "/dev/shm/sem.mp-" in line}
        assert named, "the pool's queues hold semaphores"
        assert all(line.endswith(" (deleted)") for line in named), named
    finally:
        process.send_signal(ending)
    await until_gone(workers)
    stderr = finish(process, 20)
    lines = stderr.splitlines()
    assert lines and all(line.startswith("{") for line in lines), stderr
    left = {line.removesuffix(" (deleted)") for line in named}
    assert not left & {f"/dev/shm/{name}" for name in os.listdir("/dev/shm")}
