"""`revring-router user add|remove|list|token` as a user runs them, and `serve` with
`ROUTER_USERS_FILE`: an invalid file stops it with FILE:LINE; a token made by `user token`
opens the admin API, and `user remove` closes it again once the running router has read
the file (it watches it, as rules.yaml)."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import aiohttp
import yaml

from tests.e2e.test_cli_rules import run
from tests.e2e.test_serve import finish, free_port, start_server, stop, wait_healthy

PASSWORD = "a long enough password"


def user(path: Path, *args: str, password: str | None = None):
    """`revring-router user ...` on the users file at `path` (named by ROUTER_USERS_FILE)."""
    environ = {"ROUTER_USERS_FILE": str(path)}
    if password is None:
        return run("user", *args, env=environ)
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "router", "user", *args],
        input=password + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **environ},
        timeout=60,
        check=False,
    )


def test_user_add_list_token_and_remove_rewrite_the_file(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    added = user(path, "add", "alice", "--role", "operator", "--password-stdin", password=PASSWORD)
    assert added.returncode == 0, added.stderr
    assert "added user alice (operator)" in added.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()
    stored = yaml.safe_load(path.read_text())["users"]
    assert stored[0]["name"] == "alice" and stored[0]["password_hash"].startswith("$argon2id$")

    made = user(path, "token", "alice")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("rr_alice_") and "shown this once" in made.stderr
    assert token not in path.read_text() and token.rpartition("_")[2] not in path.read_text()

    listed = user(path, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split() == ["alice", "operator", "yes", "1"]
    as_json = user(path, "list", "--json")
    assert as_json.stdout.strip() == (
        '{"name": "alice", "role": "operator", "password": true, "tokens": 1}'
    )

    again = user(path, "add", "alice", "--role", "admin", "--password-stdin", password=PASSWORD)
    assert again.returncode == 1 and "exists; pass --replace" in again.stderr
    replaced = user(
        path, "add", "alice", "--role", "admin", "--replace", "--password-stdin", password=PASSWORD
    )
    assert replaced.returncode == 0, replaced.stderr
    assert user(path, "list").stdout.splitlines()[1].split() == ["alice", "admin", "yes", "1"]

    removed = user(path, "remove", "alice")
    assert removed.returncode == 0 and "removed user alice" in removed.stdout
    assert user(path, "list").stdout.strip() == "no users"
    missing = user(path, "remove", "alice")
    assert missing.returncode == 1 and "no user alice" in missing.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_user_commands_refuse_bad_input_clearly(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    unset = run("user", "list")
    assert unset.returncode == 2 and "set ROUTER_USERS_FILE" in unset.stderr
    short = user(path, "add", "bob", "--role", "viewer", "--password-stdin", password="short")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert not path.exists(), "nothing written"
    bad_name = user(
        path, "add", "bob smith", "--role", "viewer", "--password-stdin", password=PASSWORD
    )
    assert bad_name.returncode == 2 and "is not a user name" in bad_name.stderr
    bad_role = user(path, "add", "bob", "--role", "root", "--password-stdin", password=PASSWORD)
    assert bad_role.returncode == 2 and "invalid choice: 'root'" in bad_role.stderr
    path.write_text("users:\n  - name: bob\n    role: root\n")
    invalid = user(path, "list")
    assert invalid.returncode == 2
    assert f"{path}:3:11: error: role 'root' is not one of viewer, operator, admin" in (
        invalid.stdout
    )
    for result in (unset, short, bad_name, bad_role, invalid):
        assert "Traceback" not in result.stderr


def test_serve_stops_on_a_users_file_that_is_not_valid(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  - name: alice\n    role: admin\n    password_hash: [\n")
    process = start_server(
        rules, tmp_path / "r.db", free_port(), env={"ROUTER_USERS_FILE": str(users)}
    )
    stderr = finish(process)
    assert process.returncode == 1
    assert f"revring-router: {users} is invalid" in stderr
    assert f"{users}:5:1: not YAML" in stderr
    assert "Traceback" not in stderr


async def _status(port: int, token: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/admin/calls", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status


async def test_a_personal_token_opens_the_admin_api_until_its_user_is_removed(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    users = tmp_path / "users.yaml"
    assert user(users, "add", "otto", "--role", "viewer", "--password-stdin", password=PASSWORD)
    token = user(users, "token", "otto").stdout.strip()
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port, env={"ROUTER_USERS_FILE": str(users)})
    try:
        await wait_healthy(port, process)
        assert await _status(port, token) == 200
        assert user(users, "remove", "otto").returncode == 0
        deadline = time.monotonic() + 20
        while await _status(port, token) != 401:  # the router reads the file again
            assert time.monotonic() < deadline, "the removed user's token still works"
            await asyncio.sleep(0.2)
    finally:
        stop(process)
