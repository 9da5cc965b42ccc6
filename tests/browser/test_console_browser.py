"""The web console in Chromium: signing in and out, the pages an on-call person uses,
replay from a delivery's page, the rules playground, and the attacks it must refuse
(forged forms, script in event text)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow

SCRIPT_SUMMARY = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(2)>'


def rules(receiver_url: str) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 1, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{receiver_url}"
  ops-slack:
    type: slack
    webhook_url: ${{CONSOLE_TEST_UNSET_WEBHOOK:-}}
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [crm, ops-slack]
"""


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db") as client:
        yield client


def url(service: Any, path: str) -> str:
    return str(service.make_url(path))


async def sign_in(page: Any, service: Any, token: str = ADMIN_TOKEN) -> None:
    await page.goto(url(service, "/ui/login"))
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")


async def test_signing_in_and_out(page, service):
    await page.goto(url(service, "/ui/deliveries"))
    assert "/ui/login" in page.url, "a page without a session leads to sign-in"
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/ui/deliveries")
    assert await page.inner_text("h1") == "Deliveries"
    cookies = await page.context.cookies()
    (session,) = [c for c in cookies if c["name"] == "router_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == "", "scripts cannot read the session"
    await page.click("text=Sign out")
    await page.wait_for_url("**/ui/login?signed_out=1")
    assert "You are signed out" in await page.inner_text("main")
    await page.goto(url(service, "/ui/"))
    assert "/ui/login" in page.url


async def test_a_wrong_token_is_refused(page, service):
    await sign_in(page, service, "not-the-token")
    assert "That token is not right" in await page.inner_text("[role=alert]")
    assert "/ui/login" in page.url
    assert not [c for c in await page.context.cookies() if c["name"] == "router_console"]
    await page.goto(url(service, "/ui/"))
    assert "/ui/login" in page.url


async def test_a_page_without_a_session_redirects_to_sign_in(page, service):
    for path in ("/ui/", "/ui/rules", "/ui/deliveries/some-id"):
        await page.goto(url(service, path))
        assert "/ui/login" in page.url, path
        assert await page.locator("input[type=password][name=token]").count() == 1


async def test_the_deliveries_page_shows_a_call_posted_to_the_webhook(page, service, receiver):
    event = fresh_event(status="FAILED")
    assert (await post_event(service, event)).status == 200
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    await sign_in(page, service)
    await page.goto(url(service, "/ui/deliveries?sink=crm"))
    call = f"code[title='{event['id']}']"
    row = page.locator("tbody tr", has=page.locator(call))
    assert await row.count() == 1
    assert "delivered" in await row.inner_text()
    await page.select_option("select[name=status]", "pending")
    await page.click("form.filters button")
    await page.wait_for_url("**status=pending**")
    assert await page.locator(call).count() == 0


async def test_a_dead_delivery_replayed_from_its_page_reaches_the_sink(page, service, receiver):
    receiver.answer = lambda request, n: 400 if n == 1 else 200
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)

    async def dead() -> list:
        return await store.list_deliveries("dead", "crm")

    await wait_for(dead)
    (view,) = await dead()
    await sign_in(page, service)
    await page.goto(url(service, "/ui/deliveries?status=dead"))
    await page.click(f"a[href='/ui/deliveries/{view.id}']")
    assert "dead" in await page.inner_text(".facts")
    await page.click("button:has-text('Replay')")
    await page.wait_for_url("**replay=requeued")
    assert "Requeued" in await page.inner_text("[role=status]")
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])


async def test_the_playground_shows_the_matching_rule_and_the_slack_text(page, service):
    await sign_in(page, service)
    await page.goto(url(service, "/ui/rules"))
    event = fresh_event(status="FAILED", errorMessage="SIP 503 from the carrier")
    await page.fill("textarea[name=event]", json.dumps(event))
    await page.click("button:has-text('Route this call')")
    result = page.locator("#result")
    assert "failed-calls" in await result.locator(".matched").inner_text()
    slack = result.locator("[data-sink=ops-slack] .slack-message")
    text = await slack.inner_text()
    assert "🔴 FAILED outbound call" in text
    assert "SIP 503 from the carrier" in text
    assert await slack.locator("b", has_text="Caller").count() == 1, "mrkdwn *bold* drawn"
    assert "+1415" in text and "0199" in text and "+14155550199" not in text, "numbers masked"
    http = await result.locator("[data-sink=crm] pre").inner_text()
    assert http.startswith("POST http://127.0.0.1:")


async def test_a_forged_post_without_the_csrf_token_is_refused(page, service, receiver):
    receiver.answer = lambda request, n: 400
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)

    async def dead() -> list:
        return await store.list_deliveries("dead", "crm")

    await wait_for(dead)
    (view,) = await dead()
    target = url(service, f"/ui/deliveries/{view.id}/replay")
    attacker = web.Application()

    async def lure(request: web.Request) -> web.Response:
        form = f'<form method="post" action="{target}"><button id="go">Win</button></form>'
        return web.Response(text=form, content_type="text/html")

    attacker.router.add_get("/", lure)
    server = TestServer(attacker, host="127.0.0.1")  # another port: same site, other origin
    await server.start_server()
    try:
        await sign_in(page, service)
        await page.goto(str(server.make_url("/")))
        await page.click("#go")
        await page.wait_for_load_state()
        assert (await page.title()).startswith("403")
        assert "another site" in await page.inner_text("[role=alert]")

        # The same form on the console's own page (same origin), its token taken out.
        await page.goto(url(service, f"/ui/deliveries/{view.id}"))
        await page.evaluate("document.querySelector('form.actions input[name=csrf]').remove()")
        await page.click("button:has-text('Replay')")
        await page.wait_for_load_state()
        assert (await page.title()).startswith("403")
        assert "CSRF token is missing or wrong" in await page.inner_text("[role=alert]")
    finally:
        await server.close()
    assert (await store.get_delivery(view.id)).status == "dead", "the forged form changed nothing"
    assert len(receiver.received) == 1


async def test_event_text_with_script_stays_text(page, service):
    await sign_in(page, service)
    await page.goto(url(service, "/ui/rules"))
    event = fresh_event(status="FAILED", summary=SCRIPT_SUMMARY, errorMessage=ATTRIBUTE_BREAKOUT)
    event["variables"] = {"note": ATTRIBUTE_BREAKOUT}
    await page.fill("textarea[name=event]", json.dumps(event))
    await page.click("button:has-text('Route this call')")
    shown = await page.inner_text("#result")
    assert SCRIPT_SUMMARY in shown
    assert ATTRIBUTE_BREAKOUT in shown
    assert await page.locator("img").count() == 0
    assert await page.locator("#result script").count() == 0
    assert SCRIPT_SUMMARY in await page.input_value("textarea[name=event]")
