"""Header values that are not UTF-8 (raw bytes on the wire) are a wrong credential: a 401
(or the admin API's 404 when it is off), never a 500."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, API_KEY, running_service

RULES = "version: 1\n"


async def raw_request(port: int, head: bytes, body: bytes = b"") -> int:
    """Send `head` (request line and headers, CRLF-separated, bytes as they are) and
    return the status code of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        writer.write(body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize("key", [b"\xff\xfe", b"caf\xc3", API_KEY.encode() + b"\xff"])
async def test_a_non_utf8_api_key_is_a_401(tmp_path, write_rules, key):
    import orjson

    body = orjson.dumps(fresh_event())
    head = (
        b"POST /webhooks/revring HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nx-api-key: " + key + b"\r\n"
    )
    async with running_service(write_rules(RULES), tmp_path / "r.db") as client:
        assert await raw_request(client.port, head, body) == 401


@pytest.mark.parametrize(
    "authorization", [b"Bearer \xff", b"Bearer " + ADMIN_TOKEN.encode() + b"\xfe", b"\xc3("]
)
@pytest.mark.parametrize("admin_token", [ADMIN_TOKEN, None])
async def test_a_non_utf8_bearer_token_is_a_401_or_404_when_admin_is_off(
    tmp_path, write_rules, authorization, admin_token
):
    head = b"GET /admin/deliveries HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization
    async with running_service(
        write_rules(RULES), tmp_path / "r.db", admin_token=admin_token
    ) as client:
        status = await raw_request(client.port, head + b"\r\n")
    assert status == (401 if admin_token else 404)
