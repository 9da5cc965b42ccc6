"""Forgetting a caller through the real app (DESIGN.md sections 4 and 15):
`POST /admin/forget` and the console's page, then every page and list shows nothing of
the caller, and the other calls that mentioned them show `[erased]`."""

from __future__ import annotations

import json
import re

import pytest

from router.store import CallFilters
from tests.conftest import fresh_event
from tests.integration.test_console import csrf_of, rules, sign_in
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

CALLER = "+14155550142"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SPELLINGS = ("+14155550142", "4155550142", "555-0142", "555 0142", "555.0142", "1415•••0142")


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "forget.db") as client:
        yield client


async def post_calls(service) -> dict[str, str]:
    """Two failed calls of the caller (one from, one to them), one of someone else that
    mentions them; each has a delivered `crm` and a pending `ops-slack` delivery (that
    sink is not configured)."""
    calls = {
        "from": fresh_event(fromNumber=CALLER, toNumber="+14155550199"),
        "to": fresh_event(fromNumber="+14155550199", toNumber=CALLER),
        "other": fresh_event(
            fromNumber="+442071838750",
            summary="Asked us to ring her husband on (415) 555-0142 instead",
        ),
    }
    for body in calls.values():
        assert (await post_event(service, body)).status == 200
    store = parts(service)[0]

    async def all_sent() -> bool:
        crm = await store.list_deliveries(sink="crm", status="delivered")
        return len(crm) == 3

    await wait_for(all_sent)
    return {name: body["id"] for name, body in calls.items()}


def shows_the_caller(text: str) -> list[str]:
    return [spelling for spelling in SPELLINGS if spelling in text]


async def forget(service, body: object):
    return await service.post("/admin/forget", json=body, headers=BEARER)


async def test_post_admin_forget_leaves_nothing_of_the_caller(service) -> None:
    ids = await post_calls(service)

    dry = await forget(service, {"phone": "(415) 555-0142", "dry_run": True})
    assert dry.status == 200
    counted = await dry.json()
    real = await forget(service, {"phone": "+1 415 555 0142"})
    assert real.status == 200
    done = await real.json()

    assert done == {
        "status": "forgotten",
        "phone": "+1415•••0142",
        "dry_run": False,
        "calls_deleted": 2,
        "deliveries_deleted": 4,
        "pending_cancelled": 2,
        "calls_rewritten": 1,
        "attempts_rewritten": 0,
        "other_rows_rewritten": 0,
    }
    assert {**counted, "status": "forgotten", "dry_run": False} == done
    assert not shows_the_caller(await real.text())

    assert (await sign_in(service)).status == 303
    calls_page = await (await service.get("/ui/calls")).text()
    assert ids["from"] not in calls_page and ids["to"] not in calls_page
    assert ids["other"] in calls_page
    assert not shows_the_caller(calls_page)
    for mine in (ids["from"], ids["to"]):
        assert (await service.get(f"/ui/calls/{mine}")).status == 404
        listed = await service.get(f"/admin/deliveries?call={mine}", headers=BEARER)
        assert await listed.json() == []
    other_page = await (await service.get(f"/ui/calls/{ids['other']}")).text()
    assert "[erased]" in other_page
    assert not shows_the_caller(other_page)
    for q in ("(415) 555-0142", "+14155550142", "555-0142"):
        found = await service.get("/admin/calls", params={"q": q}, headers=BEARER)
        assert await found.json() == [], q
    deliveries = await (await service.get("/admin/deliveries", headers=BEARER)).json()
    assert {d["event_id"] for d in deliveries} == {ids["other"]}
    deliveries_page = await (await service.get("/ui/deliveries")).text()
    assert ids["from"] not in deliveries_page and ids["to"] not in deliveries_page
    store = parts(service)[0]
    assert [e.id for e in await store.list_events(CallFilters(phone=CALLER))] == []

    audited = await (await service.get("/admin/audit?action=forget", headers=BEARER)).json()
    assert [(a["actor"], a["target"]) for a in audited] == [("token", "caller")], "once: no dry run"
    details = audited[0]["details"]
    assert len(details["phone_hash"]) == 64 and details["calls_deleted"] == 2
    assert not shows_the_caller(json.dumps(audited)), "a salted hash, never the number"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "phone: required"),
        ({"phone": ""}, "phone: required"),
        ({"phone": "(415) 555-014"}, "phone: not a phone number"),
        ({"phone": "2026-11-20"}, "phone: not a phone number"),
        ({"phone": 4155550142}, "phone: expected a string"),
        ({"phone": CALLER, "dry_run": "yes"}, "dry_run: expected true or false"),
        ({"phone": CALLER, "everything": True}, "everything: unknown field"),
        ([CALLER], "the body must be a JSON object"),
    ],
)
async def test_a_bad_body_is_422_naming_the_problem(service, body, problem) -> None:
    answer = await forget(service, body)
    assert answer.status == 422
    errors = (await answer.json())["errors"]
    assert any(error.startswith(problem) for error in errors), errors
    assert "555-014" not in await answer.text()


async def test_it_needs_the_admin_token(service) -> None:
    answer = await service.post("/admin/forget", json={"phone": CALLER})
    assert answer.status == 401
    not_json = await service.post("/admin/forget", data=b"{", headers=BEARER)
    assert not_json.status == 422


async def test_the_console_counts_first_then_forgets_on_confirmation(service) -> None:
    ids = await post_calls(service)
    assert (await sign_in(service)).status == 303
    calls_page = await (await service.get("/ui/calls")).text()
    assert 'href="/ui/forget"' in calls_page
    form = await (await service.get("/ui/forget")).text()

    bad = await service.post(
        "/ui/forget", data={"csrf": csrf_of(form), "step": "count", "phone": "12"}
    )
    assert bad.status == 422
    assert "not a phone number" in await bad.text()

    counted = await service.post(
        "/ui/forget", data={"csrf": csrf_of(form), "step": "count", "phone": "(415) 555-0142"}
    )
    assert counted.status == 200
    page = await counted.text()
    assert "would" in page and "Forget this caller" in page
    assert re.search(r"Calls deleted</dt><dd>2</dd>", page)
    store = parts(service)[0]
    assert (await store.get_event(ids["from"])) is not None, "nothing erased yet"

    confirmed = await service.post(
        "/ui/forget", data={"csrf": csrf_of(page), "step": "erase", "phone": CALLER}
    )
    assert confirmed.status == 200
    done = await confirmed.text()
    assert "is forgotten" in done
    assert re.search(r"Calls deleted</dt><dd>2</dd>", done)
    assert await store.get_event(ids["from"]) is None
    assert await store.get_event(ids["to"]) is None
    assert shows_the_caller(done) == ["1415•••0142"]  # masked alone


async def test_the_console_form_needs_its_csrf_token(service) -> None:
    await post_calls(service)
    assert (await sign_in(service)).status == 303
    refused = await service.post("/ui/forget", data={"step": "erase", "phone": CALLER})
    assert refused.status == 403
    store = parts(service)[0]
    assert len(await store.list_events(CallFilters(phone=CALLER))) == 2


async def test_only_an_admin_may_forget(tmp_path, write_rules, receiver) -> None:
    """Roles (DESIGN.md section 14): an operator's token gets 403 naming the role needed,
    sees no link on the calls page, and the page's buttons are disabled; an admin's
    token forgets."""
    from router.operators.users import User, Users, hash_secret, new_token, write_users_file
    from tests.integration.test_console_users import sign_in as sign_in_as

    otto_token, otto = new_token(User("otto", "operator", hash_secret("otto-password-1")))
    ada_token, ada = new_token(User("ada", "admin", hash_secret("ada-password-1")))
    users = tmp_path / "users.yaml"
    write_users_file(users, Users.of([otto, ada]))
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "roles.db", users_file=users) as client:
        await post_calls(client)
        refused = await client.post(
            "/admin/forget",
            json={"phone": CALLER},
            headers={"Authorization": f"Bearer {otto_token}"},
        )
        assert refused.status == 403
        assert "needs admin" in await refused.text()
        assert (await sign_in_as(client, "otto", "otto-password-1")).status == 303
        assert 'href="/ui/forget"' not in await (await client.get("/ui/calls")).text()
        page = await (await client.get("/ui/forget")).text()
        assert "needs the admin role" in page
        posted = await client.post(
            "/ui/forget", data={"csrf": csrf_of(page), "step": "erase", "phone": CALLER}
        )
        assert posted.status == 403
        store = parts(client)[0]
        assert len(await store.list_events(CallFilters(phone=CALLER))) == 2

        done = await client.post(
            "/admin/forget",
            json={"phone": CALLER},
            headers={"Authorization": f"Bearer {ada_token}"},
        )
        assert done.status == 200
        assert (await done.json())["calls_deleted"] == 2
