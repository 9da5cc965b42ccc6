"""Takes the pictures of single sign-on in the docs (docs/console-*sso-*.png): the sign-in
page with its single sign-on button, and the page of an account the role mapping gives
no role, at 1280x800 like a laptop and at 390x844 like a phone.

Starts the test OpenID provider (tests/oidc_provider.py) and a router on a temporary
SQLite file, and drives headless Chromium through Playwright. Run from the repository
root (with the test extras installed and Debian's chromium):

    python docs/sso_screenshots.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import async_playwright  # noqa: E402

from router.operators.users import User, Users, hash_secret, write_users_file  # noqa: E402
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.oidc_provider import OidcProvider, free_port  # noqa: E402
from tests.service import running_service  # noqa: E402

OUT = Path(__file__).resolve().parent
SIZES = {"": {"width": 1280, "height": 800}, "phone-": {"width": 390, "height": 844}}


async def take(chromium: str) -> None:
    provider = await OidcProvider(host_name="localhost").start()
    provider.user["groups"] = ["sales"]
    port = free_port()
    settings = provider.settings(f"http://127.0.0.1:{port}", "groups:ops-admins=admin")
    with tempfile.TemporaryDirectory() as directory:
        rules = Path(directory) / "rules.yaml"
        rules.write_text("version: 1\nsinks: {}\nrules: []\n")
        database = Path(directory) / "router.db"
        users = Path(directory) / "users.yaml"  # the sign-in page as a team has it
        write_users_file(users, Users.of([User("bob", "viewer", hash_secret("a-password"))]))
        async with running_service(
            rules, database, oidc=settings, port=port, users_file=users
        ) as client:
            base = str(client.make_url("")).rstrip("/")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=CHROMIUM_ARGS
                )
                for prefix, viewport in SIZES.items():
                    page: Any = await browser.new_page(viewport=viewport)
                    await page.goto(f"{base}/ui/login")
                    await shoot(page, f"console-{prefix}sso-login.png")
                    await page.click("text=Sign in with single sign-on")
                    await page.wait_for_selector("text=gives this account no role here")
                    await shoot(page, f"console-{prefix}sso-refused.png")
                await browser.close()
    await provider.close()


async def shoot(page: Any, name: str) -> None:
    await page.screenshot(path=str(OUT / name))
    print(f"wrote {OUT / name}")


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    asyncio.run(take(args.chromium))


if __name__ == "__main__":
    main()
