"""The console that keeps up, over real HTTP (DESIGN.md section 10): its own script served
from /ui/static under the unchanged Content-Security-Policy and no inline script in any
page; times as `<time datetime>` in UTC for the script to show in the viewer's zone;
the regions that refresh themselves; the server asking before a delivered delivery is
sent again; and a pending delivery of an unconfigured sink saying why it waits
(tests/browser/test_console_live_browser.py drives the same in Chromium)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.conftest import fresh_event
from tests.integration.conftest import fresh_postgres_schema
from tests.integration.test_console import csrf_of, sign_in
from tests.service import parts, post_event, running_service, wait_for

UTC_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
ENV_WAIT = (
    "ops-slack is not configured (webhook_url empty): its deliveries wait until"
    " CONSOLE_LIVE_UNSET_WEBHOOK is set in the environment and the router restarted"
    " (a reload does not read the environment)"
)
FILE_WAIT = (
    "pager is not configured (routing_key empty): its deliveries wait until rules.yaml"
    " gives routing_key a value and is reloaded"
)


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
    webhook_url: ${{CONSOLE_LIVE_UNSET_WEBHOOK:-}}
  pager:
    type: pagerduty
    routing_key: ""
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [crm, ops-slack, pager]
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def service(request, tmp_path, write_rules, receiver) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:
        store_url = None
        if request.param == "postgresql":
            store_url = await stack.enter_async_context(fresh_postgres_schema("console_live"))
        path = write_rules(rules(receiver.url()))
        client = await stack.enter_async_context(
            running_service(path, tmp_path / "live.db", store_url=store_url)
        )
        yield client


class Page(HTMLParser):
    """What a page holds that the policy or the script cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.style_attributes = 0
        self.times: list[str | None] = []
        self.regions: list[str | None] = []
        self.inline_script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        if tag == "time":
            self.times.append(named.get("datetime"))
        if "data-refresh" in named:
            self.regions.append(named["data-refresh"])
        if "style" in named or tag == "style":
            self.style_attributes += 1
        self.inline_handlers += [name for name in named if name.startswith("on")]
        self.inline_handlers += [
            f"{name}={value}"
            for name, value in named.items()
            if value and value.strip().lower().startswith("javascript:")
        ]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script_text += data


def read_page(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


async def a_delivered_delivery(service, receiver) -> tuple[dict, Any]:
    event = fresh_event(status="FAILED")
    assert (await post_event(service, event)).status == 200
    store, *_ = parts(service)

    async def done() -> list:
        return await store.list_deliveries("delivered", "crm")

    await wait_for(done)
    (view,) = await done()
    assert receiver.delivered_ids() == [event["id"]]
    return event, view


async def test_the_script_is_served_as_javascript_under_the_same_policy(service):
    response = await service.get("/ui/static/console.js")
    assert response.status == 200
    assert response.content_type in ("text/javascript", "application/javascript")
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'self';"), "the policy is unchanged"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    script = await response.text()
    for forbidden in ("eval(", "new Function", "innerHTML", "document.write", "http://"):
        assert forbidden not in script, forbidden
    assert "Intl.DateTimeFormat" in script and "DOMParser" in script


async def test_no_page_has_inline_script_and_each_loads_the_console_script(service, receiver):
    event, view = await a_delivered_delivery(service, receiver)
    login = await (await service.get("/ui/login")).text()
    assert (await sign_in(service)).status == 303
    csrf = csrf_of(await (await service.get("/ui/")).text())
    store, *_ = parts(service)
    created = await service.post(
        "/ui/silences", data={"csrf": csrf, "when": '{"status": "BUSY"}', "for": "1h"}
    )
    assert created.status == 200
    (silence,) = await store.list_silences()
    expire_asks = await service.post(f"/ui/silences/{silence.id}/expire", data={"csrf": csrf})
    replay_asks = await service.post(f"/ui/deliveries/{view.id}/replay", data={"csrf": csrf})
    pages = {"/ui/login": login}
    for path in (
        "/ui/",
        "/ui/calls",
        f"/ui/calls/{event['id']}",
        "/ui/deliveries",
        f"/ui/deliveries/{view.id}",
        "/ui/rules",
        "/ui/silences",
        "/ui/deliveries/replay-dead?sink=crm",
        "/ui/deliveries/no-such-delivery",
    ):
        pages[path] = await (await service.get(path)).text()
    pages["expire asks"] = await expire_asks.text()
    pages["replay asks"] = await replay_asks.text()
    for name, html in pages.items():
        page = read_page(html)
        assert page.scripts == [{"src": "/ui/static/console.js", "defer": None}], name
        assert page.inline_script_text.strip() == "", name
        assert page.inline_handlers == [], name
        assert page.style_attributes == 0, f"{name}: the policy blocks inline styles"
    refreshing = {path: read_page(pages[path]).regions for path in pages}
    assert refreshing["/ui/"] == ["overview"]
    assert refreshing["/ui/calls"] == ["calls"]
    assert refreshing["/ui/deliveries"] == ["deliveries"]
    assert refreshing["/ui/silences"] == ["silences"]
    for path in (f"/ui/calls/{event['id']}", f"/ui/deliveries/{view.id}", "/ui/rules"):
        assert refreshing[path] == [], f"{path} does not refresh by itself"


async def test_times_carry_their_utc_moment_in_a_datetime_attribute(service, receiver):
    event, view = await a_delivered_delivery(service, receiver)
    event_view = await parts(service)[0].get_event(event["id"])
    received = datetime.fromtimestamp(event_view.received_at, UTC)
    stamp = received.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await sign_in(service)).status == 303
    calls = await (await service.get("/ui/calls")).text()
    shown = received.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f'<time datetime="{stamp}">{shown}</time>' in calls, "UTC text until the script runs"
    call = await (await service.get(f"/ui/calls/{event['id']}")).text()
    assert f'<time datetime="{stamp}">' in call
    started = '<dt>Started</dt><dd><time datetime="2026-11-20T15:02:11Z">2026-11-20 15:02:11 UTC'
    assert started in call, "the call's own ISO times too (initiatedAt when startedAt is null)"
    for path in ("/ui/", "/ui/deliveries", f"/ui/deliveries/{view.id}", f"/ui/calls/{event['id']}"):
        page = read_page(await (await service.get(path)).text())
        assert page.times, path
        for moment in page.times:
            assert moment and re.fullmatch(UTC_STAMP, moment), (path, moment)
    other = fresh_event(startedAt="2026-11-20T18:30:00+01:00")
    await post_event(service, other)
    call = await (await service.get(f"/ui/calls/{other['id']}")).text()
    assert '<time datetime="2026-11-20T17:30:00Z">2026-11-20 17:30:00 UTC</time>' in call


async def test_a_delivered_delivery_is_replayed_only_once_confirmed(service, receiver):
    event, view = await a_delivered_delivery(service, receiver)
    store, *_ = parts(service)
    assert (await sign_in(service)).status == 303
    page = await (await service.get(f"/ui/deliveries/{view.id}")).text()
    assert 'data-confirm="This delivery was delivered to crm already.' in page
    csrf = csrf_of(page)
    for path in (f"/ui/deliveries/{view.id}/replay", f"/ui/calls/{event['id']}/replay/{view.id}"):
        response = await service.post(path, data={"csrf": csrf}, allow_redirects=False)
        assert response.status == 200, path
        asking = await response.text()
        assert "Replay a delivered delivery?" in asking
        assert "crm gets it a second time" in asking
        assert f'<form method="post" action="{path}" class="confirm">' in asking
        assert 'name="confirm" value="yes"' in asking
        for wrong in ("no", "1", ""):
            response = await service.post(
                path, data={"csrf": csrf, "confirm": wrong}, allow_redirects=False
            )
            assert response.status == 200, (path, wrong)
    assert (await store.get_delivery(view.id)).status == "delivered", "asking requeued nothing"
    assert len(receiver.received) == 1

    response = await service.post(
        f"/ui/deliveries/{view.id}/replay",
        data={"csrf": csrf, "confirm": "yes"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/ui/deliveries/{view.id}?replay=requeued"
    await wait_for(lambda: receiver.delivered_ids() == [event["id"], event["id"]])

    async def delivered_again() -> bool:
        return (await store.get_delivery(view.id)).status == "delivered"

    await wait_for(delivered_again)  # delivered twice now: the call's page asks too
    response = await service.post(
        f"/ui/calls/{event['id']}/replay/{view.id}",
        data={"csrf": csrf, "confirm": "yes"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert "outcome=requeued" in response.headers["Location"]
    await wait_for(lambda: len(receiver.delivered_ids()) == 3)


async def test_a_dead_delivery_needs_no_confirmation(service, receiver):
    receiver.answer = lambda request, n: 400 if n == 1 else 200
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)

    async def dead() -> bool:
        return bool(await store.list_deliveries("dead", "crm"))

    await wait_for(dead)
    (view,) = await store.list_deliveries("dead", "crm")
    assert (await sign_in(service)).status == 303
    page = await (await service.get(f"/ui/deliveries/{view.id}")).text()
    assert "data-confirm" not in page
    response = await service.post(
        f"/ui/deliveries/{view.id}/replay", data={"csrf": csrf_of(page)}, allow_redirects=False
    )
    assert response.status == 303
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    response = await service.post(
        "/ui/deliveries/no-such-delivery/replay",
        data={"csrf": csrf_of(page), "confirm": "yes"},
        allow_redirects=False,
    )
    assert response.status == 404


async def test_an_unconfigured_sinks_delivery_says_why_it_waits(service, receiver):
    event, _ = await a_delivered_delivery(service, receiver)
    store, *_ = parts(service)
    waiting = {
        view.sink: view
        for view in await store.deliveries_of_event(event["id"])
        if view.status == "pending"
    }
    assert set(waiting) == {"ops-slack", "pager"}
    assert (await sign_in(service)).status == 303
    call = await (await service.get(f"/ui/calls/{event['id']}")).text()
    assert f"No attempt yet: {ENV_WAIT}." in call
    assert f"No attempt yet: {FILE_WAIT}." in call
    assert "; due" not in call, "no due time in the past"
    for sink, wait in (("ops-slack", ENV_WAIT), ("pager", FILE_WAIT)):
        page = await (await service.get(f"/ui/deliveries/{waiting[sink].id}")).text()
        assert f'<span class="badge warn">waiting</span> {wait}.' in page
        assert "<dt>Next attempt</dt><dd><time" not in page
    listing = await (await service.get("/ui/deliveries")).text()
    assert f'<p class="notice waiting">{ENV_WAIT}.</p>' in listing
    assert f'<p class="notice waiting">{FILE_WAIT}.</p>' in listing
    assert "not configured (webhook_url empty)" in listing
    assert "not configured (routing_key empty)" in listing
    only_crm = await (await service.get("/ui/deliveries?sink=crm")).text()
    assert "notice waiting" not in only_crm, "said only above deliveries that wait"
