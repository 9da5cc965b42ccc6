"""The web console over real HTTP: sign-in, sessions, CSRF, security headers, the pages and
their actions, and event text that stays text (the browser tests in tests/browser/
drive the same pages in Chromium)."""

from __future__ import annotations

import html
import json
import re
from http.cookies import SimpleCookie

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from router.web.ui.auth import SESSION_COOKIE
from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

XSS_SUMMARY = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
LITERAL_SECRET = "literal-crm-token-0123456789"


def rules(receiver_url: str) -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 1, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{receiver_url}"
    headers: {{Authorization: "Bearer {LITERAL_SECRET}"}}
  ops-slack:
    type: slack
    webhook_url: ${{CONSOLE_TEST_UNSET_WEBHOOK:-}}
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [crm, ops-slack]
"""


@pytest.fixture
async def service(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "console.db") as client:
        yield client


async def sign_in(client, token: str = ADMIN_TOKEN, **headers: str):
    return await client.post(
        "/ui/login", data={"token": token, "next": "/ui/"}, allow_redirects=False, headers=headers
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def signed_in_page(client, path: str = "/ui/") -> str:
    assert (await sign_in(client)).status == 303
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


async def test_without_an_admin_token_the_console_is_not_there(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "r.db", admin_token=None) as client:
        for url in ("/ui/", "/ui/login", "/ui/deliveries"):
            assert (await client.get(url, allow_redirects=False)).status == 404
        assert (await client.post("/ui/login", data={"token": "x"})).status == 404


async def test_every_console_answer_carries_the_security_headers(service):
    for url in ("/ui/login", "/ui/", "/ui/static/console.css", "/ui/no-such-page"):
        response = await service.get(url, allow_redirects=False)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy, url
        assert "frame-ancestors 'none'" in policy, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


async def test_a_page_without_a_session_sends_you_to_sign_in(service):
    response = await service.get("/ui/deliveries?status=dead", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?next=/ui/deliveries?status%3Ddead"
    response = await service.post("/ui/deliveries/x/replay", data={}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/ui/login")


async def test_signing_in_sets_a_strict_http_only_session_cookie(service):
    response = await sign_in(service)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/"
    cookie = SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert not cookie["secure"], "plain http: a Secure cookie would never come back"
    assert ADMIN_TOKEN not in cookie.value
    assert "Overview" in await (await service.get("/ui/")).text()


async def test_behind_an_https_proxy_the_cookie_is_secure(service):
    response = await sign_in(service, **{"X-Forwarded-Proto": "https"})
    cookie = SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cookie["secure"] is True


async def test_a_wrong_token_is_refused_and_repeated_failures_are_rate_limited(service):
    for _ in range(5):
        response = await sign_in(service, "wrong-token")
        assert response.status == 401
        assert "not right" in await response.text()
        assert "Set-Cookie" not in response.headers
    response = await sign_in(service, "wrong-token")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    response = await sign_in(service)  # even the right token waits out the limit
    assert response.status == 429


async def test_a_token_with_a_lone_surrogate_is_just_wrong(service):
    response = await service.post(
        "/ui/login",
        data=b"token=%ED%A0%80abc",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status == 401


async def test_next_never_leads_to_another_site(service):
    for target in ("//evil.example/", "https://evil.example/", "/ui//evil.example", "/admin"):
        response = await service.post(
            "/ui/login", data={"token": ADMIN_TOKEN, "next": target}, allow_redirects=False
        )
        assert response.headers["Location"] == "/ui/", target


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(service):
    await sign_in(service)
    cookies = service.session.cookie_jar.filter_cookies(service.make_url("/ui/"))
    copied = {SESSION_COOKIE: cookies[SESSION_COOKIE].value}
    page = await (await service.get("/ui/")).text()
    response = await service.post("/ui/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/login?signed_out=1"
    assert (await service.get("/ui/", allow_redirects=False)).status == 303
    service.session.cookie_jar.update_cookies(copied, service.make_url("/ui/"))
    assert (await service.get("/ui/", allow_redirects=False)).status == 303


async def test_a_tampered_session_cookie_is_refused(service):
    await sign_in(service)
    jar = service.session.cookie_jar
    value = jar.filter_cookies(service.make_url("/ui/"))[SESSION_COOKIE].value
    for forged in (value[:-1] + ("A" if value[-1] != "A" else "B"), value + "x", value[1:]):
        jar.update_cookies({SESSION_COOKIE: forged}, service.make_url("/ui/"))
        assert (await service.get("/ui/", allow_redirects=False)).status == 303, forged
    jar.update_cookies({SESSION_COOKIE: value}, service.make_url("/ui/"))
    assert (await service.get("/ui/", allow_redirects=False)).status == 200


async def test_a_post_without_the_csrf_token_is_refused(service, receiver):
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)
    await wait_for(lambda: len(receiver.received) == 1)
    (view,) = await store.list_deliveries(sink="crm")
    await sign_in(service)
    for data in ({}, {"csrf": "forged"}):
        response = await service.post(f"/ui/deliveries/{view.id}/replay", data=data)
        assert response.status == 403
        assert "CSRF" in await response.text()
    page = await (await service.get(f"/ui/deliveries/{view.id}")).text()
    response = await service.post(
        f"/ui/deliveries/{view.id}/replay",
        data={"csrf": csrf_of(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert (await store.get_delivery(view.id)).status == "delivered", "refused: nothing changed"


async def test_replaying_a_dead_delivery_from_its_page_sends_it_again(service, receiver):
    receiver.answer = lambda request, n: 400 if n == 1 else 200
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    store, *_ = parts(service)

    async def dead() -> bool:
        return bool(await store.list_deliveries("dead", "crm"))

    await wait_for(dead)
    (view,) = await store.list_deliveries("dead", "crm")
    page = await signed_in_page(service, f"/ui/deliveries/{view.id}")
    assert "dead" in page and "Replay" in page
    response = await service.post(
        f"/ui/deliveries/{view.id}/replay", data={"csrf": csrf_of(page)}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/ui/deliveries/{view.id}?replay=requeued"
    await wait_for(lambda: receiver.delivered_ids() == [event["id"]])


async def test_bulk_replay_of_a_sinks_dead_deliveries_asks_first(service, receiver):
    receiver.answer = lambda request, n: 400 if n <= 2 else 200
    events = [fresh_event(status="FAILED") for _ in range(2)]
    for event in events:
        await post_event(service, event)
    store, *_ = parts(service)

    async def both_dead() -> bool:
        return len(await store.list_deliveries("dead", "crm")) == 2

    await wait_for(both_dead)
    page = await signed_in_page(service, "/ui/deliveries?status=dead&sink=crm")
    assert "Replay the 2 dead deliveries of crm" in page
    confirm = await (await service.get("/ui/deliveries/replay-dead?sink=crm")).text()
    assert "Replay 2 deliveries" in confirm
    assert len(receiver.delivered_ids()) == 0, "asking changes nothing"
    response = await service.post(
        "/ui/deliveries/replay-dead",
        data={"csrf": csrf_of(confirm), "sink": "crm"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/ui/deliveries?sink=crm&replayed=2"
    await wait_for(lambda: sorted(receiver.delivered_ids()) == sorted(e["id"] for e in events))


async def test_deliveries_filter_by_status_sink_and_rule(service, receiver):
    event = fresh_event(status="FAILED")
    await post_event(service, event)
    await wait_for(lambda: len(receiver.received) == 1)
    page = await signed_in_page(service, "/ui/deliveries?sink=crm&rule=failed-calls")
    assert event["id"][:12] in page
    page = await (await service.get("/ui/deliveries?sink=crm&rule=other-rule")).text()
    assert event["id"][:12] not in page
    page = await (await service.get("/ui/deliveries?status=pending&sink=ops-slack")).text()
    assert event["id"][:12] in page
    response = await service.get("/ui/deliveries?status=lost")
    assert response.status == 400
    assert "status must be one of" in await response.text()


async def test_the_overview_shows_each_sinks_state_and_the_loaded_rules(service, receiver):
    await post_event(service, fresh_event(status="FAILED"))
    await wait_for(lambda: len(receiver.received) == 1)
    page = await signed_in_page(service)
    assert "crm" in page and "ops-slack" in page
    assert "not configured" in page and "webhook_url" in page
    assert "CONSOLE_TEST_UNSET_WEBHOOK is set in the environment and the router restarted" in (page)
    assert "loaded" in page and "2 sinks" in page
    assert re.search(r"<dt>Accepted</dt><dd>1</dd>", page)


async def test_the_rules_page_masks_secrets_written_in_the_file(service):
    page = await signed_in_page(service, "/ui/rules")
    assert LITERAL_SECRET not in page
    assert "${CONSOLE_TEST_UNSET_WEBHOOK:-}" in page, "a variable reference holds no secret"
    assert "failed-calls" in page


async def test_the_playground_routes_a_pasted_call_and_renders_each_message(service):
    page = await signed_in_page(service, "/ui/rules")
    event = fresh_event(status="FAILED", summary=XSS_SUMMARY)
    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf_of(page), "event": json.dumps(event)}
    )
    assert response.status == 200
    html = await response.text()
    assert "failed-calls" in html
    assert 'class="slack-message"' in html
    assert LITERAL_SECRET not in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_the_playground_shows_no_signature_that_verifies(tmp_path, write_rules, receiver):
    signed = rules(receiver.url()).replace(
        f'    url: "{receiver.url()}"\n',
        f'    url: "{receiver.url()}"\n    signing_secret: "{SIGNING_SECRET}"\n',
    )
    async with running_service(write_rules(signed), tmp_path / "console.db") as client:
        page = await signed_in_page(client, "/ui/rules")
        event = fresh_event(status="FAILED", summary="refund approved, pay the bearer")
        response = await client.post(
            "/ui/rules/playground", data={"csrf": csrf_of(page), "event": json.dumps(event)}
        )
        assert response.status == 200
        page = await response.text()
    match = re.search(r'<pre class="http-request">(.*?)</pre>', page, re.DOTALL)
    assert match, "the playground shows the HTTP request"
    head, _, body = html.unescape(match[1]).partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    assert headers["webhook-signature"] == "v1,***"
    assert SIGNING_SECRET not in page and SIGNING_SECRET.removeprefix("whsec_") not in page
    assert LITERAL_SECRET not in page
    for sent in (json.dumps(event), body.strip(), json.dumps(json.loads(body))):
        with pytest.raises(WebhookVerificationError):
            Webhook(SIGNING_SECRET).verify(sent, headers)


async def test_a_crms_error_keeps_the_words_of_the_sinks_url_and_hides_its_secrets(
    tmp_path, write_rules
):
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(
            status=400, text=f"upstream says no: Bearer token expired; we got {request.url}"
        )

    app = web.Application()
    app.router.add_post("/upstream/{token}", refuse)
    async with TestServer(app, host="127.0.0.1") as crm:
        url = str(crm.make_url("/upstream/tok-7d3f9a1c5e2b?api_key=qk-9z8y7x6w5v&tier=gold"))
        text = rules(url).replace(
            f'headers: {{Authorization: "Bearer {LITERAL_SECRET}"}}',
            f'headers: {{X-Api-Key: "Bearer {LITERAL_SECRET}"}}',
        )
        async with running_service(write_rules(text), tmp_path / "console.db") as client:
            await post_event(client, fresh_event(status="FAILED"))
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

            async def dead() -> list:
                answer = await client.get("/admin/deliveries?status=dead&sink=crm", headers=admin)
                return await answer.json()

            await wait_for(dead)
            (view,) = await dead()
            pages = [
                view["last_error"],
                await signed_in_page(client, "/ui/deliveries"),
                await signed_in_page(client, f"/ui/deliveries/{view['id']}"),
            ]
    assert view["last_error"].startswith(
        "HTTP 400 Bad Request: upstream says no: Bearer token expired; we got ***"
    )
    for shown in pages:
        assert "upstream says no: Bearer token expired" in shown
        for secret in ("tok-7d3f9a1c5e2b", "qk-9z8y7x6w5v", LITERAL_SECRET):
            assert secret not in shown


async def test_the_playground_names_what_is_wrong_with_a_bad_call(service):
    page = await signed_in_page(service, "/ui/rules")
    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf_of(page), "event": "{not json"}
    )
    assert response.status == 400
    assert "malformed JSON" in await response.text()
    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf_of(page), "event": '{"id": "x"}'}
    )
    assert response.status == 422
    assert "not a valid call" in await response.text()


async def test_an_unknown_delivery_is_a_clear_404(service):
    await sign_in(service)
    response = await service.get("/ui/deliveries/no-such-delivery")
    assert response.status == 404
    assert "no delivery" in await response.text()


async def test_odd_addresses_get_clear_answers_not_errors(service):
    await sign_in(service)
    for url, status in (
        ("/ui/deliveries?sink=%00", 400),
        ("/ui/deliveries/%00x", 400),
        ("/ui/deliveries?sink=%ED%A0%80", 200),
        ("/ui/deliveries/%ED%A0%80", 404),
        ("/ui/deliveries?page=99999999999999999999999", 200),
        ("/ui/deliveries?page=-3", 200),
        ("/ui/deliveries/replay-dead", 400),
    ):
        response = await service.get(url)
        assert response.status == status, url


async def test_the_overview_shows_a_sink_paused_by_hand_with_its_comment(service):
    paused = await service.post(
        "/admin/sinks/crm/pause",
        json={"for": "1h", "comment": "CRM migration"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert paused.status == 200
    page = await signed_in_page(service)
    assert "paused by hand" in page and "CRM migration" in page


async def test_a_muted_delivery_shows_why_on_its_page(service):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await service.post(
        "/admin/silences", json={"when": {"status": "FAILED"}, "for": "1h"}, headers=admin
    )
    silence_id = (await created.json())["id"]
    await post_event(service, fresh_event(status="FAILED"))
    views = await (await service.get("/admin/deliveries?status=muted", headers=admin)).json()
    assert {view["sink"] for view in views} == {"crm", "ops-slack"}
    page = await signed_in_page(service, f"/ui/deliveries/{views[0]['id']}")
    assert f"silence:{silence_id}" in page and "Muted by" in page
    listing = await signed_in_page(service, "/ui/deliveries?status=muted")
    assert views[0]["id"] in listing


async def test_the_playground_says_an_unconfigured_sink_waits_for_a_restart(service):
    page = await signed_in_page(service, "/ui/rules")
    event = fresh_event(status="FAILED")
    response = await service.post(
        "/ui/rules/playground", data={"csrf": csrf_of(page), "event": json.dumps(event)}
    )
    html = await response.text()
    assert (
        "Not configured (webhook_url empty): its deliveries wait until"
        " CONSOLE_TEST_UNSET_WEBHOOK is set in the environment and the router restarted"
    ) in html
    assert "reload sets it" not in html
