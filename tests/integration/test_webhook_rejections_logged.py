"""Rejected webhooks show in the log (DESIGN.md section 4), through a real socket: each
reason at once, then counted, at most one line per 10 s; never the key presented or
the body. An accepted call logs nothing of the kind."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.conftest import fresh_event
from tests.service import post_event, running_service

RULES = "version: 1\nsinks:\n  console: {type: log, path: '%(log)s'}\nrules: []\n"
WRONG_KEY = "rr_live_wrong-key-0123456789"


async def test_rejections_are_logged_once_per_reason_then_counted(
    tmp_path, write_rules, caplog: pytest.LogCaptureFixture
) -> None:
    rules = write_rules(RULES % {"log": tmp_path / "out.jsonl"})
    secret_body = fresh_event(fromNumber="+14155550142", summary="card 4111 1111 1111 1111")
    secret_body["status"] = 7  # a schema error: 422
    with caplog.at_level(logging.INFO, logger="router.web.webhook"):
        async with running_service(rules, tmp_path / "router.db") as client:
            assert (await post_event(client, fresh_event())).status == 200
            for _ in range(3):
                assert (await post_event(client, fresh_event(), key=WRONG_KEY)).status == 401
            for _ in range(2):
                assert (await post_event(client, secret_body)).status == 422
            response = await client.post(
                "/webhooks/revring",
                data=b"{not json",
                headers={"x-api-key": "test-key-2", "Content-Type": "application/json"},
            )
            assert response.status == 400
            logged_while_serving = [r.getMessage() for r in caplog.records]
        logged = [r.getMessage() for r in caplog.records]

    assert logged_while_serving == [
        "rejected a webhook: missing or wrong x-api-key header (401)",
        "rejected a webhook: not a valid post-call event (422)",
        "rejected a webhook: malformed JSON (400)",
    ]
    counted = [re.sub(r"in the last \d+ s", "in the last N s", line) for line in logged[3:]]
    assert counted == [  # counted since, and logged as the service stops
        "rejected 2 webhooks in the last N s: missing or wrong x-api-key header (401)",
        "rejected 1 webhook in the last N s: not a valid post-call event (422)",
    ]
    everything = json.dumps([vars(record) for record in caplog.records], default=str)
    for secret in (WRONG_KEY, "4155550142", "4111", "{not json"):
        assert secret not in everything
