"""Single sign-on in Chromium: the sign-in page's button, the provider (our own, on
another site: `localhost` against the router's 127.0.0.1) and back, landing signed in
on the page asked for; a provider that is down gives a clear page while the admin token
still signs in."""

from __future__ import annotations

from typing import Any

import pytest

from router.web.ui.auth import SESSION_COOKIE
from router.web.ui.sso import PENDING_COOKIE
from tests.oidc_provider import OidcProvider, free_port
from tests.service import ADMIN_TOKEN, running_service

pytestmark = pytest.mark.slow

RULES = "version: 1\nsinks: {}\nrules: []\n"


@pytest.fixture
async def provider():
    started = await OidcProvider(host_name="localhost").start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def service(tmp_path, write_rules, provider):
    port = free_port()
    settings = provider.settings(f"http://127.0.0.1:{port}")
    async with running_service(
        write_rules(RULES), tmp_path / "sso.db", oidc=settings, port=port
    ) as client:
        yield client


def url(service: Any, path: str) -> str:
    return str(service.make_url(path))


async def test_single_sign_on_lands_signed_in_on_the_page_asked_for(page, service, provider):
    await page.goto(url(service, "/ui/calls"))
    assert "/ui/login" in page.url
    await page.click("text=Sign in with single sign-on")
    await page.wait_for_url("**/ui/calls")
    assert await page.inner_text("h1") == "Calls"
    assert await page.locator("text=Sign out").count() == 1
    assert "signed in as alice (admin)" in await page.inner_text("header")
    cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
    session = cookies[SESSION_COOKIE]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert PENDING_COOKIE not in cookies, "the pending sign-in is used once"
    assert len(provider.token_requests) == 1
    await page.goto(url(service, "/ui/silences"))
    assert await page.inner_text("h1") == "Silences"


async def test_a_provider_that_is_down_gives_a_clear_page_and_the_token_still_works(
    page, service, provider
):
    provider.discovery_status = 503
    await page.goto(url(service, "/ui/login"))
    await page.click("text=Sign in with single sign-on")
    text = await page.inner_text("main")
    assert "Single sign-on is not available" in text
    assert "HTTP 503 for its discovery document" in text
    await page.goto(url(service, "/ui/login"))
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/ui/")
    assert await page.locator("text=Sign out").count() == 1
