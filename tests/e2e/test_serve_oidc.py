"""`revring-router serve` with single sign-on set up from the environment: a missing or
wrong ROUTER_OIDC_* / ROUTER_PUBLIC_URL stops it with exit 2 naming the variable; set
right, a real process signs a person in through the test provider."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.test_cli_rules import run
from tests.e2e.test_serve import free_port, start_server, stop, wait_healthy
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, ROLES, OidcProvider

pytestmark = pytest.mark.slow

GOOD = {
    "ROUTER_ADMIN_TOKEN": "e2e-admin-token",
    "ROUTER_OIDC_ISSUER": "https://sso.example.com",
    "ROUTER_OIDC_CLIENT_ID": CLIENT_ID,
    "ROUTER_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    "ROUTER_OIDC_ROLES": ROLES,
    "ROUTER_PUBLIC_URL": "https://router.example.com",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"ROUTER_PUBLIC_URL": ""},
            "ROUTER_PUBLIC_URL is required with ROUTER_OIDC_ISSUER",
        ),
        (
            {"ROUTER_OIDC_ISSUER": "http://sso.example.com"},
            "ROUTER_OIDC_ISSUER must be https (plain http only on a loopback address),"
            " got 'http://sso.example.com'",
        ),
        ({"ROUTER_OIDC_CLIENT_ID": ""}, "ROUTER_OIDC_CLIENT_ID is required"),
        ({"ROUTER_OIDC_ROLES": ""}, "ROUTER_OIDC_ROLES is required"),
        (
            {"ROUTER_OIDC_ROLES": "groups:ops=root"},
            "ROUTER_OIDC_ROLES: 'groups:ops=root': the role must be viewer, operator or admin",
        ),
    ],
)
def test_serve_with_a_missing_or_wrong_sso_setting_exits_2_naming_it(
    changes: dict[str, str], message: str
) -> None:
    result = run("serve", "--no-auth", env={**GOOD, **changes})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"revring-router: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert CLIENT_SECRET not in result.stderr


async def test_serve_signs_a_person_in_through_the_provider_alone(tmp_path) -> None:
    provider = await OidcProvider().start()
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsinks: {}\nrules: []\n")
    env = {
        **GOOD,
        "ROUTER_OIDC_ISSUER": provider.issuer,
        "ROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}/",
        "ROUTER_ADMIN_TOKEN": "",  # single sign-on alone serves the console
    }
    process = start_server(rules, tmp_path / "router.db", port, env=env)
    try:
        await wait_healthy(port, process)
        base = f"http://127.0.0.1:{port}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            login = await (await browser.get(f"{base}/ui/login")).text()
            assert "Sign in with single sign-on" in login
            assert 'name="token"' not in login and 'name="password"' not in login
            response = await browser.get(f"{base}/ui/oidc/start?next=/ui/silences")
            assert response.status == 200, await response.text()
            assert "url=/ui/silences" in await response.text()
            page = await browser.get(f"{base}/ui/silences", allow_redirects=False)
            assert page.status == 200
            assert "Sign out" in await page.text()
        (exchange,) = provider.token_requests
        assert exchange["redirect_uri"] == f"{base}/ui/oidc/callback"
    finally:
        stop(process)
        await provider.close()
    log = (tmp_path / f"serve-{port}.err").read_text()
    assert "console sign-in through single sign-on: alice as admin" in log
    for secret in (CLIENT_SECRET, *provider.issued, *provider.grants):
        assert secret not in log
