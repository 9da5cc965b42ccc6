"""A value a call lacks never kills a delivery (DESIGN.md section 6): through the real
service, a call without `variables` posted to an HTTP sink whose body names
`{{ variables.customer_tier }}` is delivered with `""` inside a string and `null` as a
whole value, and counted in `template_missing_values_total{sink}`, also when a parse
worker builds the message. A template failing another way still makes the delivery dead.
A reload's answer and the console's rules page say what `check` says."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import generate_latest

from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

BODY = (
    '{"id": {{ id | tojson }}, "tier": {{ variables.customer_tier }},'
    ' "label": "tier {{ variables.customer_tier }}", "name": "{{ variables.customer_tier.name }}"}'
)


def rules(url: str, body: str = BODY) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{url}"
    body: '{body}'
rules:
  - name: all
    to: [crm]
"""


def without_variables(**changes: Any) -> dict[str, Any]:
    event = fresh_event(**changes)
    del event["variables"]
    return event


def missing_counted(metrics: Any) -> float:
    text = generate_latest(metrics.registry).decode()
    found = re.search(
        r'^revring_router_template_missing_values_total\{sink="crm"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_a_call_without_variables_is_delivered_with_empty_values_and_counted(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(receiver.url("/calls")))
    small = without_variables()
    large = without_variables(transcript=[{"role": "agent", "content": "x" * 90}] * 5000)
    async with running_service(path, tmp_path / "r.db") as client:
        for event in (small, large):
            assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(receiver.received) == 2)
        store, engine, _, metrics = parts(client)
        await wait_for(lambda: _all_delivered(store))
        apart = engine.render_apart
        assert apart is not None and apart.last_pid in apart.workers.pids, "built in a worker"
        await wait_for(lambda: missing_counted(metrics) == 6.0)
    bodies = sorted(
        (json.loads(received.body) for received in receiver.received), key=lambda b: b["id"]
    )
    assert bodies == sorted(
        (
            {"id": event["id"], "tier": None, "label": "tier ", "name": ""}
            for event in (small, large)
        ),
        key=lambda b: b["id"],
    )


async def _all_delivered(store: Any) -> bool:
    views = await store.list_deliveries()
    return bool(views) and all(view.status == "delivered" for view in views)


async def test_a_template_failing_another_way_still_makes_the_delivery_dead(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(receiver.url("/calls"), body='{"n": {{ status + 1 }}}'))
    async with running_service(path, tmp_path / "r.db") as client:
        assert (await post_event(client, without_variables())).status == 200
        store, *_ = parts(client)
        await wait_for(lambda: _has_dead(store))
        [dead] = await store.list_deliveries("dead")
        assert dead.attempts == 1 and "TypeError" in (dead.last_error or "")
    assert receiver.received == []


async def _has_dead(store: Any) -> bool:
    return bool(await store.list_deliveries("dead"))


async def test_a_reload_answers_what_check_says_keeping_its_fields(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url("/calls")))
    async with running_service(path, tmp_path / "r.db") as client:
        path.write_text(
            rules(receiver.url("/calls")).replace(
                "to: [crm]", "to: [crm]\n    when: {staus: FAILED}"
            )
        )
        answer = await client.post(
            "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert answer.status == 200
        body = await answer.json()
    assert body["status"] == "reloaded" and body["rules"] == 1 and body["sinks"] == ["crm"]
    warnings = body["warnings"]
    assert any(
        "variables.customer_tier is missing from sample minimal-canceled" in w for w in warnings
    )
    assert any("'staus' is not a field of RevRing's post-call event" in w for w in warnings)
    assert all(w.startswith(f"{path}:") for w in warnings)


async def test_the_console_rules_page_shows_what_check_says(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url("/calls?token=S3CRET-IN-THE-URL")))
    async with running_service(path, tmp_path / "r.db") as client:
        signed_in = await client.post(
            "/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/"}, allow_redirects=False
        )
        assert signed_in.status == 303
        page = await (await client.get("/ui/rules")).text()
    assert "What <code>check</code> says" in page
    assert "variables.customer_tier is missing from sample minimal-canceled" in page
    assert "S3CRET-IN-THE-URL" not in page
