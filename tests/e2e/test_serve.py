"""`revring-router serve` as a real process: start-up errors, SIGTERM, and SIGKILL mid-load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from router.engine.records import new_delivery_id
from router.store import IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore
from tests.conftest import fresh_event
from tests.receivers import Receiver

pytestmark = pytest.mark.slow

API_KEY = "e2e-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    rules: Path,
    db: Path,
    port: int,
    *extra: str,
    env: dict | None = None,
    preexec_fn: Callable[[], None] | None = None,
):
    """The server as a subprocess; its output goes to files beside the database (a pipe
    nobody reads would fill up and block the server's logging)."""
    environ = {**os.environ, "ROUTER_API_KEYS": API_KEY, **(env or {})}
    command = [sys.executable, "-m", "router", "serve", "--config", str(rules)]
    command += ["--store", f"sqlite:///{db}", "--port", str(port), *extra]
    stdout = (db.parent / f"serve-{port}.out").open("w")
    stderr = (db.parent / f"serve-{port}.err").open("w+")
    process = subprocess.Popen(
        command, env=environ, stdout=stdout, stderr=stderr, text=True, preexec_fn=preexec_fn
    )
    process.stderr_file = stderr  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen, limit: float = 30) -> str:
    """Wait for the process to exit; return what it wrote on stderr."""
    process.wait(timeout=limit)
    stderr = process.stderr_file  # type: ignore[attr-defined]
    stderr.seek(0)
    return stderr.read()


async def wait_healthy(port: int, process: subprocess.Popen, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {finish(process)}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server did not become healthy")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    finish(process, 10)


def test_serve_refuses_to_start_without_an_api_key(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    environ = {k: v for k, v in os.environ.items() if k != "ROUTER_API_KEYS"}
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--config", str(rules)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "ROUTER_API_KEYS" in result.stderr and "--no-auth" in result.stderr


def test_serve_with_a_bad_rules_file_exits_with_located_errors(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsinks:\n  x: {type: pigeon}\n")
    process = start_server(rules, tmp_path / "r.db", free_port())
    stderr = finish(process)
    assert process.returncode == 1
    assert f"{rules}:3:" in stderr and "pigeon" in stderr


def test_serve_on_a_taken_port_exits_with_a_clear_error(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_server(rules, tmp_path / "r.db", port)
        stderr = finish(process)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr


async def _store_with_due_deliveries(db: Path, count: int) -> None:
    """A store holding `count` calls, each with a delivery to `crm` due now."""
    store = SQLiteStore(db)
    await store.open()
    try:
        for _ in range(count):
            event = fresh_event()
            delivery = NewDelivery(new_delivery_id(), "crm", "all")
            payload = json.dumps(event).encode()
            await store.ingest(IngestRecord(event["id"], payload, time.time(), [delivery]))
    finally:
        await store.close()


async def _attempts(db: Path) -> list[tuple[str, int]]:
    store = SQLiteStore(db)
    await store.open()
    try:
        return [(view.status, view.attempts) for view in await store.list_deliveries()]
    finally:
        await store.close()


async def test_serve_that_cannot_listen_sends_nothing(tmp_path, receiver):
    """DESIGN §3: a `serve` that cannot listen exits 1 before it sends anything. With
    deliveries due in the store and the port taken (a second `serve`), the store's
    deliveries stay as they were and the sink hears nothing."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f'version: 1\nsinks: {{crm: {{type: http, url: "{receiver.url()}"}}}}\n'
        "rules: [{name: all, to: [crm]}]\n"
    )
    db = tmp_path / "router.db"
    await _store_with_due_deliveries(db, 5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_server(rules, db, port)
        stderr = await asyncio.to_thread(finish, process)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in stderr
    assert receiver.received == []
    assert await _attempts(db) == [("pending", 0)] * 5


async def test_sigterm_stops_gracefully(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port)
    try:
        await wait_healthy(port, process)
        process.send_signal(signal.SIGTERM)
        stderr = finish(process)
        assert process.returncode == 0
        assert "stopped" in stderr
    finally:
        stop(process)


def half_sent_webhook(port: int, body: bytes) -> socket.socket:
    """A connection that has sent a webhook's head and the first half of its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            "POST /webhooks/revring HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"x-api-key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """All the server sends until it closes the connection ("" when it sends nothing)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError:
        pass
    return received


def twenty_kb_event() -> dict:
    return fresh_event(summary="a long call " * 1700)


def stored_call_ids(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM events")}


async def test_sigterm_finishes_webhooks_whose_body_is_still_arriving(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    port = free_port()
    db = tmp_path / "r.db"
    process = start_server(rules, db, port)
    try:
        await wait_healthy(port, process)
        events = [twenty_kb_event() for _ in range(5)]
        bodies = [orjson.dumps(event) for event in events]
        assert all(len(body) > 20_000 for body in bodies)
        clients = [half_sent_webhook(port, body) for body in bodies]
        await asyncio.sleep(0.2)  # the heads are in
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.5)  # the rest comes 1.5 s after the signal
        with pytest.raises(OSError):  # no new connections meanwhile
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for sock, body in zip(clients, bodies, strict=True):
            sock.sendall(body[len(body) // 2 :])
        answers = await asyncio.gather(*(asyncio.to_thread(answer_of, s) for s in clients))
        for sock in clients:
            sock.close()
        stderr = finish(process)
    finally:
        stop(process)
    for answer, event in zip(answers, events, strict=True):
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert event["id"].encode() in answer
    assert process.returncode == 0
    assert "finishing 5 requests in progress" in stderr
    assert "dropped" not in stderr
    assert {event["id"] for event in events} <= stored_call_ids(db)


async def test_sigterm_drops_and_logs_a_request_not_finished_within_the_grace(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port, env={"ROUTER_SHUTDOWN_GRACE": "1"})
    try:
        await wait_healthy(port, process)
        body = orjson.dumps(twenty_kb_event())
        stalled = half_sent_webhook(port, body)  # the rest never comes
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200 ")  # kept alive, now idle
        await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(answer_of, idle) == b"", "an idle connection is closed"
        assert await asyncio.to_thread(answer_of, stalled) == b""
        stalled.close()
        idle.close()
        stderr = finish(process)
    finally:
        stop(process)
    assert process.returncode == 0
    half = len(body) // 2
    assert "dropped 1 request not answered within 1 s" in stderr
    assert f"POST /webhooks/revring (body: {half} of {len(body)} bytes received)" in stderr


async def _post_all(port: int, events: list[dict], accepted: list[str]) -> None:
    url = f"http://127.0.0.1:{port}/webhooks/revring"
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(event: dict) -> None:
            try:
                async with session.post(url, json=event, headers={"x-api-key": API_KEY}) as r:
                    if r.status == 200 and (await r.json())["status"] == "accepted":
                        accepted.append(event["id"])
            except (TimeoutError, aiohttp.ClientError):
                pass

        await asyncio.gather(*(post(event) for event in events))


async def test_sigkill_mid_load_loses_no_accepted_event(tmp_path):
    """Every event answered 200 before a kill -9 is delivered after the restart."""
    receiver = await Receiver().start()
    receiver.answer = lambda request, n: 503  # the CRM is down while we load and kill
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\n"
        "defaults: {retry: {initial_delay: 100ms, max_delay: 500ms, max_attempts: 1000}}\n"
        f'sinks: {{crm: {{type: http, url: "{receiver.url()}"}}}}\n'
        "rules: [{name: all, to: [crm]}]\n"
    )
    db = tmp_path / "router.db"
    port = free_port()
    process = start_server(rules, db, port)
    accepted: list[str] = []
    try:
        await wait_healthy(port, process)
        events = [fresh_event() for _ in range(600)]
        load = asyncio.create_task(_post_all(port, events, accepted))
        while len(accepted) < 200 and not load.done():
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        await load
        process.wait(timeout=10)
        assert 200 <= len(accepted) < 600, "the kill should land in the middle of the load"

        receiver.answer = lambda request, n: 200
        port = free_port()
        process = start_server(rules, db, port)
        await wait_healthy(port, process)
        deadline = time.monotonic() + 60
        while not set(accepted) <= set(receiver.delivered_ids()):
            assert time.monotonic() < deadline, "not every accepted event was delivered"
            await asyncio.sleep(0.1)
    finally:
        stop(process)
        await receiver.close()
    assert set(accepted) <= set(receiver.delivered_ids())


def test_serve_with_an_unwritable_store_exits_with_a_clear_error(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    environ = {**os.environ, "ROUTER_API_KEYS": API_KEY}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "serve",
            "--config",
            str(rules),
            "--store",
            f"sqlite:///{blocker}/router.db",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and str(blocker) in result.stderr
