"""`serve` against slow, silent and too many clients: the request head, the body and an
idle connection each have a deadline, and open connections are capped, so none of them
can keep /healthz from answering."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import subprocess
import time

import aiohttp
import pytest

from tests.conftest import fresh_event
from tests.e2e.test_serve import API_KEY, finish, free_port, start_server, stop, wait_healthy

pytestmark = pytest.mark.slow

LIVENESS = 30.0  # seconds: a bound on waiting for an answer, so a broken server fails the test
ADMIN_TOKEN = "e2e-admin-token"


def serve(tmp_path, port: int, **env: str) -> subprocess.Popen:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    return start_server(rules, tmp_path / "r.db", port, env=env)


def silent_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=LIVENESS)
    sock.settimeout(LIVENESS)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


async def healthz(port: int) -> int:
    timeout = aiohttp.ClientTimeout(total=LIVENESS)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        return response.status


async def test_a_silent_socket_is_closed_with_a_408_after_the_head_deadline(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_HEADER_TIMEOUT="1")
    try:
        await wait_healthy(port, process)
        with silent_socket(port) as sock:
            answer = await asyncio.to_thread(read_until_closed, sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        stop(process)


async def test_with_the_default_settings_a_silent_socket_is_closed_within_60_seconds(tmp_path):
    port = free_port()
    process = serve(tmp_path, port)
    try:
        await wait_healthy(port, process)
        with silent_socket(port) as sock:
            sock.settimeout(60)
            answer = await asyncio.to_thread(read_until_closed, sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        stop(process)


def send_slowly(sock: socket.socket, data: bytes) -> bytes:
    """Send `data` a byte at a time, a byte each 0.2 s, until the server answers or closes:
    what it answered, b"closed", or b"still open" after LIVENESS seconds."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + LIVENESS
    for byte in data:
        if time.monotonic() > deadline:
            break
        try:
            sock.sendall(bytes([byte]))
            return sock.recv(4096) or b"closed"
        except TimeoutError:
            continue
        except OSError:
            return b"closed"
    return b"still open"


async def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_head_deadline(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_HEADER_TIMEOUT="2")
    try:
        await wait_healthy(port, process)

        def slowloris() -> bytes:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 10_000
            with silent_socket(port) as sock:
                return send_slowly(sock, head)

        answer = await asyncio.to_thread(slowloris)
        assert answer.startswith(b"HTTP/1.1 408 ") or answer == b"closed"
    finally:
        stop(process)


async def test_a_second_head_sent_a_byte_at_a_time_is_cut_at_the_idle_timeout(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_IDLE_TIMEOUT="2")
    try:
        await wait_healthy(port, process)

        def slowloris_after_one_request() -> tuple[bytes, bytes]:
            with silent_socket(port) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                first = sock.recv(4096)
                head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 10_000
                return first, send_slowly(sock, head)

        first, answer = await asyncio.to_thread(slowloris_after_one_request)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert answer == b"closed"
    finally:
        stop(process)


async def test_a_body_sent_a_byte_at_a_time_is_cut_at_the_body_deadline(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_BODY_TIMEOUT="1")
    try:
        await wait_healthy(port, process)

        def slow_body() -> bytes:
            head = (
                "POST /webhooks/revring HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"x-api-key: {API_KEY}\r\nContent-Length: 5000\r\n\r\n"
            ).encode()
            with silent_socket(port) as sock:
                sock.sendall(head)
                return send_slowly(sock, b" " * 5000)

        answer = await asyncio.to_thread(slow_body)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"request body not received within 1 seconds" in answer
    finally:
        stop(process)


async def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_IDLE_TIMEOUT="1")
    try:
        await wait_healthy(port, process)

        def one_request_then_idle() -> tuple[bytes, bytes]:
            with silent_socket(port) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                first = sock.recv(4096)
                return first, read_until_closed(sock)

        first, rest = await asyncio.to_thread(one_request_then_idle)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert rest == b""
    finally:
        stop(process)


def _low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


async def test_200_silent_sockets_under_a_low_file_limit_leave_healthz_answering(tmp_path):
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    process = start_server(
        rules,
        tmp_path / "r.db",
        port,
        env={"ROUTER_HEADER_TIMEOUT": "600"},
        preexec_fn=_low_file_limit,
    )
    sockets: list[socket.socket] = []
    try:
        await wait_healthy(port, process)
        for _ in range(200):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        await asyncio.sleep(1)  # let the server take them in
        for _ in range(5):
            assert await healthz(port) == 200
    finally:
        for sock in sockets:
            sock.close()
        stop(process)


async def test_at_the_connection_cap_busy_connections_hold_new_ones_back(tmp_path):
    """Connections whose requests the server is working on (a backfill waiting for a
    RevRing API that does not answer) are not given up: a newcomer waits for one."""
    port = free_port()
    with socket.socket() as silent_api:  # listens, never answers
        silent_api.bind(("127.0.0.1", 0))
        silent_api.listen()
        api_url = f"http://127.0.0.1:{silent_api.getsockname()[1]}/v1"
        process = serve(
            tmp_path,
            port,
            ROUTER_MAX_CONNECTIONS="3",
            ROUTER_ADMIN_TOKEN=ADMIN_TOKEN,
            ROUTER_REVRING_API_KEY="rr-key",
            ROUTER_REVRING_API_URL=api_url,
        )
        body = b'{"ids": ["call-1"]}'
        request = (
            "POST /admin/backfill HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            await wait_healthy(port, process)
            busy = [silent_socket(port) for _ in range(3)]
            for sock in busy:
                sock.sendall(request)  # a whole request: the server is busy with it
            await asyncio.sleep(1.5)  # past the eviction grace
            probe = asyncio.create_task(healthz(port))
            await asyncio.sleep(1)
            assert not probe.done()  # waiting to be accepted, not refused
            busy[0].close()
            assert await probe == 200
            for sock in busy[1:]:
                sock.close()
        finally:
            stop(process)


SLACK_RULES = """version: 1
sinks:
  ops-slack:
    type: slack
    webhook_url: "http://127.0.0.1:9/hooks"
    signing_secret: "slack-signing-secret"
rules: [{name: all, to: [ops-slack]}]
"""


def trickled_request(path: str) -> bytes:
    """A request head for `path` announcing a 100,000-byte body, with what the route
    needs before it reads a body (a bearer token, Slack's headers)."""
    extra = ""
    if path.startswith("/admin/"):
        extra = f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
    if path.startswith("/slack/"):
        extra = f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0=00\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
        f"\r\n{extra}Content-Length: 100000\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "slack_signing_secret"),
    [
        ("/slack/interactions", False),  # answered 404 before the body
        ("/slack/interactions", True),
        ("/ui/login", False),
        ("/admin/silences", False),
        ("/admin/reload", False),  # a route that never reads its body
    ],
)
async def test_bodies_trickled_to_any_route_leave_webhooks_and_healthz_answered(
    tmp_path, path, slack_signing_secret
):
    rules = tmp_path / "rules.yaml"
    rules.write_text(SLACK_RULES if slack_signing_secret else "version: 1\n")
    port = free_port()
    env = {"ROUTER_MAX_CONNECTIONS": "20", "ROUTER_ADMIN_TOKEN": ADMIN_TOKEN}
    process = start_server(rules, tmp_path / "r.db", port, env=env)
    tricklers: list[socket.socket] = []
    try:
        await wait_healthy(port, process)
        for _ in range(20):
            sock = silent_socket(port)
            sock.sendall(trickled_request(path) + b"a")
            tricklers.append(sock)
        await asyncio.sleep(1.5)  # every one of them now slower than a real client
        for sock in tricklers:
            with contextlib.suppress(OSError):
                sock.sendall(b"a")
        timeout = aiohttp.ClientTimeout(total=LIVENESS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            event = fresh_event()
            async with session.post(
                f"http://127.0.0.1:{port}/webhooks/revring",
                json=event,
                headers={"x-api-key": API_KEY},
            ) as response:
                assert response.status == 200
                assert (await response.json())["event_id"] == event["id"]
        assert await healthz(port) == 200
    finally:
        for sock in tricklers:
            sock.close()
        stop(process)


async def test_a_connection_given_up_for_its_slow_body_is_told_408(tmp_path):
    port = free_port()
    env = {"ROUTER_MAX_CONNECTIONS": "2", "ROUTER_ADMIN_TOKEN": ADMIN_TOKEN}
    process = serve(tmp_path, port, **env)
    try:
        await wait_healthy(port, process)
        slow = [silent_socket(port) for _ in range(2)]
        for sock in slow:
            sock.sendall(trickled_request("/ui/login") + b"token=")
        await asyncio.sleep(1.5)
        assert await healthz(port) == 200
        answer = await asyncio.to_thread(read_until_closed, slow[0])
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"connection limit" in answer
        for sock in slow:
            sock.close()
    finally:
        stop(process)


async def test_a_console_body_sent_a_byte_at_a_time_is_cut_at_the_body_deadline(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_BODY_TIMEOUT="1", ROUTER_ADMIN_TOKEN=ADMIN_TOKEN)
    try:
        await wait_healthy(port, process)

        def slow_body() -> bytes:
            with silent_socket(port) as sock:
                sock.sendall(trickled_request("/ui/login"))
                return send_slowly(sock, b"token=" + b"a" * 5000)

        answer = await asyncio.to_thread(slow_body)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"request body not received within 1 seconds" in answer
    finally:
        stop(process)


async def test_at_the_connection_cap_a_silent_connection_makes_room(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, ROUTER_MAX_CONNECTIONS="3", ROUTER_HEADER_TIMEOUT="600")
    try:
        await wait_healthy(port, process)
        silent = [silent_socket(port) for _ in range(10)]
        for _ in range(3):
            assert await healthz(port) == 200
        assert (await asyncio.to_thread(read_until_closed, silent[0])).startswith(b"HTTP/1.1 408")
        for sock in silent:
            sock.close()
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROUTER_HEADER_TIMEOUT", "soon"),
        ("ROUTER_BODY_TIMEOUT", "-1"),
        ("ROUTER_IDLE_TIMEOUT", "inf"),
        ("ROUTER_MAX_CONNECTIONS", "1.5"),
        ("ROUTER_MAX_PARSE_BYTES", "0"),
        ("ROUTER_SHUTDOWN_GRACE", "-5"),
    ],
)
def test_a_bad_limit_setting_is_a_clear_error(tmp_path, name, value):
    process = serve(tmp_path, free_port(), **{name: value})
    stderr = finish(process)
    assert process.returncode == 2
    assert f"{name} must be a positive" in stderr and repr(value) in stderr
    assert "Traceback" not in stderr
