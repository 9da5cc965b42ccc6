"""Takes the picture of an escalated alert for docs/guides/alert-to-action.md
(docs/alert-escalated-delivery.png).

Starts a router on a temporary SQLite file with a local receiver standing in for the
ops channel and the on-call pager, posts a failed call that nobody acknowledges, waits
for its escalation, and photographs the original delivery's console page in headless
Chromium through Playwright at 1280x800. Run from the repository root (with the test
extras installed and Debian's chromium):

    python docs/alert_to_action_screenshots.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.conftest import fresh_event  # noqa: E402
from tests.receivers import Receiver  # noqa: E402
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for  # noqa: E402

OUT = Path(__file__).resolve().parent / "alert-escalated-delivery.png"


def rules(receiver: Receiver) -> str:
    return f"""
version: 1
sinks:
  ops-alerts: {{type: http, url: "{receiver.url("/ops")}"}}
  oncall-pager: {{type: http, url: "{receiver.url("/oncall")}"}}
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [ops-alerts]
    escalate: {{after: 1s, to: [oncall-pager]}}
"""


async def take(chromium: str) -> None:
    receiver = await Receiver().start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "rules.yaml"
            path.write_text(rules(receiver))
            async with running_service(path, Path(directory) / "router.db") as client:
                store = parts(client)[0]
                event = fresh_event(status="FAILED")
                assert (await post_event(client, event)).status == 200

                async def original() -> str | None:
                    views = await store.deliveries_of_event(event["id"])
                    escalated = [view for view in views if view.escalated_from]
                    return escalated[0].escalated_from if escalated else None

                await wait_for(original)
                delivery = await original()
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=chromium, args=CHROMIUM_ARGS
                    )
                    context = await browser.new_context(
                        viewport={"width": 1280, "height": 800},
                        timezone_id="America/New_York",
                        locale="en-US",
                    )
                    page = await context.new_page()
                    await page.goto(str(client.make_url("/ui/login")))
                    await page.fill("input[name=token]", ADMIN_TOKEN)
                    await page.click("button[type=submit]")
                    await page.goto(str(client.make_url(f"/ui/deliveries/{delivery}")))
                    await page.screenshot(path=str(OUT), full_page=False)
                    await browser.close()
    finally:
        await receiver.close()
    print(f"wrote {OUT.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    asyncio.run(take(parser.parse_args().chromium))


if __name__ == "__main__":
    main()
