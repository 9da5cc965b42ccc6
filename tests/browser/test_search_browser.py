"""The calls page's search box in Chromium: a caller's number typed another way than it
was stored finds their call; words of the transcript too; the status and hang-up cause
are chosen from the data, and each call shows its worst delivery state."""

from __future__ import annotations

import pytest

from tests.browser.test_console_browser import rules, sign_in, url
from tests.conftest import fresh_event
from tests.service import post_event, running_service

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    async with running_service(write_rules(rules(receiver.url())), tmp_path / "s.db") as client:
        yield client


async def test_a_search_by_a_differently_formatted_number_finds_the_call(page, service):
    caller = fresh_event(
        "failed-outbound",
        fromNumber="+14155550142",
        hangupCause="SILENCE_TIMEOUT",
        summary="Caller asked about a refund.",
        transcript=[{"role": "user", "content": "My kettle arrived broken"}],
    )
    other = fresh_event("completed-inbound", fromNumber="+14155550999")
    for body in (caller, other):
        assert (await post_event(service, body)).status == 200
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    assert await page.locator("tbody a.id").count() == 2

    await page.fill("input[name=q]", "(415) 555-0142")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url("**q=%28415%29**")
    assert await page.locator("tbody a.id").count() == 1
    assert await page.locator("tbody a.id").get_attribute("title") == caller["id"]
    assert await page.input_value("input[name=q]") == "(415) 555-0142"
    shown = await page.locator("tbody tr").inner_text()
    assert "+1415•••0142" in shown and "+14155550142" not in shown

    await page.fill("input[name=q]", "Kettle")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url("**q=Kettle**")
    assert await page.locator("tbody a.id").get_attribute("title") == caller["id"]

    await page.fill("input[name=q]", "")
    await page.select_option("select[name=hangup]", "SILENCE_TIMEOUT")
    await page.click("button:has-text('Show')")
    await page.wait_for_url("**hangup=SILENCE_TIMEOUT**")
    assert await page.locator("tbody a.id").count() == 1
    assert await page.locator("tbody a.id").get_attribute("title") == caller["id"]
    assert await page.locator("td[data-label=Deliveries] .badge").count() == 1

    await page.click("nav a:has-text('Dead letters')")
    await page.wait_for_url("**/ui/deliveries?status=dead")
    assert await page.locator("h1").inner_text() == "Dead letters"
