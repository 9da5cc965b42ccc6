"""Console sessions kept in the store: the cookie's id is stored only as a hash; a session
is bound to the credential it started with (the admin token, the user's password) and
follows the users as last read; CSRF tokens belong to their session; signing out ends it
(the store itself: tests/integration/test_console_users.py)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from router.operators import Principal, Users, UsersFile
from router.operators.users import User, hash_secret
from router.store import SessionRecord
from router.web.credentials import Credentials
from router.web.ui.auth import Sessions, session_hash

NOW = 1_800_000_000.0
HASH = hash_secret("alice's password")


class FakeSessions:
    """The store's sessions, in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, SessionRecord] = {}

    async def start_session(self, session: SessionRecord) -> None:
        self.rows[session.id_hash] = session

    async def session(self, id_hash: str, now: float) -> SessionRecord | None:
        found = self.rows.get(id_hash)
        return found if found is not None and found.expires_at > now else None

    async def end_session(self, id_hash: str) -> bool:
        return self.rows.pop(id_hash, None) is not None


def users_file(*users: User) -> UsersFile:
    holder = UsersFile("users.yaml")
    holder.users = Users.of(users)
    return holder


def sessions_with(admin_token: str | None = "admin-token", *users: User) -> Sessions:
    return Sessions(FakeSessions(), Credentials(admin_token, users_file(*users)), lifetime=3600)


ADMIN = Principal("token", "admin", "token")
ALICE = Principal("alice", "operator", "password")


async def test_a_session_round_trips_until_it_expires_and_stores_no_cookie() -> None:
    sessions = sessions_with()
    session, cookie = await sessions.start(ADMIN, NOW)
    store = sessions.store
    assert isinstance(store, FakeSessions)
    (stored,) = store.rows.values()
    assert stored.id_hash == session_hash(cookie) and cookie not in repr(stored)
    assert await sessions.check(cookie, NOW + 3599) == session
    assert await sessions.check(cookie, NOW + 3600) is None


async def test_changing_the_admin_token_ends_its_sessions() -> None:
    sessions = sessions_with("old-token")
    _, cookie = await sessions.start(ADMIN, NOW)
    sessions.credentials.admin_token = "new-token"
    assert await sessions.check(cookie, NOW) is None


@settings(max_examples=50)
@given(st.text(max_size=300))
async def test_any_forged_cookie_value_is_refused(value: str) -> None:
    sessions = sessions_with()
    await sessions.start(ADMIN, NOW)
    assert await sessions.check(value, NOW) is None


async def test_a_users_session_follows_the_users_file() -> None:
    alice = User("alice", "operator", HASH)
    sessions = sessions_with(None, alice)
    _, cookie = await sessions.start(ALICE, NOW)
    found = await sessions.check(cookie, NOW)
    assert found is not None and found.principal == ALICE
    holder = sessions.credentials.users_file
    assert holder is not None
    holder.users = Users.of([replace(alice, role="viewer")])
    found = await sessions.check(cookie, NOW)
    assert found is not None and found.principal.role == "viewer", "the role as read now"
    holder.users = Users.of([replace(alice, password_hash=hash_secret("a new password"))])
    assert await sessions.check(cookie, NOW) is None, "a new password ends the session"
    _, cookie = await sessions.start(ALICE, NOW)
    holder.users = Users()
    assert await sessions.check(cookie, NOW) is None, "a removed user is signed out"


async def test_a_single_sign_on_session_keeps_the_role_it_started_with() -> None:
    sessions = sessions_with(None)
    principal = Principal("carol@example.com", "operator", "oidc")
    _, cookie = await sessions.start(principal, NOW)
    found = await sessions.check(cookie, NOW)
    assert found is not None and found.principal == principal


async def test_the_csrf_token_belongs_to_its_session() -> None:
    sessions = sessions_with()
    first, _ = await sessions.start(ADMIN, NOW)
    second, _ = await sessions.start(ADMIN, NOW)
    assert sessions.csrf_ok(first, first.csrf_token)
    assert not sessions.csrf_ok(first, second.csrf_token)
    assert not sessions.csrf_ok(first, None)
    assert not sessions.csrf_ok(first, "\udc80")


async def test_signing_out_refuses_that_cookie_but_not_others() -> None:
    sessions = sessions_with()
    ended, ended_cookie = await sessions.start(ADMIN, NOW)
    _, other_cookie = await sessions.start(ADMIN, NOW)
    await sessions.end(ended)
    assert await sessions.check(ended_cookie, NOW + 1) is None
    assert await sessions.check(other_cookie, NOW + 1) is not None


def test_token_comparison_takes_any_text() -> None:
    credentials = Credentials("admin-token", None)
    assert credentials.admin_token_matches("admin-token")
    assert not credentials.admin_token_matches("admin-token\udc80")
    assert not credentials.admin_token_matches("")
    assert not Credentials(None, None).admin_token_matches("")
