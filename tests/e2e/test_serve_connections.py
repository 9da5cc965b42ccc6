"""`serve` against slow, silent and too many clients: the request head, the body and an
idle connection each have a deadline, and open connections are capped, so none of them
can keep /healthz from answering."""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import time

import aiohttp
import pytest

from tests.e2e.test_serve import API_KEY, finish, free_port, start_server, stop, wait_healthy

pytestmark = pytest.mark.slow

LIVENESS = 30.0  # seconds: a bound on waiting for an answer, so a broken server fails the test


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
    port = free_port()
    process = serve(tmp_path, port, ROUTER_MAX_CONNECTIONS="3", ROUTER_BODY_TIMEOUT="600")
    head = (
        "POST /webhooks/revring HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"x-api-key: {API_KEY}\r\nContent-Length: 2\r\n\r\n"
    ).encode()
    try:
        await wait_healthy(port, process)
        busy = [silent_socket(port) for _ in range(3)]
        for sock in busy:
            sock.sendall(head + b"{")  # the head, and one byte of the body: in a request
        await asyncio.sleep(1)
        probe = asyncio.create_task(healthz(port))
        await asyncio.sleep(1)
        assert not probe.done()  # waiting to be accepted, not refused
        busy[0].sendall(b"}")
        assert (await asyncio.to_thread(busy[0].recv, 4096)).startswith(b"HTTP/1.1 422 ")
        busy[0].close()
        assert await probe == 200
        for sock in busy[1:]:
            sock.close()
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
    ],
)
def test_a_bad_limit_setting_is_a_clear_error(tmp_path, name, value):
    process = serve(tmp_path, free_port(), **{name: value})
    stderr = finish(process)
    assert process.returncode == 2
    assert f"{name} must be a positive" in stderr and repr(value) in stderr
    assert "Traceback" not in stderr
