"""Named users in Chromium: a viewer signs in with name and password and finds no usable
Replay (and the server refuses one forced through, saying why); an operator replays; the
audit page lists both."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Dialog

from router.operators.users import User, Users, hash_secret, write_users_file
from tests.browser.test_console_browser import rules, url
from tests.conftest import fresh_event
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow

PASSWORDS = {"vera": "vera-password-1", "otto": "otto-password-1"}


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    users = tmp_path / "users.yaml"
    write_users_file(
        users,
        Users.of(
            [
                User("vera", "viewer", hash_secret(PASSWORDS["vera"])),
                User("otto", "operator", hash_secret(PASSWORDS["otto"])),
            ]
        ),
    )
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db", users_file=users) as client:
        yield client


async def sign_in(page: Any, service: Any, name: str, next_path: str) -> None:
    await page.goto(url(service, next_path))
    assert "/ui/login" in page.url
    await page.fill("#username", name)
    await page.fill("#password", PASSWORDS[name])
    await page.click("#password-sign-in button[type=submit]")
    await page.wait_for_url(f"**{next_path}")


async def accept(dialog: Dialog) -> None:
    assert dialog.type == "confirm", dialog.message
    await dialog.accept()


async def test_a_viewer_cannot_replay_and_an_operator_can(browser, service, receiver):
    await post_event(service, fresh_event(status="FAILED"))
    await wait_for(lambda: len(receiver.received) == 1)
    store, *_ = parts(service)
    (view,) = await store.list_deliveries(sink="crm")
    delivery_page = f"/ui/deliveries/{view.id}"

    viewer = await (await browser.new_context()).new_page()
    viewer.on("dialog", accept)  # the delivery was delivered: the console asks first
    await sign_in(viewer, service, "vera", delivery_page)
    assert "signed in as vera (viewer)" in await viewer.inner_text("header")
    replay = viewer.get_by_role("button", name="Replay")
    assert await replay.is_disabled()
    assert "Replaying needs the operator role" in await viewer.inner_text("main")
    await replay.evaluate("button => { button.disabled = false; }")  # forced through
    await replay.click()
    assert "role viewer may not replay; needs operator" in await viewer.inner_text("main")
    assert (await store.get_delivery(view.id)).status == "delivered"
    assert len(receiver.received) == 1

    operator = await (await browser.new_context()).new_page()
    operator.on("dialog", accept)
    await sign_in(operator, service, "otto", delivery_page)
    assert "signed in as otto (operator)" in await operator.inner_text("header")
    replay = operator.get_by_role("button", name="Replay")
    assert await replay.is_enabled()
    await replay.click()
    await operator.wait_for_url("**?replay=requeued")
    await wait_for(lambda: len(receiver.received) == 2)

    # The audit lists both people: the viewer's sign-in, the operator's and their replay
    # (a refused request changes nothing, so it is not a change to record).
    await viewer.goto(url(service, "/ui/audit"))
    rows = [
        " ".join(text.split())
        for text in await viewer.locator("main table tbody tr").all_inner_texts()
    ]
    assert any("otto replay" in row and f"delivery:{view.id}" in row for row in rows), rows
    assert any("otto signin otto" in row for row in rows), rows
    assert any("vera signin vera" in row for row in rows), rows
    assert not any("vera replay" in row for row in rows), rows
    await viewer.select_option("select[name=actor]", "vera")
    await viewer.click("button:has-text('Show')")
    shown = await viewer.locator("main table tbody tr").all_inner_texts()
    assert shown and all("vera" in row and "otto" not in row for row in shown), shown
