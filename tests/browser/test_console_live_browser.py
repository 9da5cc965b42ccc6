"""The console that keeps up, in Chromium: times in the browser's own time zone, the
calls list picking up a call posted while it is open (no reload), the pause and the
stop of that refresh, a confirmation before a delivered delivery is sent again, and no
Content-Security-Policy violation anywhere (the `watch` fixture fails a test on one).

The refresh runs on the page's timers; Playwright's clock moves them on, so no test
waits the ten seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import Watch
from tests.browser.test_console_browser import rules, sign_in, url
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow

REFRESH = "00:11"  # a little more than the script's 10 s
NOTE = "[data-refresh-note]"


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    async with running_service(write_rules(rules(receiver.url())), tmp_path / "l.db") as client:
        yield client


@pytest.fixture
async def new_york(browser: Any, watch: Watch) -> Any:
    """A page in a browser whose time zone is America/New_York (and locale en-US)."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="America/New_York", locale="en-US"
    )
    page = await context.new_page()
    watch.attach(page)
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        await context.close()
    watch.check()


async def delivered(service: Any, event: dict) -> Any:
    """The call's delivery to crm, once the store has it delivered."""
    store, *_ = parts(service)

    async def done() -> list:
        return await store.list_deliveries("delivered", "crm")

    await wait_for(done)
    (view,) = await done()
    assert view.event_id == event["id"]
    return view


def row_of(page: Any, call_id: str) -> Any:
    """The calls list's row of a call."""
    return page.locator("table.calls tbody tr", has=page.locator(f"a[title='{call_id}']"))


async def test_a_time_shows_in_the_browsers_time_zone(new_york, service):
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)
    received = (await store.get_event(event["id"])).received_at
    await sign_in(new_york, service)
    await new_york.goto(url(service, "/ui/calls"))
    shown = row_of(new_york, event["id"]).locator("time")
    local = datetime.fromtimestamp(received, ZoneInfo("America/New_York"))
    expected = local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname()
    await new_york.wait_for_selector("table.calls time[data-local]")
    assert await shown.inner_text() == expected
    utc = datetime.fromtimestamp(received, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert await shown.get_attribute("title") == f"{utc} (shown in America/New_York)"
    assert local.utcoffset() != datetime.fromtimestamp(received, UTC).utcoffset(), (
        "a zone apart from UTC, so the test can tell"
    )


async def test_the_calls_list_picks_up_a_call_posted_while_it_is_open(page, service):
    first = fresh_event(status="FAILED")
    await post_event(service, first)
    await page.clock.install()
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    assert await row_of(page, first["id"]).count() == 1
    note = page.locator(NOTE)
    assert "updates every 10 s" in await note.inner_text()
    await page.evaluate("window.stillTheSamePage = true")

    later = fresh_event(status="COMPLETED", direction="INBOUND")
    await post_event(service, later)
    assert await row_of(page, later["id"]).count() == 0
    await page.clock.fast_forward(REFRESH)
    await row_of(page, later["id"]).wait_for()
    assert await page.evaluate("window.stillTheSamePage === true"), "swapped in place, no reload"
    assert await page.locator(NOTE).count() == 1
    new_time = row_of(page, later["id"]).locator("time")
    assert await new_time.get_attribute("data-local") == "", "its time is shown locally too"


async def test_typing_and_pausing_hold_the_refresh_and_a_sign_out_stops_it(page, service):
    await page.clock.install()
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    note = page.locator(NOTE)

    await page.focus("input[name=agent]")
    await page.keyboard.type("agent-")
    await page.clock.fast_forward(REFRESH)
    assert "waiting: you are typing" in await note.inner_text()
    await page.fill("input[name=agent]", "")
    await page.evaluate("document.activeElement.blur()")

    await note.locator("button", has_text="Pause").click()
    assert "paused" in await note.inner_text()
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    await page.clock.fast_forward(REFRESH)
    assert "paused" in await note.inner_text()
    await note.locator("button", has_text="Resume").click()
    await row_of(page, event["id"]).wait_for()

    await page.context.clear_cookies()  # signed out (as after 8 hours)
    await page.clock.fast_forward(REFRESH)
    stopped = page.locator(f"{NOTE}[role=alert]")
    await stopped.wait_for()
    assert "Stopped updating: you are signed out" in await stopped.inner_text()
    assert not await stopped.locator("button").is_visible(), "nothing to resume"
    assert "/ui/calls" in page.url, "the page stays, with what it showed"
    assert await row_of(page, event["id"]).count() == 1


async def test_a_refresh_keeps_the_scroll_position(page, service):
    for _ in range(12):
        await post_event(service, fresh_event(status="FAILED"))
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.clock.install()
    await sign_in(page, service)
    await page.goto(url(service, "/ui/calls"))
    await page.evaluate("window.scrollTo(0, 600)")
    before = await page.evaluate("window.scrollY")
    assert before == 600
    region = await page.evaluate_handle("document.querySelector('[data-refresh]')")
    await post_event(service, fresh_event(status="FAILED"))
    await page.clock.fast_forward(REFRESH)
    await page.wait_for_function("(old) => !old.isConnected", arg=region)
    assert await page.evaluate("window.scrollY") == before


async def test_replaying_a_delivered_delivery_asks_first(page, service, receiver, watch):
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    view = await delivered(service, event)
    store, *_ = parts(service)
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/deliveries/{view.id}"))

    watch.accept_confirms = False
    await page.click("form.actions button:has-text('Replay')")
    (question,) = watch.confirms
    assert (
        question
        == "This delivery was delivered to crm already. Replay it? crm gets it a second time."
    )
    assert page.url.endswith(f"/ui/deliveries/{view.id}"), "dismissed: nothing sent"
    assert (await store.get_delivery(view.id)).status == "delivered"

    watch.accept_confirms = True
    await page.click("form.actions button:has-text('Replay')")
    await page.wait_for_url("**replay=requeued")
    assert len(watch.confirms) == 2
    await wait_for(lambda: receiver.delivered_ids() == [event["id"], event["id"]])


async def test_without_javascript_the_server_asks_instead(browser, service, receiver):
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    view = await delivered(service, event)
    store, *_ = parts(service)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    try:
        await sign_in(page, service)
        await page.goto(url(service, f"/ui/deliveries/{view.id}"))
        assert (await page.locator("time").first.inner_text()).endswith(" UTC")
        assert await page.locator(NOTE).count() == 0
        await page.click("form.actions button:has-text('Replay')")
        await page.wait_for_url(f"**/ui/deliveries/{view.id}/replay")
        assert "Replay a delivered delivery?" in await page.inner_text("h1")
        assert (await store.get_delivery(view.id)).status == "delivered", "asked, not sent"
        await page.click("button:has-text('Replay it anyway')")
        await page.wait_for_url("**replay=requeued")
        await wait_for(lambda: receiver.delivered_ids() == [event["id"], event["id"]])
    finally:
        await context.close()


async def test_the_watch_sees_a_policy_violation(browser, service):
    """The CSP check of every browser test can fail: an inline script is refused and
    Chromium says so in the console."""
    context = await browser.new_context()
    page = await context.new_page()
    watch = Watch()
    watch.attach(page)
    try:
        await sign_in(page, service)
        await page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.ran = true'; document.head.appendChild(s); }"
        )
        assert await page.evaluate("window.ran === undefined"), "the policy refused it"
        await wait_for(lambda: watch.csp_violations)
        assert "inline script" in watch.csp_violations[0]
    finally:
        await context.close()
