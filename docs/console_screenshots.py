"""Takes the README's pictures of the web console (docs/console-*.png).

Starts a router on a temporary SQLite file with a local fake CRM that fails, posts the
sample calls, and photographs each page in headless Chromium through Playwright: at
1280x800 like a laptop, and at 390x844 like a phone. Run from the repository root
(with the test extras installed and Debian's chromium):

    python docs/console_screenshots.py [--chromium /usr/bin/chromium] [--only NAME ...]

`--only console-audit.png console-phone-audit.png` rewrites those pictures alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, async_playwright  # noqa: E402

from router.operators import AuditTrail, BulkReplay  # noqa: E402
from router.operators.silences import iso, parse_silence_request  # noqa: E402
from router.store import Acknowledgement  # noqa: E402
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.conftest import fresh_event  # noqa: E402
from tests.receivers import Receiver  # noqa: E402

# The samples' caller (+14155550123), written as people write it.
SEARCHED_NUMBER = "(415) 555-0123"
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for  # noqa: E402

OUT = Path(__file__).resolve().parent
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ZONE = {"timezone_id": "America/New_York", "locale": "en-US"}  # times show in the viewer's
ONLY: set[str] = set()  # the pictures to write (none named: every one)


def rules(receiver: Receiver, log_path: Path) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 2, initial_delay: 200ms, max_delay: 1s}}
sinks:
  ops-slack:
    type: slack
    webhook_url: "{receiver.url("/services/T000/B000/slack-webhook-secret")}"
  crm:
    type: http
    url: "{receiver.url("/crm")}"
    headers: {{Authorization: "Bearer ${{CRM_TOKEN:-crm-secret-token}}"}}
  support-email:
    type: email
    host: ${{SMTP_HOST:-}}
    from: "Call Router <router@example.com>"
    to: [support@example.com]
  console:
    type: log
    path: "{log_path}"
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [ops-slack, support-email, crm]
  - name: voicemail
    when: {{hangupCause: VOICEMAIL_DETECTED}}
    to: [crm]
  - name: everything
    to: [console]
"""


async def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    if ONLY and name not in ONLY:
        return
    await page.screenshot(path=str(OUT / name), full_page=full_page)
    print(f"wrote {OUT / name}")


async def audited_changes(store: Any, call_id: str) -> None:
    """Changes others made, as they would be recorded: from the CLI and a Slack button."""
    trail = AuditTrail(store)
    await trail.replay_many("cli:bob", BulkReplay("dead", "crm"))
    click = Acknowledgement(
        "call", call_id, "failed-calls", "U0ALICE", "alice", "#ops-alerts (C0ALERTS)", 0.0
    )
    details = {
        "outcome": "acknowledged",
        "user_name": "alice",
        "channel": click.channel,
        "rule": click.rule,
    }
    await trail.acknowledge("slack:U0ALICE", click, f"call:{call_id}/rule:failed-calls", details)


async def sign_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/ui/login")
    await page.click("summary:has-text('Sign in with the admin token')")
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("#token-sign-in button[type=submit]")
    await page.wait_for_url(f"{base}/ui/")


async def open_first_attempt(page: Page) -> None:
    """Unfold the first attempt's request and response on a delivery's page."""
    for part in ("request", "response"):
        await page.locator(f"details.exchange-{part} summary").first.click()


async def silences(page: Page, base: str, store: Any, call_id: str) -> None:
    """A silence made from a call's page, one pending and one expired, then the list."""
    now = time.time()
    pending = {"when": {"hangupCause": "VOICEMAIL_DETECTED"}, "for": "8h", "sinks": ["crm"]}
    pending.update(starts_at=iso(now + 3 * 3600), comment="CRM import window tonight")
    ended = {"when": {"agentId": "agent-retired"}, "for": "1h", "comment": "old agent"}
    yesterday = now - 86400
    await store.add_silence(parse_silence_request(pending, now=now, known_sinks=["crm"]))
    old = parse_silence_request(ended, now=yesterday, known_sinks=["crm"])
    await store.add_silence(old)
    await store.expire_silence(old.id, yesterday + 1800)
    await page.goto(f"{base}/ui/calls/{call_id}")
    await page.click("text=Silence calls like this one")
    await page.fill("input[name=for]", "2h")
    await page.check("input[name=sinks][value=ops-slack]")
    await page.fill("input[name=comment]", "carrier maintenance, ticket 4411")
    await page.click("button:has-text('Create silence')")
    await page.click("summary:has-text('Expired in the last 30 days')")
    await shoot(page, "console-silences.png", full_page=True)


async def confirm_replay(browser: Any, base: str, store: Any) -> None:
    """The page that asks before a delivered delivery is sent again, as a browser
    without JavaScript gets it (with it, a dialog asks)."""
    (delivered, *_) = await store.list_deliveries("delivered", "ops-slack")
    context = await browser.new_context(viewport=LAPTOP, java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, base)
    await page.goto(f"{base}/ui/deliveries/{delivered.id}")
    await page.click("form.actions button:has-text('Replay')")
    await page.wait_for_url(f"{base}/ui/deliveries/{delivered.id}/replay")
    await shoot(page, "console-confirm-replay.png")
    await context.close()


VIEWER = ("vera", "vera-password-1")


def write_users(path: Path) -> None:
    """A users file with a viewer, for the sign-in form and a viewer's pages."""
    from router.operators.users import User, Users, hash_secret, write_users_file

    write_users_file(path, Users.of([User(VIEWER[0], "viewer", hash_secret(VIEWER[1]))]))


async def viewer_pages(browser: Any, base: str, delivery_id: str) -> None:
    """The sign-in form with names and the admin token, and a viewer's delivery page
    (its Replay disabled), at laptop and phone sizes."""
    for size, prefix in ((LAPTOP, "console-"), (PHONE, "console-phone-")):
        page = await browser.new_page(viewport=size, **ZONE)
        await page.goto(f"{base}/ui/login")
        await shoot(page, f"{prefix}login.png")
        await page.fill("#username", VIEWER[0])
        await page.fill("#password", VIEWER[1])
        await page.click("#password-sign-in button[type=submit]")
        await page.wait_for_url(f"{base}/ui/")
        await page.goto(f"{base}/ui/deliveries/{delivery_id}")
        await shoot(page, f"{prefix}viewer-delivery.png")
        await page.close()


async def forget(page: Page, base: str, name: str) -> None:
    """The "Forget a caller" page at its confirmation: the counts of the dry run."""
    await page.goto(f"{base}/ui/forget")
    await page.fill("input[name=phone]", "(415) 555-0123")
    await page.click("button:has-text('Count what would be erased')")
    await page.wait_for_selector("#counts")
    await shoot(page, name)


async def take(chromium: str) -> None:
    crm_down = Receiver(answer=lambda request, n: 503 if request.path == "/crm" else 200)
    receiver = await crm_down.start()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        rules_path = folder / "rules.yaml"
        rules_path.write_text(rules(receiver, folder / "calls.log"))
        write_users(folder / "users.yaml")
        async with running_service(
            rules_path, folder / "router.db", users_file=folder / "users.yaml"
        ) as client:
            store, *_ = parts(client)
            for name in ("failed-outbound", "completed-inbound", "voicemail-outbound"):
                await post_event(client, fresh_event(name))
            for _ in range(4):
                await post_event(client, fresh_event("failed-outbound"))
            pictured = fresh_event(
                "failed-outbound",
                summary="The caller asked to move an appointment; the line dropped twice.",
                transcript=[
                    {"role": "agent", "content": "Hi, this is Ava from Acme Dental."},
                    {"role": "user", "content": "Can I move my cleaning to Friday?"},
                    {"role": "agent", "content": "Let me check… sorry, are you still there?"},
                ],
                durationSeconds=41,
                hangupCause="SILENCE_TIMEOUT",
            )
            await post_event(client, pictured)

            async def some_dead() -> bool:
                dead = await store.list_deliveries("dead", "crm", limit=100)
                return len(dead) >= 3 and pictured["id"] in {view.event_id for view in dead}

            await wait_for(some_dead, limit=30)
            base = str(client.make_url("")).rstrip("/")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=CHROMIUM_ARGS
                )
                (dead, *_) = await store.list_deliveries("dead", "crm")
                await viewer_pages(browser, base, dead.id)
                laptop = await browser.new_page(viewport=LAPTOP, **ZONE)
                await sign_in(laptop, base)
                await shoot(laptop, "console-overview.png")
                await laptop.goto(f"{base}/ui/deliveries")
                await shoot(laptop, "console-deliveries.png")
                (dead, *_) = await store.list_deliveries("dead", "crm")
                await laptop.goto(f"{base}/ui/deliveries/{dead.id}")
                await shoot(laptop, "console-delivery.png")
                await open_first_attempt(laptop)
                await shoot(laptop, "console-delivery-attempt.png", full_page=True)
                (waiting, *_) = await store.list_deliveries("pending", "support-email")
                await laptop.goto(f"{base}/ui/deliveries/{waiting.id}")
                await shoot(laptop, "console-delivery-waiting.png")
                await confirm_replay(browser, base, store)
                await laptop.goto(f"{base}/ui/calls")
                await shoot(laptop, "console-calls.png")
                await laptop.fill("input[name=q]", SEARCHED_NUMBER)
                await laptop.press("input[name=q]", "Enter")
                await laptop.wait_for_url("**q=**")
                await shoot(laptop, "console-calls-search.png")
                await laptop.goto(f"{base}/ui/calls/{pictured['id']}")
                await shoot(laptop, "console-call.png", full_page=True)
                await laptop.goto(f"{base}/ui/rules")
                sample = json.loads((ROOT / "samples" / "failed-outbound.json").read_text())
                await laptop.fill("textarea[name=event]", json.dumps(sample, indent=2))
                await laptop.click("button:has-text('Route this call')")
                playground = laptop.locator("main section").first
                if not ONLY or "console-rules.png" in ONLY:
                    await playground.screenshot(path=str(OUT / "console-rules.png"))
                    print(f"wrote {OUT / 'console-rules.png'}")
                await silences(laptop, base, store, pictured["id"])
                await audited_changes(store, pictured["id"])
                await laptop.goto(f"{base}/ui/audit")
                await shoot(laptop, "console-audit.png", full_page=True)
                await forget(laptop, base, "console-forget.png")
                phone = await browser.new_page(viewport=PHONE, **ZONE)
                await sign_in(phone, base)
                await shoot(phone, "console-phone-overview.png")
                await phone.goto(f"{base}/ui/deliveries")
                await shoot(phone, "console-phone-deliveries.png")
                await phone.goto(f"{base}/ui/silences")
                await shoot(phone, "console-phone-silences.png")
                await phone.goto(f"{base}/ui/calls")
                await shoot(phone, "console-phone-calls.png")
                await phone.fill("input[name=q]", SEARCHED_NUMBER)
                await phone.press("input[name=q]", "Enter")
                await phone.wait_for_url("**q=**")
                await shoot(phone, "console-phone-calls-search.png")
                await phone.goto(f"{base}/ui/calls/{pictured['id']}")
                await shoot(phone, "console-phone-call.png")
                await phone.goto(f"{base}/ui/deliveries/{dead.id}")
                await open_first_attempt(phone)
                await phone.locator("details.exchange-request").first.scroll_into_view_if_needed()
                await shoot(phone, "console-phone-delivery-attempt.png")
                await phone.goto(f"{base}/ui/rules")
                await phone.fill("textarea[name=event]", json.dumps(sample, indent=2))
                await phone.click("button:has-text('Route this call')")
                await phone.locator("[data-sink] .slack-message").first.scroll_into_view_if_needed()
                await shoot(phone, "console-phone-playground.png")
                await phone.goto(f"{base}/ui/audit")
                await shoot(phone, "console-phone-audit.png")
                await forget(phone, base, "console-phone-forget.png")
                await browser.close()
    await receiver.close()


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these pictures")
    args = parser.parse_args(argv)
    ONLY.update(args.only)
    asyncio.run(take(args.chromium))


if __name__ == "__main__":
    main()
