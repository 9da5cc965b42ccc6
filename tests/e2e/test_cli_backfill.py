"""`revring-router backfill` as a user runs it, against a fake RevRing API on a real
socket, beside a running `serve` on the same SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import fresh_event
from tests.e2e.test_cli_rules import run
from tests.e2e.test_serve import free_port, start_server, stop, wait_healthy
from tests.revring_fake import FAKE_API_KEY

pytestmark = pytest.mark.slow

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console]
"""


async def backfill(*args: str, url: str, key: str | None = FAKE_API_KEY) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env["ROUTER_REVRING_API_URL"] = url
    if key is not None:
        env["ROUTER_REVRING_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        "backfill",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def logged_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["event_id"] for line in path.read_text().splitlines() if line]


async def test_cli_backfill_beside_a_running_server_is_delivered(tmp_path, revring):
    out = tmp_path / "out.jsonl"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % {"log": out})
    db = tmp_path / "router.db"
    port = free_port()
    server = start_server(rules, db, port)
    try:
        await wait_healthy(port, server)
        calls = [fresh_event("failed-outbound") for _ in range(3)]
        revring.know(*calls)
        ids = tmp_path / "calls.csv"
        rows = [f"2026-11-20,{call['id']},FAILED" for call in calls]
        ids.write_text("createdAt,id,status\n" + "\n".join([*rows, "2026-11-20,unknown-1,FAILED"]))
        started = time.monotonic()
        code, stdout, stderr = await backfill(
            "--ids", str(ids), "--config", str(rules), "--store", f"sqlite:///{db}", url=revring.url
        )
        assert code == 0, stderr
        assert "fetched 3, new 3, duplicate 0, not found 1, failed 0" in stdout
        assert "not found: unknown-1" in stdout
        deadline = time.monotonic() + 20
        while sorted(logged_ids(out)) != sorted(c["id"] for c in calls):
            assert time.monotonic() < deadline, "backfilled calls were not delivered"
            await asyncio.sleep(0.05)
        print(f"backfilled deliveries sent {time.monotonic() - started:.2f}s after the CLI began")
        code, stdout, _ = await backfill(
            "--id",
            calls[0]["id"],
            "--config",
            str(rules),
            "--store",
            f"sqlite:///{db}",
            url=revring.url,
        )
        assert code == 0
        assert "new 0, duplicate 1" in stdout
        audited = await asyncio.to_thread(
            run, "audit", "--action", "backfill", "--json", "--store", f"sqlite:///{db}"
        )
        assert audited.returncode == 0, audited.stderr
        second, first = [json.loads(line) for line in audited.stdout.splitlines()]
        assert first["actor"].startswith("cli:") and first["details"]["new"] == 3
        assert first["target"].startswith("calls:") and second["details"]["duplicate"] == 1
    finally:
        stop(server)
    assert FAKE_API_KEY not in stdout + stderr


async def test_cli_dry_run_writes_nothing(tmp_path, revring):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % {"log": tmp_path / "out.jsonl"})
    call = fresh_event("failed-outbound")
    revring.know(call)
    db = tmp_path / "router.db"
    code, stdout, stderr = await backfill(
        "--id",
        call["id"],
        "--dry-run",
        "--config",
        str(rules),
        "--store",
        f"sqlite:///{db}",
        url=revring.url,
    )
    assert code == 0, stderr
    assert f"would route {call['id']} OUTBOUND FAILED: console (send, rule failed)" in stdout
    assert "(dry run: nothing written or sent)" in stdout
    assert not db.exists()


async def test_cli_exits_non_zero_when_the_api_cannot_be_reached(tmp_path, revring):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % {"log": tmp_path / "out.jsonl"})
    await revring.stop()
    code, stdout, stderr = await backfill(
        "--id",
        "a",
        "b",
        "--config",
        str(rules),
        "--store",
        f"sqlite:///{tmp_path / 'r.db'}",
        url=revring.url,
    )
    assert code == 1
    assert "failed 2" in stdout
    assert "failed: a: RevRing API" in stdout
    assert FAKE_API_KEY not in stdout + stderr


async def test_cli_needs_the_api_key(tmp_path, revring):
    code, _, stderr = await backfill("--id", "a", url=revring.url, key=None)
    assert code == 2
    assert "ROUTER_REVRING_API_KEY" in stderr
