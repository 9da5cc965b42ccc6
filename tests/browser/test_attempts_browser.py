"""A delivery's attempts in Chromium: each one's request and response fold open (plain
`<details>`, no script), showing what the CRM answered with the caller's number
masked, and the request's Authorization header masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_console_browser import sign_in, url
from tests.conftest import fresh_event
from tests.integration.test_attempt_exchanges import (
    API_KEY,
    CALLER,
    CRM_TOKEN,
    RULES,
    SIGNING_SECRET,
    crm,  # noqa: F401 - the fixture
)
from tests.service import parts, post_event, running_service, wait_for

pytestmark = pytest.mark.slow


async def test_a_delivery_shows_each_attempts_response_and_masked_request(
    page: Any,
    tmp_path: Path,
    write_rules: Any,
    crm: Any,  # noqa: F811
) -> None:
    _, crm_url = crm
    rules = write_rules(RULES.format(url=crm_url, token=CRM_TOKEN, signing=SIGNING_SECRET))
    async with running_service(rules, tmp_path / "router.db") as service:
        await post_event(service, fresh_event(fromNumber=CALLER))
        store, *_ = parts(service)
        await wait_for(lambda: store.list_deliveries("delivered"))
        [delivery] = await store.list_deliveries("delivered")

        await sign_in(page, service)
        await page.wait_for_url("**/ui/")
        await page.goto(url(service, f"/ui/deliveries/{delivery.id}"))
        first_response = page.locator("details.exchange-response").first
        assert not await first_response.locator("pre").is_visible(), "folded until opened"
        await first_response.locator("summary").click()
        answer = await first_response.locator("pre").inner_text()
        assert "upstream down; got *** for +1415•••0142" in answer
        assert "Set-Cookie: ***" in answer
        assert "HTTP 500 Internal Server Error" in await first_response.inner_text()

        first_request = page.locator("details.exchange-request").first
        await first_request.locator("summary").click()
        sent = await first_request.locator("pre").inner_text()
        assert "Authorization: Bearer ***" in sent
        assert "api_key=***" in sent and "+1415•••0142" in sent

        second_response = page.locator("details.exchange-response").nth(1)
        await second_response.locator("summary").click()
        assert '"id": "crm-42"' in await second_response.locator("pre").inner_text()

        text = await page.inner_text("main")
        for secret in (CRM_TOKEN, API_KEY, SIGNING_SECRET, CALLER):
            assert secret not in text
        await page.screenshot(path=str(tmp_path / "delivery.png"), full_page=True)
        assert (tmp_path / "delivery.png").stat().st_size > 0
