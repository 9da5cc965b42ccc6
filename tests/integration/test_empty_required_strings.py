"""A call whose required strings are empty (an anonymous caller, a status RevRing has not
filled in) is accepted, routed and delivered by every kind of sink (DESIGN.md section 5):
a real server, a real SQLite store, a local Slack webhook and a real SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import parts, post_event, running_service, wait_for

RULES = """
version: 1
sinks:
  slack: {type: slack, webhook_url: "%(slack)s"}
  mail:
    type: email
    host: 127.0.0.1
    port: %(smtp_port)d
    tls: none
    from: "Call Router <router@example.com>"
    to: [support@example.com]
  console: {type: log, path: "%(log)s"}
  templated:
    type: log
    path: "%(templated_log)s"
    text: "from={{ fromNumber | mask_phone }} status={{ status }} org={{ organizationId }}"
rules:
  - name: anonymous
    when: {fromNumber: "", status: {not_in: [FAILED]}, direction: {regex: "^$"}}
    to: [slack, mail, console, templated]
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTPServer(mailbox, hostname="mail.test"), "127.0.0.1", 0
    )
    yield mailbox, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.close()


async def test_a_call_with_empty_required_strings_is_routed_and_delivered_everywhere(
    tmp_path: Path, write_rules, smtp: tuple[Mailbox, int], slack: Receiver
) -> None:
    mailbox, smtp_port = smtp
    log, templated_log = tmp_path / "console.jsonl", tmp_path / "templated.jsonl"
    rules = write_rules(
        RULES
        % {
            "slack": slack.url("/services/T/B/X"),
            "smtp_port": smtp_port,
            "log": log,
            "templated_log": templated_log,
        }
    )
    event = fresh_event(fromNumber="", status="", direction="", organizationId="")
    async with running_service(rules, tmp_path / "router.db") as client:
        response = await post_event(client, event)
        assert response.status == 200, await response.text()
        assert await response.json() == {
            "status": "accepted",
            "event_id": event["id"],
            "deliveries": 4,
        }
        store, *_ = parts(client)

        async def all_delivered() -> bool:
            views = await store.list_deliveries()
            return len(views) == 4 and all(view.status == "delivered" for view in views)

        await wait_for(all_delivered)
        metrics = await (await client.get("/metrics")).text()

    assert 'revring_router_unknown_values_total{field="status"} 1.0' in metrics
    assert 'revring_router_unknown_values_total{field="direction"} 1.0' in metrics

    (alert,) = slack.received
    alert_text = json.dumps(alert.json)
    assert "UNKNOWN unknown-direction call" in alert_text
    assert event["id"] in alert_text

    (raw,) = mailbox.messages
    mail = message_from_bytes(raw, policy=policy.default)
    assert event["id"] in str(mail["Subject"]) + mail.get_body(("plain",)).get_content()

    (line,) = [json.loads(text) for text in log.read_text().splitlines()]
    assert line["from"] == ""
    (rendered,) = [json.loads(text) for text in templated_log.read_text().splitlines()]
    assert "from= status= org=" in json.dumps(rendered)
