"""A call's numbers reach the sinks as they were posted: an integer beyond 64 bits is
delivered exactly, as the rules saw it at ingest (not as a float)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import fresh_event
from tests.service import post_event, running_service, wait_for

BIG = 123456789012345678901234567890


async def test_an_integer_beyond_64_bits_is_delivered_exactly(tmp_path: Path, write_rules) -> None:
    out = tmp_path / "delivered.jsonl"
    rules = write_rules(
        f"""
version: 1
sinks:
  audit: {{type: log, path: "{out}", text: "account={{{{ variables.account }}}}"}}
rules:
  - name: big-accounts
    when: {{variables.account: {{gt: 100000000000000000000}}}}
    to: [audit]
"""
    )
    async with running_service(rules, tmp_path / "router.db") as client:
        event = fresh_event(variables={"account": BIG})
        answer = await post_event(client, event)
        assert (await answer.json())["deliveries"] == 1
        await wait_for(lambda: out.exists() and out.read_text().strip())
    line = json.loads(out.read_text().splitlines()[0])
    assert line["text"] == f"account={BIG}"
