"""Rendering is bounded at send (DESIGN.md section 6): a template that goes past a bound
on one call fails that delivery permanently, naming the bound, and the service goes on
delivering the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.core import template_limits
from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, post_event, running_service, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Passes `check` (the sample calls have no such variables), goes past a bound on a call
# that has them.
TEXT = (
    "{% set v = variables or {} %}"
    "{% if v.get('flood') %}{{ 'x' * 5000000 }}{% endif %}"
    "{% if v.get('spin') %}{% for i in range(100000) %}{% for j in range(1000) %}"
    "{% endfor %}{% endfor %}{% endif %}"
    "{{ status }} call {{ id }}"
)


def rules(out: Path) -> str:
    return (
        "version: 1\nsinks:\n"
        f"  console:\n    type: log\n    path: {json.dumps(str(out))}\n"
        f"    text: {json.dumps(TEXT)}\n"
        "rules:\n  - {name: all, to: [console]}\n"
    )


async def deliveries(client) -> dict[str, dict]:
    answer = await client.get("/admin/deliveries", headers=ADMIN)
    return {delivery["event_id"]: delivery for delivery in await answer.json()}


async def run_calls(tmp_path: Path, *events: dict) -> tuple[dict[str, dict], list[str]]:
    """Post `events` to a service whose log sink renders TEXT; their deliveries once
    settled, and the texts the sink wrote."""
    out = tmp_path / "out.jsonl"
    path = tmp_path / "rules.yaml"
    path.write_text(rules(out))
    async with running_service(path, tmp_path / "r.db") as client:
        for event in events:
            assert (await post_event(client, event)).status == 200

        async def settled() -> bool:
            found = await deliveries(client)
            return len(found) == len(events) and all(
                d["status"] in ("dead", "delivered") for d in found.values()
            )

        await wait_for(settled)
        found = await deliveries(client)
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    return found, texts


async def test_output_past_the_size_bound_fails_that_delivery_for_good(tmp_path: Path) -> None:
    flood = fresh_event(status="FAILED", variables={"flood": True})
    plain = fresh_event(status="FAILED")
    found, texts = await run_calls(tmp_path, flood, plain)
    assert texts == [f"FAILED call {plain['id']}"]
    delivery = found[flood["id"]]
    assert (delivery["status"], delivery["attempts"]) == ("dead", 1), delivery
    assert delivery["last_error"].startswith("template stopped at template line 1: ")
    assert (
        "would make more than 4,194,304 characters, the size a template's output"
        in (delivery["last_error"])
    )


async def test_rendering_past_the_time_bound_fails_that_delivery_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(template_limits, "RENDER_SECONDS", 0.2)
    spin = fresh_event(status="FAILED", variables={"spin": True})
    plain = fresh_event(status="FAILED")
    found, texts = await run_calls(tmp_path, spin, plain)
    assert texts == [f"FAILED call {plain['id']}"]
    delivery = found[spin["id"]]
    assert (delivery["status"], delivery["attempts"]) == ("dead", 1), delivery
    assert delivery["last_error"].startswith("template stopped at template line 1: ")
    assert "rendering took longer than the 0.2 s a template may take" in delivery["last_error"]
