"""`serve` with no usable temporary directory (a read-only root without a writable
`/tmp`): its parse workers keep their files in the store's directory, or, when they
still cannot start, large bodies are parsed in the router; no call over the inline
size is answered 503, and /readyz says what is lesser (issue 32 item 1).

The server runs with `TMPDIR` naming a regular file (unusable by any user, root
included) and `tempfile` looking nowhere else (a `sitecustomize` on its path: the
stand-in for `/tmp`, `/var/tmp` and the working directory all being read-only)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_serve import API_KEY, finish, free_port, start_server, wait_healthy
from tests.e2e.test_serve_memory import RULES, large_body

pytestmark = pytest.mark.slow

KiB = 1024
ONLY_TMPDIR = """\
import os
import tempfile

tempfile._candidate_tempdir_list = lambda: [os.environ["TMPDIR"]]
"""


def no_temp_dir(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ONLY_TMPDIR)
    unusable = tmp_path / "not-a-dir"
    unusable.write_text("")
    return {"PYTHONPATH": str(site), "TMPDIR": str(unusable)}


async def post(session: aiohttp.ClientSession, port: int, body: bytes) -> int:
    url = f"http://127.0.0.1:{port}/webhooks/revring"
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as answer:
        return answer.status


async def readiness(session: aiohttp.ClientSession, port: int) -> tuple[int, dict]:
    async with session.get(f"http://127.0.0.1:{port}/readyz") as answer:
        return answer.status, await answer.json()


def delivered(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        query = "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        return int(connection.execute(query).fetchone()[0])


async def until_delivered(db: Path, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while delivered(db) < 1:
        assert time.monotonic() < deadline, "the call was not delivered"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("workers_start", [True, False], ids=["store-dir", "in-router"])
async def test_a_large_call_is_taken_without_a_temporary_directory(tmp_path, workers_start):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    db = tmp_path / "r.db"
    env = no_temp_dir(tmp_path)
    # Without a SQLite store there is no spare directory: the workers cannot start.
    extra = () if workers_start else ("--store", "memory://")
    port = free_port()
    process = start_server(rules, db, port, *extra, env=env)
    try:
        await wait_healthy(port, process)
        body = large_body(100 * KiB)
        assert len(body) > 64 * KiB  # over the inline size: parse workers' work
        async with aiohttp.ClientSession() as session:
            assert await post(session, port, body) == 200
            if workers_start:
                await until_delivered(db)
            status, ready = await readiness(session, port)
    finally:
        process.terminate()
        stderr = finish(process)
    assert status == 200, ready
    assert ready["status"] == "ready"
    if workers_start:
        assert "parse workers keep their temporary files in " + str(tmp_path) in stderr
        assert ready["warnings"] == [
            "no usable temporary directory: parse workers use the store's directory"
        ]
    else:
        assert stderr.count("parse workers cannot start") == 1
        assert "large bodies are parsed in the router's own thread" in stderr
        (warning,) = ready["warnings"]
        assert warning.startswith("parse workers cannot start: ")
    assert "the body could not be parsed" not in stderr
