"""The console's calls over real HTTP: the calls page (filters, keyset pages, masked
numbers), one call's page (deliveries with every attempt, replay, event text as text),
the overview's new counts, the deliveries page's rule filter in SQL and the playground's
stored calls and samples (the browser tests in tests/browser/ drive the same pages)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from router.store import IngestRecord, NewDelivery
from tests.conftest import fresh_event
from tests.integration.test_console import csrf_of, rules, sign_in, signed_in_page
from tests.service import parts, post_event, running_service, wait_for

XSS_SUMMARY = "<script>alert(1)</script>"
XSS_TRANSCRIPT = '"><img src=x onerror=alert(2)>'


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db") as client:
        yield client


def call_ids(html: str) -> list[str]:
    return re.findall(r'href="/ui/calls/([^"?/]+)"', html)


async def test_a_posted_call_is_listed_with_masked_numbers_and_found_by_each_filter(service):
    event = fresh_event(
        "failed-outbound",
        agentId="agent-filter-1",
        organizationId="org-filter",
        hangupCause="MAX_DURATION",
        fromNumber="+14155550123",
    )
    other = fresh_event("completed-inbound")
    for body in (event, other):
        assert (await post_event(service, body)).status == 200
    page = await signed_in_page(service, "/ui/calls")
    assert call_ids(page) == [other["id"], event["id"]]
    assert "+14155550123" not in page and "+1415•••0123" in page

    now = time.time()
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 3600))
    hour_on = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + 3600))
    for query, expected in (
        ("status=failed", [event["id"]]),
        ("direction=INBOUND", [other["id"]]),
        ("agent=agent-filter-1", [event["id"]]),
        ("organization=org-filter", [event["id"]]),
        ("hangup=MAX_DURATION", [event["id"]]),
        (f"call={other['id']}", [other["id"]]),
        (f"from={hour_ago}&to={hour_on}", [other["id"], event["id"]]),
        (f"to={hour_ago}", []),
        ("status=FAILED&direction=INBOUND", []),
    ):
        response = await service.get(f"/ui/calls?{query}")
        assert response.status == 200, query
        assert call_ids(await response.text()) == expected, query


async def test_bad_filters_get_a_clear_400(service):
    await sign_in(service)
    for query, message in (
        ("from=yesterday", "from must be a date and time"),
        ("before_at=soon&before_id=x", "before_at must be a number"),
        ("before_at=1.5", "before_at and before_id go together"),
        ("before_at=nan&before_id=x", "before_at and before_id go together"),
    ):
        response = await service.get(f"/ui/calls?{query}")
        assert response.status == 400, query
        assert message in await response.text(), query
    assert (await service.get("/ui/calls/no-such-call")).status == 404


async def test_older_pages_follow_the_keyset(service):
    store, *_ = parts(service)
    base = time.time() - 1000
    await asyncio.gather(
        *(
            store.ingest(
                IngestRecord(f"call-{n:03d}", b'{"id": "x"}', base + n // 2, [], "COMPLETED")
            )
            for n in range(120)
        )
    )
    page = await signed_in_page(service, "/ui/calls?status=COMPLETED")
    seen = call_ids(page)
    pages = 1
    while (older := re.search(r'href="(/ui/calls\?[^"]*before_id[^"]*)"', page)) is not None:
        page = await (await service.get(older.group(1).replace("&amp;", "&"))).text()
        seen += call_ids(page)
        pages += 1
    assert pages == 3
    assert seen == [f"call-{n:03d}" for n in reversed(range(120))]


async def test_a_call_page_shows_its_deliveries_with_every_attempt_and_replays_one(
    service, receiver
):
    receiver.answer = lambda request, n: 503 if n == 1 else 200  # rules: one attempt each
    transcript = [
        {"role": "agent", "content": XSS_TRANSCRIPT},
        {"speaker": "user", "text": "call me at +14155550123"},
    ]
    event = fresh_event(status="FAILED", summary=XSS_SUMMARY, transcript=transcript)
    await post_event(service, event)
    store, *_ = parts(service)

    async def dead() -> bool:
        return bool(await store.list_deliveries("dead", "crm"))

    await wait_for(dead, limit=20)
    page = await signed_in_page(service, f"/ui/calls/{event['id']}")
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "+14155550123" not in page and "+1415•••0123" in page
    assert "failed-calls" in page
    assert '<td data-label="Status code">503</td>' in page and "HTTP 503" in page
    assert "ops-slack" in page  # the waiting delivery, with no attempt yet
    (dead_view,) = await store.list_deliveries("dead", "crm")
    form = f'action="/ui/calls/{event["id"]}/replay/{dead_view.id}"'
    assert page.count("/replay/") == 1 and form in page, "Replay only on the dead one"

    response = await service.post(
        f"/ui/calls/{event['id']}/replay/{dead_view.id}",
        data={"csrf": csrf_of(page)},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == (
        f"/ui/calls/{event['id']}?replayed={dead_view.id}&outcome=requeued"
    )
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
    await wait_for(lambda: store.list_attempts(dead_view.id), limit=5)

    async def delivered() -> bool:
        return (await store.get_delivery(dead_view.id)).status == "delivered"

    await wait_for(delivered)
    page = await (await service.get(f"/ui/calls/{event['id']}")).text()
    assert '<td data-label="Status code">503</td>' in page
    assert '<td data-label="Status code">200</td>' in page, "every attempt is listed"
    assert "/replay/" not in page, "nothing dead any more"
    delivery_page = await (await service.get(f"/ui/deliveries/{dead_view.id}")).text()
    assert f'href="/ui/calls/{event["id"]}"' in delivery_page, "a delivery links its call"
    response = await service.post(
        f"/ui/calls/{event['id']}/replay/not-its-delivery", data={"csrf": csrf_of(page)}
    )
    assert response.status == 404


async def test_a_call_page_shows_the_digest_it_joined(tmp_path, write_rules, receiver):
    grouped = rules(receiver.url()).replace(
        "    to: [crm, ops-slack]",
        "    to: [crm]\n  - name: by-trunk\n    when: {status: FAILED}\n    to: [ops-slack]\n"
        "    group: {by: [sipTrunkId], window: 10m}",
    )
    async with running_service(write_rules(grouped), tmp_path / "g.db") as service:
        first, second = fresh_event(status="FAILED"), fresh_event(status="FAILED")
        for event in (first, second):
            await post_event(service, event)
        page = await signed_in_page(service, f"/ui/calls/{second['id']}")
        assert "digest of 2 calls" in page
        assert f'href="/ui/calls/{first["id"]}"' in page, "links the call that opened it"
        assert "joined 1 digest opened by another call" in page


async def test_the_overview_counts_retrying_muted_and_delivered_in_the_last_hour(service, receiver):
    receiver.answer = lambda request, n: 200
    await post_event(service, fresh_event(status="FAILED"))
    store, *_ = parts(service)

    async def delivered() -> bool:  # recorded, not only received
        return bool(await store.list_deliveries("delivered", "crm"))

    await wait_for(delivered)
    page = await signed_in_page(service)
    for header in ("Retrying", "Muted", "Delivered"):
        assert f"<th>{header}" in page
    crm_row = page[page.index('href="/ui/deliveries?sink=crm"') :].split("</tr>")[0]
    assert '<td data-label="Delivered in the last hour">1</td>' in crm_row
    assert '<td data-label="Retrying">0</td>' in crm_row
    assert '<td data-label="Muted">0</td>' in crm_row


async def test_the_rule_filter_finds_deliveries_beyond_the_newest_2000(service):
    store, *_ = parts(service)
    base = time.time() - 5000
    old = IngestRecord("old-call", b"{}", base, [NewDelivery("old:crm", "crm", "rare-rule")])
    await store.ingest(old)
    await asyncio.gather(
        *(
            store.ingest(
                IngestRecord(f"n{n}", b"{}", base + 1 + n, [NewDelivery(f"n{n}", "crm", "common")])
            )
            for n in range(2100)
        )
    )
    page = await signed_in_page(service, "/ui/deliveries?rule=rare-rule")
    assert "old:crm" in page
    assert "newest 2000" not in page


async def test_the_playground_loads_a_stored_call_or_any_sample(service):
    event = fresh_event(status="FAILED", agentId="agent-from-the-store")
    await post_event(service, event)
    page = await signed_in_page(service, "/ui/rules")
    assert event["id"] in page, "the newest stored calls are offered"
    for name in ("completed-inbound", "failed-outbound", "voicemail-outbound", "minimal-canceled"):
        assert f'<option value="{name}">' in page
    csrf = csrf_of(page)

    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf, "call_id": event["id"], "load_call": "1"}
    )
    assert response.status == 200
    html = await response.text()
    assert "agent-from-the-store" in html and "failed-calls" in html

    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf, "sample": "minimal-canceled"}
    )
    assert response.status == 200
    assert "CANCELED" in await response.text()

    for data, status, message in (
        ({"call_id": "nope", "load_call": "1"}, 404, "no stored call"),
        ({"call_id": "", "load_call": "1"}, 400, "give the id of a stored call"),
        ({"sample": "nope"}, 404, "no sample call"),
    ):
        response = await service.post("/ui/rules/playground", data={"csrf": csrf, **data})
        assert response.status == status, data
        assert message in await response.text(), data


NUMBERS_WRITTEN = {
    "(415) 555-0143": "+1415•••0143",
    "+1 415-555-0142": "+1415•••0142",
    "+44 20 7183 8750": "+4420•••8750",
    "+14155550188": "+1415•••0188",
}


async def test_a_call_and_the_playground_show_its_numbers_masked_however_written(service):
    event = fresh_event(
        status="FAILED",
        errorMessage="SIP 503 from +1 415-555-0142",
        summary="Wants a call back on (415) 555-0143.",
        transcript=[{"role": "user", "content": "Or try +44 20 7183 8750, or +14155550188."}],
        variables={"callback": "(415) 555-0143"},
    )
    assert (await post_event(service, event)).status == 200
    pages = {"call": await signed_in_page(service, f"/ui/calls/{event['id']}")}
    csrf = csrf_of(await signed_in_page(service, "/ui/rules"))
    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf, "call_id": event["id"], "load_call": "1"}
    )
    assert response.status == 200
    pages["playground"] = await response.text()
    for name, page in pages.items():
        for written, masked in NUMBERS_WRITTEN.items():
            assert written not in page, (name, written)
            assert masked in page, (name, masked)
        assert "4155550143" not in page and "4155550142" not in page, name


def test_the_stored_body_of_a_call_is_valid_json_for_the_playground() -> None:
    from router.store import EventView
    from router.web.ui.views import stored_call_text

    raw = EventView("c", b'{"id":"c","n":1}', 0.0, "", "")
    assert json.loads(stored_call_text(raw)) == {"id": "c", "n": 1}
    assert stored_call_text(EventView("c", b"not json", 0.0, "", "")) == "not json"


async def test_a_call_id_with_slashes_and_query_characters_links_to_its_page(service):
    event = fresh_event(status="FAILED")
    event["id"] = "odd/id?x=1#frag %2F é"
    assert (await post_event(service, event)).status == 200
    page = await signed_in_page(service, "/ui/calls")
    [link] = re.findall(r'href="(/ui/calls/[^"]+)"', page)
    response = await service.get(link.replace("&amp;", "&"))
    assert response.status == 200, link
    html = await response.text()
    assert "odd/id?x=1#frag %2F é" in html
    [action] = re.findall(r'action="(/ui/calls/[^"]+/replay/[^"]+)"', html) or [None]
    assert action is None or action.startswith(link.replace("&amp;", "&"))


async def test_the_search_box_finds_calls_by_any_spelling_of_a_number_or_by_words(service):
    caller = fresh_event(
        "failed-outbound",
        fromNumber="+14155550142",
        toNumber="+442071838750",
        summary="Caller asked for a refund of the Friday invoice.",
        transcript=[{"role": "user", "content": "The kettle arrived broken"}],
    )
    other = fresh_event("completed-inbound", fromNumber="+14155550999", summary="Booked a visit.")
    for body in (caller, other):
        assert (await post_event(service, body)).status == 200
    await sign_in(service)
    for q, expected in (
        ("(415) 555-0142", [caller["id"]]),
        ("+1 415-555-0142", [caller["id"]]),
        ("415.555.0142", [caller["id"]]),
        ("+44 20 7183 8750", [caller["id"]]),
        ("refund friday", [caller["id"]]),
        ("KETTLE", [caller["id"]]),
        ("refunds", []),
        ("visit", [other["id"]]),
        ('"', []),
        ("NEAR(", []),
        ("*", []),
    ):
        response = await service.get("/ui/calls", params={"q": q})
        assert response.status == 200, q
        page = await response.text()
        assert call_ids(page) == expected, q
        assert "+14155550142" not in page, "numbers stay masked"
    response = await service.get("/ui/calls", params={"q": "x" * 201})
    assert response.status == 400
    assert "search: at most 200 characters" in await response.text()
    # The search box keeps its text on the next page's link and in the box.
    page = await (await service.get("/ui/calls", params={"q": "refund friday"})).text()
    assert 'name="q" value="refund friday"' in page


async def test_status_and_hang_up_cause_are_chosen_from_the_data_in_any_case(service):
    failed = fresh_event("failed-outbound", hangupCause="silence_timeout")
    done = fresh_event("completed-inbound", hangupCause="USER_ENDED")
    for body in (failed, done):
        assert (await post_event(service, body)).status == 200
    page = await signed_in_page(service, "/ui/calls")
    status_select = re.search(r'<select name="status">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', status_select) == ["", "COMPLETED", "FAILED"]
    cause_select = re.search(r'<select name="hangup">(.*?)</select>', page, re.S).group(1)
    causes = re.findall(r'<option value="([^"]*)"', cause_select)
    assert causes == ["", "SILENCE_TIMEOUT", "USER_ENDED"]
    for query, expected in (
        ("hangup=Silence_Timeout", [failed["id"]]),
        ("hangup=SILENCE_TIMEOUT", [failed["id"]]),
        ("status=Failed", [failed["id"]]),
        ("status=completed&hangup=user_ended", [done["id"]]),
    ):
        page = await (await service.get(f"/ui/calls?{query}")).text()
        assert call_ids(page) == expected, query
    page = await (await service.get("/ui/calls?hangup=silence_timeout")).text()
    assert '<option value="SILENCE_TIMEOUT" selected>' in page


async def test_each_call_shows_its_worst_delivery_state(service, receiver):
    receiver.answer = lambda request, n: 400  # every delivery of the crm sink dies
    failed = fresh_event("failed-outbound")
    assert (await post_event(service, failed)).status == 200
    store, *_ = parts(service)

    async def dead() -> bool:
        return bool(await store.list_deliveries("dead"))

    await wait_for(dead, limit=20)
    await store.ingest(IngestRecord("no-rule", b'{"id": "no-rule"}', time.time(), [], "X"))
    page = await signed_in_page(service, "/ui/calls")
    rows = dict(
        re.findall(r'href="/ui/calls/([^"?/]+)".*?data-label="Deliveries">(.*?)</td>', page, re.S)
    )
    assert ">dead</span>" in rows[failed["id"]]
    assert ">none</span>" in rows["no-rule"]


async def test_the_menu_has_dead_letters_the_deliveries_page_of_dead_ones(service):
    page = await signed_in_page(service, "/ui/")
    assert '<a href="/ui/deliveries?status=dead">Dead letters</a>' in page
    page = await (await service.get("/ui/deliveries?status=dead")).text()
    assert '<a href="/ui/deliveries?status=dead" aria-current="page">Dead letters</a>' in page
    assert "<h1>Dead letters</h1>" in page
    response = await service.get("/ui/deliveries?status=DEAD")
    assert response.status == 200, "a status in any case, as on the calls page"
