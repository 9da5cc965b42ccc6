"""Console sessions: signed, expiring cookies; CSRF tokens bound to their session; sign-out;
the constant-time token check (failed sign-ins: tests/unit/test_credential_limits.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.web.ui.auth import Sessions, token_matches

NOW = 1_800_000_000.0


def test_a_session_cookie_round_trips_until_it_expires() -> None:
    sessions = Sessions("admin-token", lifetime=3600)
    session, cookie = sessions.issue(NOW)
    assert sessions.check(cookie, NOW + 3599) == session
    assert sessions.check(cookie, NOW + 3600) is None


def test_a_cookie_signed_under_another_token_is_refused() -> None:
    _, cookie = Sessions("old-token").issue(NOW)
    assert Sessions("new-token").check(cookie, NOW) is None


@given(st.text(max_size=200))
def test_any_forged_cookie_value_is_refused(value: str) -> None:
    assert Sessions("admin-token").check(value, NOW) is None


def test_changing_any_part_of_a_cookie_breaks_it() -> None:
    sessions = Sessions("admin-token")
    _, cookie = sessions.issue(NOW)
    expires, session_id, signature = cookie.split(".")
    for forged in (
        f"{int(expires) + 1}.{session_id}.{signature}",
        f"{expires}.{session_id}x.{signature}",
        f"{expires}.{session_id}.{signature[:-1]}0",
        f"{expires}.{session_id}",
    ):
        if forged != cookie:
            assert sessions.check(forged, NOW) is None, forged


def test_the_csrf_token_belongs_to_its_session() -> None:
    sessions = Sessions("admin-token")
    first, _ = sessions.issue(NOW)
    second, _ = sessions.issue(NOW)
    assert sessions.csrf_ok(first, first.csrf_token)
    assert not sessions.csrf_ok(first, second.csrf_token)
    assert not sessions.csrf_ok(first, None)
    assert not sessions.csrf_ok(first, "\udc80")


def test_signing_out_refuses_that_cookie_but_not_others() -> None:
    sessions = Sessions("admin-token")
    ended, ended_cookie = sessions.issue(NOW)
    _, other_cookie = sessions.issue(NOW)
    sessions.end(ended, NOW)
    assert sessions.check(ended_cookie, NOW + 1) is None
    assert sessions.check(other_cookie, NOW + 1) is not None


def test_token_comparison_takes_any_text() -> None:
    assert token_matches("admin-token", "admin-token")
    assert not token_matches("admin-token\udc80", "admin-token")
    assert not token_matches("", "admin-token")
