"""The console's calls in Chromium: a call posted to the webhook appears on the calls
page and its page shows its deliveries; older pages follow the keyset; script in a
call's summary or transcript stays text on its page."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.store import IngestRecord
from tests.browser.test_console_browser import (
    ATTRIBUTE_BREAKOUT,
    SCRIPT_SUMMARY,
    rules,
    sign_in,
    url,
)
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    async with running_service(write_rules(rules(receiver.url())), tmp_path / "c.db") as client:
        yield client


async def test_a_call_posted_to_the_webhook_appears_on_the_calls_page_with_its_deliveries(
    page, service, receiver
):
    event = fresh_event(status="FAILED", fromNumber="+14155550123")
    assert (await post_event(service, event)).status == 200
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    row = page.locator("tbody tr", has=page.locator(f"a[title='{event['id']}']"))
    assert await row.count() == 1
    text = await row.inner_text()
    assert "FAILED" in text and "+1415•••0123" in text and "+14155550123" not in text

    await row.locator("a.id").click()
    await page.wait_for_url(f"**/ui/calls/{event['id']}")
    crm = page.locator("article.delivery", has=page.locator("a:has-text('crm')"))
    assert "delivered" in await crm.inner_text()
    assert "200" in await crm.locator("tbody").inner_text(), "the attempt and its status code"
    slack = page.locator("article.delivery", has=page.locator("a:has-text('ops-slack')"))
    assert "pending" in await slack.inner_text()
    assert "failed-calls" in await page.inner_text("ul.matched")


async def test_older_calls_come_page_by_page(page, service):
    store, *_ = parts(service)
    base = time.time() - 1000
    await asyncio.gather(
        *(
            store.ingest(IngestRecord(f"call-{n:03d}", b'{"id": "x"}', base + n, [], "COMPLETED"))
            for n in range(60)
        )
    )
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    first = await page.locator("tbody a.id").all_inner_texts()
    assert first == [f"call-{n:03d}" for n in range(59, 9, -1)]
    await page.click("a:has-text('Older')")
    await page.wait_for_url("**before_id=call-010**")
    assert await page.locator("tbody a.id").all_inner_texts() == [
        f"call-{n:03d}" for n in range(9, -1, -1)
    ]
    assert await page.locator("a:has-text('Older')").count() == 0
    await page.click("a:has-text('Newest')")
    assert await page.locator("tbody a.id").first.inner_text() == "call-059"


async def test_script_in_a_calls_summary_and_transcript_stays_text_on_its_page(page, service):
    transcript = [
        {"role": "agent", "content": SCRIPT_SUMMARY},
        {"role": "user", "content": ATTRIBUTE_BREAKOUT},
    ]
    event = fresh_event(status="FAILED", summary=SCRIPT_SUMMARY, transcript=transcript)
    event["summary"] += ATTRIBUTE_BREAKOUT
    assert (await post_event(service, event)).status == 200
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/calls/{event['id']}"))
    assert await page.inner_text("p.summary") == SCRIPT_SUMMARY + ATTRIBUTE_BREAKOUT
    said = await page.locator("ol.transcript .said").all_inner_texts()
    assert said == [SCRIPT_SUMMARY, ATTRIBUTE_BREAKOUT]
    assert await page.locator("img").count() == 0
    assert await page.locator("main script").count() == 0
