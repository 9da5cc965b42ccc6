"""Acknowledging and escalation chains in the console, in Chromium (DESIGN.md section 16):
an escalated delivery links to the one nobody acknowledged, which links back; the
Acknowledge button on a delivery's page and on a call's page records who acknowledged,
shown on the call's page for the rule of the delivery acknowledged (a call two rules
matched lists each rule's acknowledgement)."""

from __future__ import annotations

import pytest

from tests.browser.test_console_browser import sign_in, url
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow


def rules(receiver_url: str) -> str:
    return f"""
version: 1
sinks:
  ops: {{type: http, url: "{receiver_url}/ops"}}
  oncall: {{type: http, url: "{receiver_url}/oncall"}}
  sales: {{type: http, url: "{receiver_url}/sales"}}
rules:
  - name: failed
    when: {{status: FAILED}}
    to: [ops]
    escalate: {{after: 1s, to: [oncall]}}
  - name: completed
    when: {{status: COMPLETED}}
    to: [ops]
    escalate: {{after: 1h, to: [oncall]}}
  - name: vip
    when: {{variables.customer_tier: {{in: [gold]}}}}
    to: [sales]
    escalate: {{after: 1h, to: [oncall]}}
"""


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url("").rstrip("/")))
    async with running_service(path, tmp_path / "ack.db") as client:
        yield client


async def test_the_chain_shows_and_the_acknowledge_button_records_who(page, service) -> None:
    store = parts(service)[0]
    event = fresh_event(status="FAILED")
    assert (await post_event(service, event)).status == 200

    async def escalated() -> list[str]:
        views = await store.deliveries_of_event(event["id"])
        return [view.id for view in views if view.escalated_from]

    await wait_for(escalated)
    (copy,) = await escalated()
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/deliveries/{copy}"))
    assert "escalated from" in await page.inner_text("dd.escalated-from")
    await page.click("dd.escalated-from a")
    original = page.url.rsplit("/", 1)[-1]
    assert copy in await page.inner_text("dd.escalated-to")

    await page.click("form.acknowledge button")
    await page.wait_for_url(f"**/ui/deliveries/{original}?acknowledged=yes")
    assert "Acknowledged" in await page.inner_text("p.notice")
    assert "by token in the console" in await page.inner_text("dd.acknowledged")

    await page.goto(url(service, f"/ui/calls/{event['id']}"))
    shown = await page.locator("article.delivery p.acknowledgement").all_inner_texts()
    assert len(shown) == 2 and all("by token in the console" in text for text in shown)


async def test_the_call_pages_acknowledge_button_stops_its_escalation(page, service) -> None:
    store = parts(service)[0]
    event = fresh_event(status="COMPLETED")
    assert (await post_event(service, event)).status == 200
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/calls/{event['id']}"))
    assert "Not acknowledged" in await page.inner_text("article.delivery p.acknowledgement")
    await page.click("article.delivery form.acknowledge button")
    await page.wait_for_url(f"**/ui/calls/{event['id']}?acknowledged=yes&rule=completed")
    assert "for rule completed" in await page.inner_text("p.notice")
    assert "by token in the console" in await page.inner_text("article.delivery")
    assert await page.locator("article.delivery form.acknowledge").count() == 0
    acknowledged = await store.acknowledgement("call", event["id"], "completed")
    assert acknowledged is not None and acknowledged.user_id == "token"


async def test_a_call_two_rules_matched_shows_each_rules_acknowledgement(page, service) -> None:
    store = parts(service)[0]
    event = fresh_event(status="COMPLETED", variables={"customer_tier": "gold"})
    assert (await post_event(service, event)).status == 200
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/calls/{event['id']}"))
    rules = page.locator("ul.matched li")
    assert await rules.all_inner_texts() == [
        "completed not acknowledged",
        "vip not acknowledged",
    ]
    sales = page.locator("article.delivery", has_text="rule vip")
    await sales.locator("form.acknowledge button").click()
    await page.wait_for_url(f"**/ui/calls/{event['id']}?acknowledged=yes&rule=vip")
    assert "for rule vip" in await page.inner_text("p.notice")
    completed, vip = await rules.all_inner_texts()
    assert completed == "completed not acknowledged"
    assert vip.startswith("vip acknowledged by token in the console")
    ops = page.locator("article.delivery", has_text="rule completed")
    assert "Not acknowledged" in await ops.locator("p.acknowledgement").inner_text()
    assert await ops.locator("form.acknowledge").count() == 1  # still to acknowledge
    assert "by token" in await sales.locator("p.acknowledgement").inner_text()
    assert await store.acknowledgement("call", event["id"], "completed") is None
    # Each delivery's page shows the acknowledgement of its own rule.
    for rule, acknowledged in (("completed", 0), ("vip", 1)):
        (view,) = [v for v in await store.deliveries_of_event(event["id"]) if v.rule == rule]
        await page.goto(url(service, f"/ui/deliveries/{view.id}"))
        assert await page.locator("dd.acknowledged").count() == acknowledged
