"""Request bodies on every route (router/web/request_body.py), over real sockets: an endpoint
answers what it can without the body (not configured, wrong credential, locked out)
before reading it; a body that is not valid text in its charset, or names an unknown
one, is a 400 with a message, never a 500 or a traceback in the log."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from tests.service import ADMIN_TOKEN, API_KEY, running_service

LIVENESS = 10.0  # seconds: a bound on waiting for an answer, so a server that waits fails
FORM = "application/x-www-form-urlencoded"

SLACK_RULES = """version: 1
sinks:
  ops-slack:
    type: slack
    webhook_url: "http://127.0.0.1:9/hooks"
    signing_secret: "slack-signing-secret"
rules: [{name: all, to: [ops-slack]}]
"""


async def answer_to_head_alone(port: int, path: str, *headers: str) -> bytes:
    """Send a POST head announcing a 100,000-byte body and no byte of it; return the
    answer's status line (the test fails when none comes: the server waits for the body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = "".join(f"{header}\r\n" for header in headers)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n{head}"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), LIVENESS)
    finally:
        writer.close()


async def test_slack_interactions_without_a_signing_secret_answer_404_before_the_body(
    tmp_path, write_rules
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        status_line = await answer_to_head_alone(client.port, "/slack/interactions")
    assert status_line.startswith(b"HTTP/1.1 404 ")


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ("X-Slack-Signature: v0=00",),
        ("X-Slack-Request-Timestamp: 1000000000", "X-Slack-Signature: v0=00"),  # stale
        ("X-Slack-Request-Timestamp: " + "9" * 5000, "X-Slack-Signature: v0=00"),
    ],
)
async def test_a_slack_click_that_cannot_be_signed_is_a_401_before_the_body(
    tmp_path, write_rules, headers
):
    async with running_service(write_rules(SLACK_RULES), tmp_path / "r.db") as client:
        status_line = await answer_to_head_alone(client.port, "/slack/interactions", *headers)
    assert status_line.startswith(b"HTTP/1.1 401 ")


async def test_the_admin_api_and_console_answer_without_the_body_when_they_can(
    tmp_path, write_rules
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        port = client.port
        wrong = await answer_to_head_alone(port, "/admin/silences", "Authorization: Bearer no")
        assert wrong.startswith(b"HTTP/1.1 401 ")
        no_session = await answer_to_head_alone(port, "/ui/silences")
        assert no_session.startswith(b"HTTP/1.1 303 ")
        for _ in range(5):  # lock this address out
            await client.post("/ui/login", data={"token": "wrong"})
        locked = await answer_to_head_alone(port, "/ui/login")
        assert locked.startswith(b"HTTP/1.1 429 ")
    async with running_service(
        write_rules("version: 1\n"), tmp_path / "off.db", admin_token=None
    ) as client:
        for path in ("/admin/silences", "/ui/login"):
            off = await answer_to_head_alone(
                client.port, path, f"Authorization: Bearer {ADMIN_TOKEN}"
            )
            assert off.startswith(b"HTTP/1.1 404 "), path


def tracebacks(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.exc_info]


async def sign_in(client) -> str:
    """Sign in and return a CSRF token of the session."""
    response = await client.post("/ui/login", data={"token": ADMIN_TOKEN}, allow_redirects=False)
    assert response.status == 303
    page = await (await client.get("/ui/silences")).text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("body", "content_type", "named"),
    [
        (b"token=\xff", FORM, "utf-8"),
        (b"token=x&next=/ui/\xfe", FORM, "utf-8"),
        (b"token=x", f"{FORM}; charset=nonexistent-xx", "nonexistent-xx"),
        (b"token=x", f"{FORM}; charset=base64", "base64"),  # a codec, not a text encoding
    ],
)
async def test_a_sign_in_form_that_is_not_text_is_a_400(
    tmp_path, write_rules, caplog, body, content_type, named
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        with caplog.at_level(logging.INFO):
            response = await client.post(
                "/ui/login", data=body, headers={"Content-Type": content_type}
            )
        assert response.status == 400
        page = await response.text()
        assert named in page
        assert "Content-Security-Policy" in response.headers
    assert not tracebacks(caplog)


@pytest.mark.parametrize(
    "path", ["/ui/silences", "/ui/rules/playground", "/ui/deliveries/replay-dead", "/ui/logout"]
)
@pytest.mark.parametrize("charset", ["", "; charset=nonexistent-xx"])
async def test_a_signed_in_console_post_that_is_not_text_is_a_400(
    tmp_path, write_rules, caplog, path, charset
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        csrf = await sign_in(client)
        body = f"csrf={csrf}&comment=caf".encode() + (b"\xe9" if not charset else b"e")
        with caplog.at_level(logging.INFO):
            response = await client.post(
                path,
                data=body,
                headers={"Content-Type": FORM + charset},
                allow_redirects=False,
            )
        assert response.status == 400, await response.text()
        assert (await client.get("/ui/", allow_redirects=False)).status == 200, "still signed in"
    assert not tracebacks(caplog)


async def test_a_form_in_latin_1_that_says_so_is_read(tmp_path, write_rules):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        response = await client.post(
            "/ui/login",
            data="token=caf\u00e9".encode("latin-1"),
            headers={"Content-Type": f"{FORM}; charset=iso-8859-1"},
        )
        assert response.status == 401, "read, and just the wrong token"


async def test_a_console_post_that_is_not_a_form_is_a_415(tmp_path, write_rules):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        response = await client.post(
            "/ui/login", data=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status == 415
        assert FORM in await response.text()


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/admin/silences", b'{"when": {"status": "FAILED"}, "for": "1h\xff"}', "application/json"),
        ("/admin/silences", b'{"for": "1h"}', "application/json; charset=nonexistent-xx"),
        ("/admin/silences", '{"for": "1h"}'.encode("utf-16"), "application/json"),
        ("/admin/sinks/crm/pause", b'{"for": "\xfe"}', "application/json"),
    ],
)
async def test_an_admin_body_that_is_not_utf8_is_a_400(
    tmp_path, write_rules, caplog, path, body, content_type
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        with caplog.at_level(logging.INFO):
            response = await client.post(
                path,
                data=body,
                headers={"Content-Type": content_type, "Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert response.status == 400
        answer = await response.json()
        assert "charset" in answer["error"] or "not valid" in answer["error"]
    assert not tracebacks(caplog)


async def test_a_webhook_body_over_a_mib_is_still_a_413(tmp_path, write_rules):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        response = await client.post(
            "/webhooks/revring",
            data=b"{" + b" " * (1024 * 1024) + b"}",
            headers={"Content-Type": "application/json", "x-api-key": API_KEY},
        )
        assert response.status == 413
        too_big_form = await client.post(
            "/ui/login", data=b"token=" + b"a" * (1024 * 1024), headers={"Content-Type": FORM}
        )
        assert too_big_form.status == 413


async def test_the_slack_signature_is_still_checked_over_the_body(tmp_path, write_rules):
    async with running_service(write_rules(SLACK_RULES), tmp_path / "r.db") as client:
        response = await client.post(
            "/slack/interactions",
            data=b"payload=%7B%7D",
            headers={
                "Content-Type": FORM,
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
        )
        assert response.status == 401
