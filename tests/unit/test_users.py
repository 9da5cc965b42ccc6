"""The users file (DESIGN.md section 14): every problem at its line, the roles' order, argon2
hashes of passwords and personal tokens, and the one table of what each route needs."""

from __future__ import annotations

import pytest

from router.operators import Principal, Users, UsersFileInvalid, role_allows
from router.operators.users import (
    User,
    check_password,
    check_token,
    dump_users,
    hash_secret,
    new_token,
    parse_users,
    secret_matches,
    split_token,
    token_user,
)
from router.web.permissions import ACTION_ROLES, may, permission, refusal

PASSWORD = "correct horse battery"
HASH = hash_secret(PASSWORD)


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(UsersFileInvalid) as caught:
        parse_users(text, "users.yaml")
    assert str(caught.value).startswith("users.yaml:")
    return [(problem.line, problem.message) for problem in caught.value.problems]


def test_a_valid_file_gives_each_user_with_their_role() -> None:
    text = f"""
users:
  - name: alice
    role: admin
    password_hash: "{HASH}"
  - name: bob
    role: viewer
"""
    users = parse_users(text)
    assert [(u.name, u.role) for u in users] == [("alice", "admin"), ("bob", "viewer")]
    alice = users.find("alice")
    assert alice is not None and alice.password_hash == HASH
    assert users.find("carol") is None


def test_an_empty_file_or_list_holds_no_users() -> None:
    assert len(parse_users("")) == 0
    assert len(parse_users("users:\n")) == 0
    assert len(parse_users("users: []\n")) == 0


def test_yaml_that_does_not_parse_is_reported_at_its_line() -> None:
    assert problems("users:\n  - name: alice\n    role: [admin\n") == [
        (4, "not YAML: expected ',' or ']', but got '<stream end>'")
    ]


def test_every_problem_of_every_user_is_reported_at_its_line() -> None:
    text = """users:
  - name: alice
    role: boss
  - name: "not a name"
    role: viewer
  - role: operator
  - name: dave
    role: viewer
    password_hash: plain-text-password
    colour: blue
  - name: erin
    role: viewer
  - name: erin
    role: admin
"""
    found = problems(text)
    assert (3, "role 'boss' is not one of viewer, operator, admin") in found
    assert any(line == 4 and "is not a user name" in message for line, message in found)
    assert (6, "user None needs a role (viewer | operator | admin)") not in found
    assert any(line == 6 and "needs a name" in message for line, message in found)
    assert any(line == 9 and "not an argon2 hash" in message for line, message in found)
    assert any(line == 10 and "unknown key 'colour'" in message for line, message in found)
    assert (13, "user 'erin' is listed twice") in found
    assert "plain-text-password" not in str(found), "a secret never in a message"


def test_a_file_that_is_not_a_list_of_users_says_so() -> None:
    assert problems("- alice\n") == [(1, "expected a mapping with a `users` list")]
    assert problems("users: alice\n") == [(1, "`users` must be a list of users")]
    assert problems("people: []\n")[0] == (1, "unknown key 'people' (the file holds `users`)")


def test_roles_are_ordered_viewer_operator_admin() -> None:
    assert role_allows("admin", "operator") and role_allows("admin", "viewer")
    assert role_allows("operator", "operator") and role_allows("operator", "viewer")
    assert not role_allows("operator", "admin")
    assert not role_allows("viewer", "operator")


def test_a_password_is_kept_as_an_argon2id_hash_and_checked_against_it() -> None:
    assert HASH.startswith("$argon2id$") and PASSWORD not in HASH
    assert hash_secret(PASSWORD) != HASH, "salted: the same password hashes differently"
    assert secret_matches(HASH, PASSWORD)
    assert not secret_matches(HASH, PASSWORD + " ")
    assert not secret_matches("not a hash", PASSWORD)
    users = Users.of([User("alice", "operator", HASH), User("tokens-only", "viewer")])
    assert check_password(users, "alice", PASSWORD) == users.find("alice")
    assert check_password(users, "alice", "wrong") is None
    assert check_password(users, "mallory", PASSWORD) is None
    assert check_password(users, "tokens-only", "") is None


def test_a_personal_token_names_its_user_and_the_one_hash_to_verify() -> None:
    alice = User("al_ice", "operator", HASH)
    first, alice = new_token(alice)
    second, alice = new_token(alice)
    users = Users.of([alice])
    assert first.startswith("rr_al_ice_")
    assert all(secret not in dump_users(users) for secret in (first, second))
    assert split_token(first) is not None and split_token(first)[0] == "al_ice"
    for token, index in ((first, 0), (second, 1)):
        found = token_user(users, token)
        assert found is not None and found[1] == alice.tokens[index]
        assert check_token(users, token) == alice
    assert check_token(users, first[:-1] + ("0" if first[-1] != "0" else "1")) is None
    assert check_token(users, first.replace("rr_al_ice_", "rr_bob_")) is None
    for garbage in ("", "rr_", "rr__", "Bearer x", "rr_al_ice_short_secret"):
        assert token_user(users, garbage) is None


def test_the_file_written_reads_back_the_same() -> None:
    _, alice = new_token(User("alice", "admin", HASH))
    users = Users.of([alice, User("bob", "viewer")])
    assert parse_users(dump_users(users)) == users


VIEWER, OPERATOR, ADMIN = (Principal("x", role) for role in ("viewer", "operator", "admin"))


@pytest.mark.parametrize(
    ("method", "route", "least"),
    [
        ("GET", "/admin/deliveries", "viewer"),
        ("GET", "/ui/calls/{id}", "viewer"),
        ("GET", "/admin/some-future-list", "viewer"),
        ("POST", "/ui/rules/playground", "viewer"),
        ("POST", "/admin/deliveries/{id}/replay", "operator"),
        ("POST", "/ui/deliveries/{id}/replay", "operator"),
        ("POST", "/ui/calls/{id}/replay/{delivery}", "operator"),
        ("POST", "/admin/silences", "operator"),
        ("DELETE", "/admin/silences/{id}", "operator"),
        ("POST", "/ui/silences/{id}/expire", "operator"),
        ("POST", "/admin/sinks/{name}/pause", "operator"),
        ("POST", "/admin/sinks/{name}/resume", "operator"),
        ("POST", "/admin/deliveries/{id}/acknowledge", "operator"),
        ("POST", "/admin/reload", "admin"),
        ("POST", "/admin/backfill", "admin"),
        ("POST", "/admin/events/{id}/release", "admin"),
        ("POST", "/admin/forget", "admin"),
        ("POST", "/admin/some-future-change", "admin"),
        ("PUT", "/admin/deliveries", "admin"),
        ("DELETE", None, "admin"),
    ],
)
def test_each_route_needs_its_role(method: str, route: str | None, least: str) -> None:
    needed = permission(method, route)
    assert needed.role == least
    for principal in (VIEWER, OPERATOR, ADMIN):
        allowed = role_allows(principal.role, needed.role)
        assert (refusal(principal, needed) is None) == allowed


def test_a_refusal_names_the_role_the_action_and_the_role_it_needs() -> None:
    assert (
        refusal(VIEWER, permission("POST", "/admin/deliveries/{id}/replay"))
        == "role viewer may not replay; needs operator"
    )
    assert (
        refusal(OPERATOR, permission("POST", "/admin/reload"))
        == "role operator may not reload; needs admin"
    )


def test_pages_ask_the_same_table_what_a_role_may_do() -> None:
    assert ACTION_ROLES["replay"] == "operator"
    assert not may(VIEWER, "replay") and may(OPERATOR, "replay") and may(ADMIN, "replay")
    assert not may(OPERATOR, "forget") and may(ADMIN, "forget")
    assert not may(ADMIN.__class__("x", "operator"), "an-action-nobody-listed")
    assert not may(None, "read")
