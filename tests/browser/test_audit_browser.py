"""The audit page in Chromium (DESIGN.md section 14): a replay made from the console is
listed at /ui/audit with its actor, reached from the console's menu, and the page's
filters narrow it to one action."""

from __future__ import annotations

import pytest

from tests.browser.test_console_browser import rules, sign_in, url
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db") as client:
        yield client


async def test_a_replay_from_the_console_is_listed_on_the_audit_page(page, service, receiver):
    receiver.answer = lambda request, n: 400 if n == 1 else 200
    await post_event(service, fresh_event(status="FAILED"))
    store, *_ = parts(service)

    async def dead() -> list:
        return await store.list_deliveries("dead", "crm")

    await wait_for(dead)
    (view,) = await dead()
    await sign_in(page, service)
    await page.goto(url(service, f"/ui/deliveries/{view.id}"))
    await page.click("button:has-text('Replay')")
    await page.wait_for_url("**replay=requeued")

    await page.click("header nav >> text=Audit")
    await page.wait_for_url("**/ui/audit")
    assert await page.inner_text("h1") == "Audit"
    rows = page.locator("table.audit tbody tr")
    assert await rows.count() == 2, "the replay and the sign-in"
    replay = rows.filter(has_text=f"delivery:{view.id}")
    assert await replay.locator("[data-label=Actor]").inner_text() == "token"
    assert await replay.locator("[data-label=Action]").inner_text() == "replay"
    assert "UTC" in await replay.locator("[data-label=Time]").inner_text()

    await page.select_option("select[name=action]", "signin")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**/ui/audit?actor=&action=signin")
    assert await rows.count() == 1
    assert await rows.first.locator("[data-label=Action]").inner_text() == "signin"
