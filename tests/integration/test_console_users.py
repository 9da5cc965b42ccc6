"""Named users and roles through the real app (DESIGN.md section 14): sign-in by name and
password, personal tokens as bearer tokens, the role each route needs (403 with the
reason), sessions in the store (signed out on every replica and across restarts), the
users file read again on reload, and one limit on failed credentials for all of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from router.operators.users import User, Users, hash_secret, new_token, write_users_file
from router.web.ui.auth import SESSION_COOKIE
from tests.conftest import fresh_event
from tests.integration.conftest import fresh_postgres_schema
from tests.integration.test_console import csrf_of, rules
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

PASSWORDS = {"vera": "vera-password-1", "otto": "otto-password-1", "ada": "ada-password-1"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}


@pytest.fixture(scope="module")
def team() -> tuple[Users, dict[str, str]]:
    """Users of each role (hashed once: argon2 is slow) and each one's personal token."""
    users, tokens = [], {}
    for name, role in ROLES.items():
        token, user = new_token(User(name, role, hash_secret(PASSWORDS[name])))
        users.append(user)
        tokens[name] = token
    return Users.of(users), tokens


@pytest.fixture
def users_path(tmp_path: Path, team) -> Path:
    path = tmp_path / "users.yaml"
    write_users_file(path, team[0])
    return path


@pytest.fixture
async def service(tmp_path, write_rules, receiver, users_path):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "users.db", users_file=users_path) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(client, name: str, password: str | None = None, next_path: str = "/ui/"):
    return await client.post(
        "/ui/login",
        data={"username": name, "password": password or PASSWORDS[name], "next": next_path},
        allow_redirects=False,
    )


async def delivered_delivery(client, receiver) -> str:
    await post_event(client, fresh_event(status="FAILED"))
    await wait_for(lambda: len(receiver.received) == 1)
    store, *_ = parts(client)
    (view,) = await store.list_deliveries(sink="crm")
    return view.id


async def test_a_viewer_may_not_replay_through_the_admin_api_and_an_operator_may(
    service, receiver, team
):
    _, tokens = team
    delivery = await delivered_delivery(service, receiver)
    url = f"/admin/deliveries/{delivery}/replay"
    refused = await service.post(url, headers=bearer(tokens["vera"]))
    assert refused.status == 403
    assert await refused.json() == {"error": "role viewer may not replay; needs operator"}
    listed = await service.get("/admin/deliveries", headers=bearer(tokens["vera"]))
    assert listed.status == 200, "a viewer reads"
    done = await service.post(url, headers=bearer(tokens["otto"]))
    assert done.status == 200
    assert (await done.json())["status"] == "requeued"
    await wait_for(lambda: len(receiver.received) == 2)


async def test_each_role_reaches_as_far_as_the_table_says(service, team):
    _, tokens = team
    pause = "/admin/sinks/crm/pause"
    answer = await service.post(pause, json={"for": "1h"}, headers=bearer(tokens["vera"]))
    assert answer.status == 403
    assert "role viewer may not pause sinks; needs operator" in (await answer.json())["error"]
    answer = await service.post(pause, json={"for": "1h"}, headers=bearer(tokens["otto"]))
    assert answer.status == 200
    answer = await service.post("/admin/reload", headers=bearer(tokens["otto"]))
    assert answer.status == 403
    assert (await answer.json())["error"] == "role operator may not reload; needs admin"
    for token in (tokens["ada"], ADMIN_TOKEN):
        answer = await service.post("/admin/reload", headers=bearer(token))
        assert answer.status == 200, await answer.text()


async def test_a_viewer_sees_no_usable_replay_and_is_refused_with_the_reason(service, receiver):
    delivery = await delivered_delivery(service, receiver)
    assert (await sign_in(service, "vera")).status == 303
    page = await (await service.get(f"/ui/deliveries/{delivery}")).text()
    assert "signed in as <strong>vera</strong> (viewer)" in page
    assert re.search(r"<button type=\"submit\" disabled[^>]*>Replay</button>", page)
    response = await service.post(
        f"/ui/deliveries/{delivery}/replay", data={"csrf": csrf_of(page)}, allow_redirects=False
    )
    assert response.status == 403
    text = await response.text()
    assert "signed in as vera (viewer): role viewer may not replay; needs operator" in text
    store, *_ = parts(service)
    assert (await store.get_delivery(delivery)).status == "delivered", "nothing changed"


async def test_an_operator_replays_from_the_console(service, receiver):
    delivery = await delivered_delivery(service, receiver)
    assert (await sign_in(service, "otto")).status == 303
    page = await (await service.get(f"/ui/deliveries/{delivery}")).text()
    assert "(operator)" in page and "disabled" not in page.split("Replay</button>")[0][-200:]
    response = await service.post(
        f"/ui/deliveries/{delivery}/replay",
        data={"csrf": csrf_of(page), "confirm": "yes"},  # it was delivered: confirmed
        allow_redirects=False,
    )
    assert response.status == 303
    await wait_for(lambda: len(receiver.received) == 2)


async def test_the_actor_is_on_the_request_for_the_audit(tmp_path, write_rules, receiver, team):
    from router.web.actors import actor_of
    from router.web.app import ServiceSettings, build_app
    from router.web.credentials import PRINCIPAL
    from router.web.webhook import ApiKeys
    from tests.service import fast_engine

    users_path = tmp_path / "users.yaml"
    write_users_file(users_path, team[0])
    seen: list[tuple[str, str, str]] = []

    @web.middleware
    async def record(request: web.Request, handler):
        try:
            return await handler(request)
        finally:  # a sign-in answers by raising its redirect
            if PRINCIPAL in request:
                seen.append((request.path, actor_of(request), request[PRINCIPAL].role))

    settings = ServiceSettings(
        config_path=str(write_rules(rules(receiver.url()))),
        store_url=f"sqlite:///{tmp_path / 'actor.db'}",
        api_keys=ApiKeys(["k"]),
        admin_token=ADMIN_TOKEN,
        engine=fast_engine(),
        watch_interval=0,
        users_file=str(users_path),
    )
    app = build_app(settings)
    app.middlewares.insert(0, record)
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(app)) as client:
        await client.get("/admin/deliveries", headers=bearer(team[1]["otto"]))
        await client.get("/admin/deliveries", headers=bearer(ADMIN_TOKEN))
        await sign_in(client, "vera")
        await client.get("/ui/deliveries")
    assert ("/admin/deliveries", "otto", "operator") in seen
    assert ("/admin/deliveries", "token", "admin") in seen
    assert ("/ui/login", "vera", "viewer") in seen
    assert ("/ui/deliveries", "vera", "viewer") in seen


async def test_personal_tokens_are_bearer_tokens_and_wrong_ones_are_refused(service, team):
    _, tokens = team
    answer = await service.get("/admin/silences", headers=bearer(tokens["vera"]))
    assert answer.status == 200
    forged = tokens["vera"][:-1] + ("0" if tokens["vera"][-1] != "0" else "1")
    for wrong in (forged, tokens["vera"].replace("rr_vera_", "rr_otto_"), "rr_nobody_x_y"):
        answer = await service.get("/admin/silences", headers=bearer(wrong))
        assert answer.status == 401, wrong


async def test_failed_passwords_and_tokens_share_one_limit(service, team):
    for _ in range(3):
        response = await sign_in(service, "vera", "wrong password")
        assert response.status == 401
        assert "not right" in await response.text()
    assert (await sign_in(service, "nobody", "any password")).status == 401
    assert (await service.get("/admin/calls", headers=bearer("rr_vera_x_y"))).status == 401
    assert (await service.get("/admin/calls", headers=bearer(team[1]["vera"]))).status == 429
    assert (await sign_in(service, "vera")).status == 429


async def test_without_an_admin_token_a_users_file_opens_the_console_and_api(
    tmp_path, write_rules, receiver, users_path, team
):
    path = write_rules(rules(receiver.url()))
    async with running_service(
        path, tmp_path / "r.db", admin_token=None, users_file=users_path
    ) as client:
        login = await client.get("/ui/login")
        assert login.status == 200
        page = await login.text()
        assert 'name="username"' in page and 'name="password"' in page
        assert 'name="token"' not in page, "no admin token to sign in with"
        assert (await client.get("/admin/calls")).status == 401
        assert (await client.get("/admin/calls", headers=bearer(team[1]["ada"]))).status == 200
        assert (await client.get("/admin/calls", headers=bearer("anything"))).status == 401
        response = await client.post("/ui/login", data={"token": "anything"})
        assert response.status == 401


async def test_with_both_the_form_offers_names_and_the_admin_token(service):
    page = await (await service.get("/ui/login")).text()
    assert 'name="username"' in page and 'name="token"' in page
    assert "Sign in with the admin token" in page
    response = await service.post(
        "/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/"}, allow_redirects=False
    )
    assert response.status == 303
    assert "signed in as <strong>token</strong> (admin)" in await (await service.get("/ui/")).text()


async def test_a_removed_user_is_signed_out_and_a_new_role_applies_after_a_reload(
    service, users_path, team
):
    users, _ = team
    assert (await sign_in(service, "otto")).status == 303
    assert "(operator)" in await (await service.get("/ui/")).text()
    demoted = Users.of([*(u for u in users if u.name != "otto"), _with_role(users, "otto")])
    write_users_file(users_path, demoted)
    assert (await service.post("/admin/reload", headers=bearer(ADMIN_TOKEN))).status == 200
    assert "(viewer)" in await (await service.get("/ui/")).text()
    write_users_file(users_path, users.without("otto"))
    assert (await service.post("/admin/reload", headers=bearer(ADMIN_TOKEN))).status == 200
    assert (await service.get("/ui/", allow_redirects=False)).status == 303


def _with_role(users: Users, name: str) -> User:
    user = users.find(name)
    assert user is not None
    return User(user.name, "viewer", user.password_hash, user.tokens)


async def test_an_invalid_users_file_on_reload_keeps_the_users_and_says_why(
    service, users_path, team
):
    users_path.write_text("users:\n  - name: vera\n    role: emperor\n")
    answer = await service.post("/admin/reload", headers=bearer(ADMIN_TOKEN))
    assert answer.status == 400
    body = await answer.json()
    assert body["status"] == "invalid"
    assert body["errors"] == [
        f"{users_path}:3:11: role 'emperor' is not one of viewer, operator, admin"
    ]
    answer = await service.get("/admin/calls", headers=bearer(team[1]["vera"]))
    assert answer.status == 200, "the users read before stay"
    assert (await sign_in(service, "otto")).status == 303


def _cookie(client) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/ui/"))[SESSION_COOKIE].value


async def _sign_out(client) -> None:
    page = await (await client.get("/ui/")).text()
    response = await client.post("/ui/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert response.status == 303


async def _with_cookie(client, cookie: str, path: str = "/ui/") -> int:
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie}, client.make_url("/ui/"))
    return (await client.get(path, allow_redirects=False)).status


@pytest.mark.postgres
async def test_signing_out_on_one_replica_ends_the_session_on_another(
    tmp_path, write_rules, receiver, users_path
):
    path = write_rules(rules(receiver.url()))
    async with fresh_postgres_schema("sessions") as url:
        one_service = running_service(path, tmp_path / "a.db", store_url=url, users_file=users_path)
        two_service = running_service(path, tmp_path / "b.db", store_url=url, users_file=users_path)
        async with one_service as one, two_service as two:
            assert (await sign_in(one, "otto")).status == 303
            cookie = _cookie(one)
            assert await _with_cookie(two, cookie) == 200, "the other replica knows the session"
            await _sign_out(one)
            assert await _with_cookie(two, cookie) == 303
            assert await _with_cookie(one, cookie) == 303


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_a_signed_out_cookie_stays_refused_after_a_restart(
    kind, tmp_path, write_rules, receiver, users_path
):
    path = write_rules(rules(receiver.url()))
    async with contextlib_schema(kind, tmp_path) as url:
        async with running_service(
            path, tmp_path / "s.db", store_url=url, users_file=users_path
        ) as c:
            assert (await sign_in(c, "vera")).status == 303
            kept = _cookie(c)
            assert (await sign_in(c, "vera")).status == 303
            ended = _cookie(c)
            await _sign_out(c)
        async with running_service(
            path, tmp_path / "s.db", store_url=url, users_file=users_path
        ) as c:
            assert await _with_cookie(c, ended) == 303, "signed out before the restart"
            assert await _with_cookie(c, kept) == 200, "a session survives a restart"


def contextlib_schema(kind: str, tmp_path: Path):
    import contextlib

    if kind == "postgresql":
        return fresh_postgres_schema("restart")

    @contextlib.asynccontextmanager
    async def sqlite():
        yield f"sqlite:///{tmp_path / 'sessions.db'}"

    return sqlite()
