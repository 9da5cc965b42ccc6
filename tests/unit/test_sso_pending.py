"""The pending sign-in's cookie (router.web.ui.sso): what it holds comes back only when it
is signed with the same key and not expired; a tampered or foreign one is refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.web.ui.sso import Pending, PendingCookies

PENDING = Pending("state-1", "nonce-1", "verifier-1", "/ui/calls?status=FAILED", 1000)


def test_a_cookie_gives_back_what_it_holds_until_it_expires() -> None:
    cookies = PendingCookies("shared-secret")
    value = cookies.issue(PENDING)
    assert cookies.check(value, 999.0) == PENDING
    assert cookies.check(value, 1000.0) is None
    assert PendingCookies("shared-secret").check(value, 10.0) == PENDING  # another replica


def test_a_cookie_signed_with_another_key_is_refused() -> None:
    value = PendingCookies("shared-secret").issue(PENDING)
    assert PendingCookies("another-secret").check(value, 10.0) is None


def test_without_a_shared_secret_each_process_has_its_own_key() -> None:
    value = PendingCookies("").issue(PENDING)
    assert PendingCookies("").check(value, 10.0) is None


def test_a_tampered_cookie_is_refused() -> None:
    cookies = PendingCookies("shared-secret")
    payload, _, signature = cookies.issue(PENDING).rpartition(".")
    forged = cookies.issue(Pending("state-2", "nonce-1", "verifier-1", "/ui/", 10**12))
    assert cookies.check(f"{forged.rpartition('.')[0]}.{signature}", 10.0) is None
    flipped = "1" if signature[-1] == "0" else "0"
    assert cookies.check(f"{payload}.{signature[:-1]}{flipped}", 10.0) is None
    assert cookies.check(payload, 10.0) is None


@given(st.text(max_size=300))
def test_any_cookie_text_is_refused_without_an_error(text: str) -> None:
    assert PendingCookies("shared-secret").check(text, 10.0) is None
