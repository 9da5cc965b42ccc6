"""The console's silences in Chromium: "Silence calls like this one" on a call's page
opens the form filled from the call; saving it lists the silence, which an Expire
button ends."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_console_browser import rules, sign_in, url
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    async with running_service(write_rules(rules(receiver.url())), tmp_path / "s.db") as client:
        yield client


async def test_a_silence_created_from_a_calls_page_is_listed_and_expires(page, service, watch):
    event = fresh_event(status="FAILED", agentId="agent-browser-1", sipTrunkId="trunk-b")
    assert (await post_event(service, event)).status == 200
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/calls/{event['id']}"))
    await page.click("text=Silence calls like this one")
    await page.wait_for_url("**/ui/silences?call=*")
    when = json.loads(await page.input_value("textarea[name=when]"))
    assert when == {"status": "FAILED", "sipTrunkId": "trunk-b", "agentId": "agent-browser-1"}
    await page.fill("textarea[name=when]", json.dumps({"sipTrunkId": "trunk-b"}))
    await page.fill("input[name=for]", "30m")
    await page.check("input[name=sinks][value=crm]")
    await page.fill("input[name=comment]", "trunk-b maintenance")
    await page.click("button:has-text('Create silence')")
    await page.wait_for_url("**/ui/silences?created=*")

    store, *_ = parts(service)
    (record,) = await store.list_silences()
    row = page.locator(f"tr[data-silence='{record.id}']")
    text = await row.inner_text()
    assert "active" in text and "trunk-b maintenance" in text and "crm" in text
    assert '"sipTrunkId": "trunk-b"' in await row.locator("pre.when").inner_text()

    watch.accept_confirms = False
    await row.locator("button:has-text('Expire')").click()
    assert watch.confirms == [
        "Expire this silence? The calls it matches are delivered again from now on."
    ]
    assert "/ui/silences?created=" in page.url, "dismissed: nothing sent"
    assert (await store.list_silences())[0].expired_at is None
    watch.accept_confirms = True
    await row.locator("button:has-text('Expire')").click()
    await page.wait_for_url("**/ui/silences?expired=*")
    assert len(watch.confirms) == 2, "asked again"
    assert "No silence is active or pending" in await page.inner_text("main")
    await page.click("summary:has-text('Expired in the last 30 days')")
    assert await page.locator(f"tr[data-silence='{record.id}']").is_visible()
