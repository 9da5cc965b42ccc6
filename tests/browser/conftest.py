"""Fixtures for tests that drive the web console in a real browser: Debian's Chromium,
controlled by Playwright for Python (its own browser download cannot work here).

They skip, naming what is missing, when Playwright or Chromium is not installed,
unless ROUTER_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
The browser runs headless with every background network feature off: the machine's
network is closed, and Chromium would otherwise stall on lookups.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = os.environ.get("ROUTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("ROUTER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ROUTER_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if importlib.util.find_spec("playwright") is None:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watch:
    """What a page showed that a test must look at: the console's own confirmations
    (`confirm` dialogs, answered with `accept_confirms`), any other dialog (an `alert`
    would mean event text ran as script), and every Content-Security-Policy violation
    Chromium reported in the page's console."""

    accept_confirms: bool = True
    confirms: list[str] = field(default_factory=list)
    other_dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        async def answer(dialog: Any) -> None:
            if dialog.type == "confirm":
                self.confirms.append(dialog.message)
                await (dialog.accept() if self.accept_confirms else dialog.dismiss())
            else:
                self.other_dialogs.append(f"{dialog.type}: {dialog.message}")
                await dialog.dismiss()

        def console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                self.csp_violations.append(message.text)

        page.on("dialog", answer)
        page.on("console", console)

    def check(self) -> None:
        assert not self.other_dialogs, f"a dialog opened: script ran ({self.other_dialogs})"
        assert not self.csp_violations, f"the policy was broken: {self.csp_violations}"


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
async def page(browser: Any, watch: Watch) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) and page; fails the test on any dialog but
    the console's own confirmations (see `watch`) and on any CSP violation."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    watch.attach(page)
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        await context.close()
    watch.check()
