"""The console's silences over real HTTP: created from the form (the admin API's checks,
every problem named, nothing stored on error), listed, muting a call posted to the
webhook, expired by the button; "Silence calls like this one" fills the form from a
call; a session and a CSRF token are required (tests/browser/ drives the same pages)."""

from __future__ import annotations

import html
import json
import re
import time

import pytest
from markupsafe import escape

from tests.conftest import fresh_event
from tests.integration.test_console import csrf_of, rules, sign_in, signed_in_page
from tests.service import parts, post_event, running_service, wait_for


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db") as client:
        yield client


def silence_ids(page: str) -> list[str]:
    return re.findall(r'data-silence="([^"]+)"', page)


async def create(service, csrf: str, **fields):
    data = [("csrf", csrf)]
    for name, value in fields.items():
        values = value if isinstance(value, list) else [value]
        data += [(name, item) for item in values]
    return await service.post("/ui/silences", data=data, allow_redirects=False)


async def test_a_silence_made_in_the_console_is_listed_and_mutes_a_matching_call(service, receiver):
    page = await signed_in_page(service, "/ui/silences")
    assert 'href="/ui/silences" aria-current="page"' in page, "the menu entry is a link"
    assert "No silence is active or pending" in page
    assert 'type="checkbox" name="sinks" value="crm"' in page
    agent = "agent-silenced-1"
    response = await create(
        service,
        csrf_of(page),
        when=json.dumps({"status": "FAILED", "agentId": agent}),
        **{"for": "2h"},
        sinks=["crm"],
        comment="carrier <maintenance>",
    )
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert location.startswith("/ui/silences?created=")
    silence_id = location.split("=", 1)[1]

    store, *_ = parts(service)
    (record,) = await store.list_silences()
    assert record.id == silence_id and record.sinks == ("crm",)
    assert json.loads(record.when) == {"status": "FAILED", "agentId": agent}
    page = await (await service.get(location)).text()
    assert silence_ids(page) == [silence_id]
    assert f"Created silence <code>{silence_id}</code>" in page
    assert "carrier &lt;maintenance&gt;" in page and "<maintenance>" not in page
    assert str(escape('"agentId": "agent-silenced-1"')) in page
    assert "in 2 h" in page and ">active<" in page

    muted, other = fresh_event(agentId=agent), fresh_event(agentId="agent-other")
    for event in (muted, other):
        assert (await post_event(service, event)).status == 200
    await wait_for(lambda: receiver.delivered_ids() == [other["id"]])

    async def crm_muted():
        views = await store.deliveries_of_event(muted["id"])
        return [v for v in views if v.sink == "crm" and v.status == "muted"]

    await wait_for(crm_muted)
    (view,) = await crm_muted()
    assert view.muted_reason == f"silence:{silence_id}"
    assert receiver.delivered_ids() == [other["id"]], "the silenced call never reached crm"


async def test_a_bad_form_names_every_problem_and_stores_nothing(service):
    page = await signed_in_page(service, "/ui/silences")
    csrf = csrf_of(page)
    cases = [
        (
            {"when": '{"status": ', "for": "2h"},
            ["when: not JSON"],
        ),
        (
            {"when": '{"status": "FAILED"}', "sinks": ["nope"], "comment": "x" * 1001},
            [
                "for / ends_at: give exactly one",
                "sinks: unknown sink &#39;nope&#39;",
                "comment: at most 1000 characters",
            ],
        ),
        (
            {"when": '{"status": {"regex": "("}}', "for": "2h", "ends_at": "tomorrow"},
            ["when.status", "for / ends_at: give exactly one"],
        ),
        ({"when": "[]", "for": "forever"}, ["when: must be a mapping", "for: "]),
        ({"for": "2h"}, ["when: required"]),
        ({"when": '{"id": {"exists": true}}', "for": "2h"}, ["when: names no values"]),
        ({"when": '{"not": {"status": "NOPE"}}', "for": "2h"}, ["when: names no values"]),
        (
            {"when": '{"status": "FAILED"}', "ends_at": "2020-01-01T00:00:00Z"},
            ["ends_at: must be after starts_at"],
        ),
    ]
    for fields, messages in cases:
        response = await create(service, csrf, **fields)
        assert response.status == 422, fields
        text = await response.text()
        problems = re.search(r'<ul class="notice error"[^>]*id="problems">(.*?)</ul>', text, re.S)
        assert problems, fields
        for message in messages:
            assert message in problems.group(1), (fields, message)
        if "when" in fields:
            assert str(escape(fields["when"])) in text, "the form keeps its input"
    text = await (await create(service, csrf, when="{", **{"for": "2h"})).text()
    assert "when: required" not in text, "a `when` that is not JSON is named once"
    store, *_ = parts(service)
    assert await store.list_silences() == []


async def test_expire_ends_a_silence_and_lists_it_as_expired(service):
    page = await signed_in_page(service, "/ui/silences")
    csrf = csrf_of(page)
    response = await create(service, csrf, when='{"status": "FAILED"}', **{"for": "1h"})
    silence_id = response.headers["Location"].split("=", 1)[1]
    store, engine, *_ = parts(service)
    assert [s.id for s in engine.controls.active_silences(time.time())] == [silence_id], (
        "the controls were refreshed at once"
    )
    page = await (await service.get("/ui/silences")).text()
    assert f'action="/ui/silences/{silence_id}/expire" data-confirm="Expire this silence?' in page

    response = await service.post(
        f"/ui/silences/{silence_id}/expire", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 200, "without confirm=yes it asks first"
    asking = await response.text()
    assert "Expire this silence?" in asking and "FAILED" in asking, "it names the silence"
    assert f'action="/ui/silences/{silence_id}/expire"' in asking
    assert 'name="confirm" value="yes"' in asking
    assert (await store.list_silences())[0].expired_at is None, "asking changes nothing"
    assert [s.id for s in engine.controls.active_silences(time.time())] == [silence_id]
    response = await service.post(
        f"/ui/silences/{silence_id}/expire",
        data={"csrf": csrf, "confirm": "yes"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/ui/silences?expired={silence_id}"
    (record,) = await store.list_silences()
    assert record.expired_at is not None
    assert engine.controls.active_silences(time.time()) == []
    page = await (await service.get(response.headers["Location"])).text()
    assert "No silence is active or pending" in page
    assert "Expired in the last 30 days" in page and silence_ids(page) == [silence_id]
    assert "/expire" not in page, "an expired silence has no Expire button"
    response = await service.post(
        f"/ui/silences/{silence_id}/expire", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303, "one already over needs no asking"
    for data in ({"csrf": csrf}, {"csrf": csrf, "confirm": "yes"}):
        response = await service.post(
            "/ui/silences/no-such-silence/expire", data=data, allow_redirects=False
        )
        assert response.status == 404
    assert "no silence &#39;no-such-silence&#39;" in await response.text()


async def test_silence_calls_like_this_one_fills_the_form_from_the_call(service):
    event = fresh_event(agentId="agent-like-1", sipTrunkId="trunk-like")
    plain = fresh_event(agentId="agent-like-2")
    plain.pop("sipTrunkId", None)
    for body in (event, plain):
        assert (await post_event(service, body)).status == 200
    page = await signed_in_page(service, f"/ui/calls/{event['id']}")
    link = f'href="/ui/silences?call={event["id"]}#new"'
    assert link in page
    page = await (await service.get(f"/ui/silences?call={event['id']}")).text()
    when = re.search(r'<textarea id="when" name="when"[^>]*>(.*?)</textarea>', page, re.S)
    assert when and json.loads(html.unescape(when.group(1))) == {
        "status": "FAILED",
        "sipTrunkId": "trunk-like",
        "agentId": "agent-like-1",
    }
    assert f'name="from_call" value="{event["id"]}"' in page
    page = await (await service.get(f"/ui/silences?call={plain['id']}")).text()
    when = re.search(r'<textarea id="when" name="when"[^>]*>(.*?)</textarea>', page, re.S)
    assert when and json.loads(html.unescape(when.group(1))) == {
        "status": "FAILED",
        "agentId": "agent-like-2",
    }, "equality on the fields the call holds"
    response = await service.get("/ui/silences?call=no-such-call")
    assert response.status == 404


async def test_silences_need_a_session_and_a_csrf_token(service):
    response = await service.get("/ui/silences", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?next=/ui/silences"
    for path in ("/ui/silences", "/ui/silences/x/expire"):
        response = await service.post(
            path, data={"when": '{"status": "FAILED"}', "for": "1h"}, allow_redirects=False
        )
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/ui/login")
    await sign_in(service)
    store, *_ = parts(service)
    response = await service.post(
        "/ui/silences", data={"when": '{"status": "FAILED"}', "for": "1h"}, allow_redirects=False
    )
    assert response.status == 403
    assert "CSRF token is missing or wrong" in await response.text()
    response = await create(service, "wrong-token", when='{"status": "FAILED"}', **{"for": "1h"})
    assert response.status == 403
    assert await store.list_silences() == []
