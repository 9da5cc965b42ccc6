"""Single sign-on to the console through an OpenID Connect provider of our own on a real
socket (tests/oidc_provider.py): the full sign-in, each check of the ID token failing,
a forged state, a replayed code, a PKCE verifier that does not match, key rotation, and
a provider that is down while password sign-in keeps working. No code, token, verifier
or secret appears in a page or a log line."""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from router.store import AuditFilters
from router.web.ui.auth import SESSION_COOKIE
from router.web.ui.sso import PENDING_COOKIE
from tests.integration.conftest import fresh_postgres_schema
from tests.oidc_provider import CLIENT_SECRET, OidcProvider, free_port, new_key
from tests.service import ADMIN_TOKEN, parts, running_service

RULES = """
version: 1
sinks:
  ops-log: {type: log}
rules:
  - name: everything
    when: {}
    to: [ops-log]
"""


@pytest.fixture
async def provider() -> AsyncIterator[OidcProvider]:
    started = await OidcProvider().start()
    try:
        yield started
    finally:
        await started.close()


def _service(
    tmp_path,
    write_rules,
    provider: OidcProvider,
    roles: str | None = None,
    store_url: str | None = None,
):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    settings = (
        provider.settings(public_url) if roles is None else provider.settings(public_url, roles)
    )
    return running_service(
        write_rules(RULES), tmp_path / "sso.db", oidc=settings, port=port, store_url=store_url
    )


@pytest.fixture
async def service(tmp_path, write_rules, provider):
    async with _service(tmp_path, write_rules, provider) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies (for every host: the router and the provider are both
    on 127.0.0.1) and follows redirects, as a browser would."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def single_sign_on(browser, service, next_path: str = "/ui/") -> aiohttp.ClientResponse:
    """Click "Sign in with single sign-on": start, the provider, back to the callback."""
    start = service.make_url("/ui/oidc/start").with_query(next=next_path)
    response = await browser.get(start)
    await response.text()
    return response


async def signed_in(browser, service) -> bool:
    response = await browser.get(service.make_url("/ui/"), allow_redirects=False)
    return response.status == 200


def page_message(text: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))


def router_log(caplog) -> str:
    """What the router logged (`serve` runs without aiohttp's access log, whose lines
    the test servers here write, with the callback's query)."""
    return "\n".join(
        f"{record.name} {record.getMessage()}"
        for record in caplog.records
        if record.name.startswith("router")
    )


def secrets_of(provider: OidcProvider) -> list[str]:
    found = [CLIENT_SECRET, ADMIN_TOKEN, *provider.issued, *provider.grants]
    for request in provider.token_requests:
        found += [request.get("code_verifier", ""), request.get("code", "")]
    return [value for value in found if value]


def assert_nothing_secret(provider: OidcProvider, *texts: str) -> None:
    for text in texts:
        for secret in secrets_of(provider):
            assert secret not in text, "a code, token, verifier or secret leaked"


async def test_the_sign_in_page_offers_single_sign_on_only_when_configured(
    service, tmp_path, write_rules
):
    text = await (await service.get("/ui/login?next=/ui/calls")).text()
    assert "Sign in with single sign-on" in text
    assert 'href="/ui/oidc/start?next=/ui/calls"' in text
    async with running_service(write_rules(RULES), tmp_path / "plain.db") as plain:
        assert "single sign-on" not in await (await plain.get("/ui/login")).text()
        assert (await plain.get("/ui/oidc/start", allow_redirects=False)).status == 404


async def test_a_full_sign_in_lands_in_the_console_with_a_session(
    service, provider, browser, caplog
):
    caplog.set_level(logging.DEBUG)
    response = await single_sign_on(browser, service, "/ui/calls")
    assert response.status == 200, page_message(await response.text())
    # The way there: the router's authorization request, then the provider's redirect.
    start, authorize = response.history
    assert start.status == 303 and authorize.status == 302
    asked = parse_qs(urlsplit(str(authorize.url)).query)
    assert asked["response_type"] == ["code"]
    assert asked["client_id"] == ["router-console"]
    assert asked["redirect_uri"] == [f"http://127.0.0.1:{service.server.port}/ui/oidc/callback"]
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["scope"] == ["openid profile email"]
    assert len({asked["state"][0], asked["nonce"][0]}) == 2
    pending = SimpleCookie(start.headers["Set-Cookie"])[PENDING_COOKIE]
    assert pending["httponly"] is True and pending["samesite"] == "Lax"
    assert pending["path"] == "/ui/oidc"
    # The callback's page moves on to the page asked for, carrying the session cookie.
    text = await response.text()
    assert '<meta http-equiv="refresh" content="0; url=/ui/calls">' in text
    cookies = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        cookies.load(header)
    assert cookies[SESSION_COOKIE]["samesite"] == "Strict"
    assert cookies[SESSION_COOKIE]["httponly"] is True
    assert cookies[PENDING_COOKIE].value == ""  # used once
    calls = await browser.get(service.make_url("/ui/calls"), allow_redirects=False)
    assert calls.status == 200
    assert "Sign out" in await calls.text()
    # The provider checked the verifier against the challenge; the secret went with it.
    (exchange,) = provider.token_requests
    assert exchange["client_secret"] == CLIENT_SECRET
    assert exchange["redirect_uri"] == asked["redirect_uri"][0]
    assert "console sign-in through single sign-on: alice as admin" in router_log(caplog)
    store, *_ = parts(service)
    (signin,) = await store.list_audit(AuditFilters(action="signin"))
    assert (signin.actor, signin.target) == ("alice", "alice")
    assert json.loads(signin.details)["via"] == "oidc"
    assert json.loads(signin.details)["role"] == "admin"
    assert "signed in as alice (admin)" in page_message(await calls.text())
    assert_nothing_secret(provider, router_log(caplog), text)


@pytest.mark.postgres
async def test_a_sign_in_on_a_postgresql_store(tmp_path, write_rules, provider, browser):
    async with (
        fresh_postgres_schema("sso") as store_url,
        _service(tmp_path, write_rules, provider, store_url=store_url) as service,
    ):
        response = await single_sign_on(browser, service, "/ui/deliveries")
        assert response.status == 200
        page = await browser.get(service.make_url("/ui/deliveries"), allow_redirects=False)
        assert page.status == 200


async def test_the_highest_role_of_the_matching_entries_wins(
    tmp_path, write_rules, provider, browser
):
    provider.user["groups"] = ["ops", "ops-admins"]
    roles = "groups:ops=operator,groups:ops-admins=admin,*=viewer"
    async with _service(tmp_path, write_rules, provider, roles) as service:
        response = await single_sign_on(browser, service)
        assert response.status == 200
        assert await signed_in(browser, service)


@pytest.mark.parametrize(("groups", "role"), [(["ops"], "operator"), (["sales"], "viewer")])
async def test_a_sign_in_gets_the_mapped_role(
    tmp_path, write_rules, provider, browser, groups, role
):
    provider.user["groups"] = groups
    async with _service(tmp_path, write_rules, provider) as service:
        assert (await single_sign_on(browser, service)).status == 200
        page = await browser.get(service.make_url("/ui/silences"), allow_redirects=False)
        text = page_message(await page.text())
        assert page.status == 200
        assert f"signed in as alice ({role})" in text
        csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf is not None
        form = {"csrf": csrf[1], "when": '{"status": "FAILED"}', "for": "1h", "comment": "x"}
        created = await browser.post(
            service.make_url("/ui/silences"), data=form, allow_redirects=False
        )
        # An operator may create a silence; a viewer may not (403 naming the role).
        assert created.status == (303 if role == "operator" else 403), await created.text()


async def test_an_account_no_entry_maps_is_refused_with_a_clear_page(
    tmp_path, write_rules, provider, browser
):
    provider.user["groups"] = "sales"  # a string claim
    async with _service(tmp_path, write_rules, provider, "groups:ops=admin") as service:
        response = await single_sign_on(browser, service)
        assert response.status == 403
        message = page_message(await response.text())
        assert "You signed in at the provider as alice" in message
        assert "ROUTER_OIDC_ROLES gives this account no role here" in message
        assert "groups" in message
        assert not await signed_in(browser, service)


def _now() -> int:
    return int(time.time())


ID_TOKEN_FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("wrong-issuer", {"iss": "https://evil.example"}, "issued by 'https://evil.example'"),
    ("wrong-audience", {"aud": "another-client"}, "meant for 'another-client'"),
    ("expired", {"exp": _now() - 3600, "iat": _now() - 7200}, "The ID token has expired"),
    ("wrong-nonce", {"nonce": "not-this-sign-in"}, "nonce does not match"),
    ("no-nonce", {"nonce": None}, "lacks the claim(s) nonce"),
    ("no-expiry", {"exp": None}, "lacks the claim(s) exp"),
    ("issued-in-future", {"iat": _now() + 3600}, "not valid yet"),
    (
        "several-audiences-no-azp",
        {"aud": ["router-console", "another-client"]},
        "several audiences",
    ),
]


@pytest.mark.parametrize(
    ("claims", "message"),
    [fault[1:] for fault in ID_TOKEN_FAULTS],
    ids=[fault[0] for fault in ID_TOKEN_FAULTS],
)
async def test_an_id_token_failing_a_check_is_refused_naming_it(
    service, provider, browser, caplog, claims, message
):
    provider.claims = claims
    response = await single_sign_on(browser, service)
    text = await response.text()
    assert response.status == 400, page_message(text)
    assert message in page_message(text)
    assert not await signed_in(browser, service)
    assert "single sign-on refused" in router_log(caplog)
    assert_nothing_secret(provider, router_log(caplog), text)
    store, *_ = parts(service)
    (failed,) = await store.list_audit(AuditFilters(action="signin.failed"))
    assert failed.actor == "anonymous" and message in json.loads(failed.details)["reason"]
    assert_nothing_secret(provider, failed.details)


async def test_a_token_signed_with_another_key_is_refused(service, provider, browser, caplog):
    provider.sign_with = new_key(provider.key.kid)  # same key id, another key
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 400
    assert "signature does not match the provider's published keys" in text
    assert not await signed_in(browser, service)
    assert_nothing_secret(provider, router_log(caplog), text)


async def test_a_key_the_provider_does_not_publish_is_looked_up_once_then_refused(
    service, provider, browser
):
    provider.sign_with = new_key("attacker-key")
    response = await single_sign_on(browser, service)
    assert response.status == 400
    assert "a key the provider does not publish" in page_message(await response.text())
    assert provider.jwks_fetches == 2  # the cached set, then once more


async def test_signing_out_ends_a_single_sign_on_session(service, provider, browser):
    assert (await single_sign_on(browser, service)).status == 200
    page = await browser.get(service.make_url("/ui/"), allow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    cookie = browser.cookie_jar.filter_cookies(service.make_url("/ui/"))[SESSION_COOKIE]
    out = await browser.post(
        service.make_url("/ui/logout"), data={"csrf": csrf[1]}, allow_redirects=False
    )
    assert out.status == 303
    # The copied cookie is refused too: the session is gone from the store.
    again = await service.get(
        "/ui/", headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"}, allow_redirects=False
    )
    assert again.status == 303 and "/ui/login" in again.headers["Location"]


async def test_a_rotated_key_is_fetched_again_and_accepted(service, provider, browser):
    assert (await single_sign_on(browser, service)).status == 200
    assert provider.jwks_fetches == 1
    browser.cookie_jar.clear()
    provider.key = new_key("provider-key-2")
    assert (await single_sign_on(browser, service)).status == 200
    assert provider.jwks_fetches == 2
    assert await signed_in(browser, service)
    browser.cookie_jar.clear()
    assert (await single_sign_on(browser, service)).status == 200
    assert provider.jwks_fetches == 2  # cached again


async def _code_and_state(browser, service) -> tuple[str, str]:
    """Start a sign-in (the pending cookie set) and get a code from the provider,
    without coming back to the callback."""
    start = await browser.get(service.make_url("/ui/oidc/start"), allow_redirects=False)
    authorize = await browser.get(start.headers["Location"], allow_redirects=False)
    back = parse_qs(urlsplit(authorize.headers["Location"]).query)
    return back["code"][0], back["state"][0]


async def test_a_callback_whose_state_does_not_match_is_refused(service, provider, browser):
    code, state = await _code_and_state(browser, service)
    callback = service.make_url("/ui/oidc/callback").with_query(code=code, state=state + "x")
    response = await browser.get(callback)
    text = page_message(await response.text())
    assert response.status == 400
    assert "state does not match" in text
    assert provider.token_requests == []  # refused before the code is spent
    assert not await signed_in(browser, service)


async def test_a_callback_with_no_sign_in_under_way_is_refused(service, provider, browser):
    code, state = await _code_and_state(browser, service)
    browser.cookie_jar.clear()  # another browser, or the pending cookie gone
    callback = service.make_url("/ui/oidc/callback").with_query(code=code, state=state)
    response = await browser.get(callback)
    assert response.status == 400
    assert "No single sign-on is under way" in page_message(await response.text())


async def test_a_replayed_code_is_refused(service, provider, browser):
    response = await single_sign_on(browser, service)
    assert response.status == 200
    used_callback = response.url
    # The same callback again: its pending sign-in is spent.
    again = await browser.get(used_callback)
    assert again.status == 400
    assert "No single sign-on is under way" in page_message(await again.text())
    # The old code with a fresh sign-in's state: the provider refuses the spent code.
    browser.cookie_jar.clear()
    _, state = await _code_and_state(browser, service)
    old_code = parse_qs(used_callback.query_string)["code"][0]
    replay = service.make_url("/ui/oidc/callback").with_query(code=old_code, state=state)
    response = await browser.get(replay)
    text = page_message(await response.text())
    assert response.status == 400
    assert "refused the sign-in code (invalid_grant" in text
    assert "used already" in text
    assert not await signed_in(browser, service)


async def test_a_pkce_verifier_that_does_not_match_is_refused(service, provider, browser):
    provider.wrong_challenge = True
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 400
    assert "invalid_grant: PKCE verification failed" in text
    assert not await signed_in(browser, service)


async def test_a_refusal_from_the_provider_is_a_clear_page(service, provider, browser):
    start = await browser.get(service.make_url("/ui/oidc/start"), allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    callback = service.make_url("/ui/oidc/callback").with_query(
        error="access_denied", error_description="The user said no", state=state
    )
    response = await browser.get(callback)
    assert response.status == 403
    assert "did not sign you in (access_denied: The user said no)" in page_message(
        await response.text()
    )


async def test_failed_callbacks_count_in_the_credential_limit(service, provider, browser):
    for _ in range(5):
        response = await browser.get(service.make_url("/ui/oidc/callback?code=x&state=y"))
        assert response.status == 400
    response = await browser.get(service.make_url("/ui/oidc/callback?code=x&state=y"))
    assert response.status == 429
    assert "Retry-After" in response.headers


async def password_sign_in_works(service) -> None:
    response = await service.post(
        "/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/"}, allow_redirects=False
    )
    assert response.status == 303
    assert (await service.get("/ui/", allow_redirects=False)).status == 200


async def test_a_provider_that_answers_errors_gives_a_clear_page(
    service, provider, browser, caplog
):
    provider.discovery_status = 500
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 502
    assert "Single sign-on is not available" in text
    assert "HTTP 500 for its discovery document" in text
    assert "Signing in with a password or token still works" in text
    await password_sign_in_works(service)


async def test_a_provider_that_cannot_be_reached_gives_a_clear_page(service, provider, browser):
    issuer = provider.issuer
    await provider.close()
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 503
    assert f"provider at {issuer} cannot be reached" in text
    await password_sign_in_works(service)


async def test_a_token_endpoint_that_fails_gives_a_clear_page(service, provider, browser):
    provider.token_status = 503
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 502
    assert "token endpoint refused the sign-in (server_error)" in text
    assert not await signed_in(browser, service)


async def test_a_wrong_client_secret_names_the_settings_to_check(
    service, provider, browser, caplog
):
    provider.client_secret = "the-provider-expects-another-secret"
    response = await single_sign_on(browser, service)
    text = page_message(await response.text())
    assert response.status == 502
    assert "check ROUTER_OIDC_CLIENT_ID and ROUTER_OIDC_CLIENT_SECRET" in text
    assert CLIENT_SECRET not in text and CLIENT_SECRET not in router_log(caplog)


@pytest.mark.parametrize(
    ("advertise", "message"),
    [
        (
            {"token_endpoint": "http://sso.example.com/token"},
            "token_endpoint (http://sso.example.com/token) is not https",
        ),
        ({"jwks_uri": None}, "discovery document has no jwks_uri"),
        (
            {"id_token_signing_alg_values_supported": ["HS256", "none"]},
            "signs ID tokens with no algorithm the router accepts",
        ),
    ],
)
async def test_a_discovery_document_the_router_cannot_use_is_named(
    service, provider, browser, advertise, message
):
    provider.advertise = advertise
    response = await single_sign_on(browser, service)
    assert response.status == 502
    assert message in page_message(await response.text())
    assert provider.token_requests == []


async def test_a_discovery_document_naming_another_issuer_is_refused(
    tmp_path, write_rules, provider, browser
):
    port = free_port()
    settings = provider.settings(f"http://127.0.0.1:{port}")
    settings = type(settings)(
        issuer=f"{provider.issuer}/",  # one slash more than the provider's own
        client_id=settings.client_id,
        roles=settings.roles,
        public_url=settings.public_url,
        client_secret=settings.client_secret,
    )
    async with running_service(
        write_rules(RULES), tmp_path / "sso.db", oidc=settings, port=port
    ) as service:
        response = await single_sign_on(browser, service)
        assert response.status == 502
        assert "must be the provider's issuer exactly" in page_message(await response.text())
