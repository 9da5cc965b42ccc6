"""Forgetting a caller in Chromium (DESIGN.md section 15): from the calls page to the
"Forget a caller" page, the counts of a dry run first, then the confirmation; afterwards
the caller is gone from every page (calls, their call pages, deliveries, the overview),
and a call that mentioned them shows `[erased]`."""

from __future__ import annotations

import pytest

from tests.browser.test_console_browser import rules, sign_in, url
from tests.conftest import fresh_event
from tests.service import post_event, running_service, wait_for

pytestmark = pytest.mark.slow

CALLER = "+14155550142"
SPELLINGS = ("+14155550142", "4155550142", "555-0142", "555 0142", "1415•••0142")


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    async with running_service(write_rules(rules(receiver.url())), tmp_path / "f.db") as client:
        yield client


async def test_a_forgotten_caller_is_gone_from_every_page(page, service, receiver):
    mine = fresh_event(status="FAILED", fromNumber=CALLER)
    theirs = fresh_event(status="FAILED", fromNumber="+14155550199", toNumber=CALLER)
    other = fresh_event(
        status="FAILED",
        fromNumber="+442071838750",
        summary="Wants us to call her son on (415) 555-0142",
    )
    for body in (mine, theirs, other):
        assert (await post_event(service, body)).status == 200
    await wait_for(lambda: len(receiver.delivered_ids()) == 3)
    await sign_in(page, service)

    await page.goto(url(service, "/ui/calls"))
    assert "1415•••0142" in await page.inner_text("main")
    await page.click("#forget-link")
    await page.wait_for_url("**/ui/forget")
    await page.fill("input[name=phone]", "(415) 555-0142")
    await page.click("text=Count what would be erased")
    counts = await page.inner_text("#counts")
    assert "Calls deleted\n2" in counts or "Calls deleted\t2" in counts, counts
    assert "Other calls rewritten" in counts
    await page.click("text=Forget this caller")
    await page.wait_for_selector("#forgotten")

    pages = ["/ui/", "/ui/calls", "/ui/deliveries", f"/ui/calls/{other['id']}"]
    for path in pages:
        await page.goto(url(service, path))
        text = await page.inner_text("body")
        html = await page.content()
        assert [s for s in SPELLINGS if s in text or s in html] == [], path
        assert mine["id"] not in html and theirs["id"] not in html, path
    assert "[erased]" in await page.inner_text("main")
    for gone in (mine, theirs):
        response = await page.goto(url(service, f"/ui/calls/{gone['id']}"))
        assert response is not None and response.status == 404
    await page.goto(url(service, "/ui/calls?call=" + mine["id"]))
    assert await page.locator(f"a[title='{mine['id']}']").count() == 0
