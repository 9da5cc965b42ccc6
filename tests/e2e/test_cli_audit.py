"""`revring-router audit` and the actor of the CLI's changes (DESIGN.md sections 3 and
14), run as a user runs them: `replay`, `silence add|expire` and `sink pause|resume`
record `cli:<os user>`; `audit` lists them (a table, or `--json`), filtered by time,
actor and action, and names a bad filter (exit 2)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.store import AttemptRecord, IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore
from tests.e2e.test_cli_rules import run

RULES = """\
version: 1
sinks:
  crm: {type: http, url: "https://crm.example.com/hook"}
rules:
  - name: everything
    to: [crm]
"""
AS_ALICE = {"LOGNAME": "ops-alice", "USER": "ops-alice"}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A store as `serve` leaves it, holding one dead delivery `e1:crm`."""

    async def make() -> None:
        store = SQLiteStore(tmp_path / "router.db")
        await store.open()
        await store.ingest(
            IngestRecord("e1", b'{"id": "e1"}', 1.0, [NewDelivery("e1:crm", "crm", "r")])
        )
        [claimed] = await store.claim("crm", 1, "worker", 30.0, 2.0)
        await store.finish(claimed.id, "worker", AttemptRecord(1, 3.0, 0.1, "dead", 400, "no"))
        await store.close()

    asyncio.run(make())
    return f"sqlite:///{tmp_path / 'router.db'}"


def ok(*args: str) -> str:
    result = run(*args, env=AS_ALICE)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_clis_changes_are_recorded_as_its_user_and_listed(
    tmp_path: Path, store_url: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    store = ["--store", store_url]
    assert ok("audit", *store).strip() == "nothing recorded"

    ok("replay", "--delivery", "e1:crm", *store)
    silence_id = ok("silence", "add", "--when", '{"status": "FAILED"}', "--for", "1h", *store)
    ok("silence", "expire", silence_id.strip(), *store)
    ok("sink", "pause", "crm", "--for", "1h", "--config", str(rules), *store)
    ok("sink", "resume", "crm", *store)

    listed = [json.loads(line) for line in ok("audit", "--json", *store).splitlines()]
    assert [entry["action"] for entry in listed] == [
        "sink.resume",
        "sink.pause",
        "silence.expire",
        "silence.create",
        "replay",
    ]
    assert {entry["actor"] for entry in listed} == {"cli:ops-alice"}
    assert listed[-1]["target"] == "delivery:e1:crm"

    table = ok("audit", *store).splitlines()
    assert table[0].split() == ["TIME", "(UTC)", "ACTOR", "ACTION", "TARGET", "DETAILS"]
    assert len(table) == 6 and all("cli:ops-alice" in line for line in table[1:])
    replays = ok("audit", "--action", "replay", "--since", "1h", "--json", *store).splitlines()
    assert [json.loads(line)["target"] for line in replays] == ["delivery:e1:crm"]
    assert ok("audit", "--actor", "token", *store).strip() == "no recorded change matches"


def test_a_bad_filter_is_named_and_exits_2(store_url: str) -> None:
    result = run("audit", "--since", "last tuesday", "--store", store_url)
    assert result.returncode == 2
    assert result.stderr.startswith("revring-router audit: --since: expected an ISO 8601 time")
    assert "Traceback" not in result.stderr


def test_user_changes_are_recorded_by_name_and_never_with_a_secret(
    tmp_path: Path, store_url: str
) -> None:
    users = tmp_path / "users.yaml"
    environ = {**os.environ, **AS_ALICE, "ROUTER_USERS_FILE": str(users)}
    store = ["--store", store_url]

    def user(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "router", "user", *args]
        done = subprocess.run(
            command, input=password, capture_output=True, text=True, env=environ, check=False
        )
        assert done.returncode == 0, done.stderr
        return done

    user("add", "vera", "--role", "viewer", "--password-stdin", *store, password="secret-pw-1\n")
    token = user("token", "vera", *store).stdout.strip()
    user("remove", "vera", *store)

    listed = [json.loads(line) for line in ok("audit", "--json", *store).splitlines()]
    assert [(e["action"], e["target"], e["actor"]) for e in listed] == [
        ("user.remove", "user:vera", "cli:ops-alice"),
        ("user.token", "user:vera", "cli:ops-alice"),
        ("user.add", "user:vera", "cli:ops-alice"),
    ]
    printed = ok("audit", "--json", *store)
    assert token not in printed and "secret-pw-1" not in printed


def test_a_user_change_without_a_store_is_made_and_says_it_was_not_recorded(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.yaml"
    nowhere = f"sqlite:///{tmp_path / 'none' / 'router.db'}"
    made = run("user", "token", "nobody", "--store", nowhere, env={"ROUTER_USERS_FILE": str(users)})
    assert made.returncode == 1 and "no user nobody" in made.stderr  # nothing to record
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "user",
            "add",
            "vera",
            "--role",
            "viewer",
            "--password-stdin",
            "--store",
            nowhere,
        ],
        input="secret-pw-1\n",
        capture_output=True,
        text=True,
        env={**os.environ, "ROUTER_USERS_FILE": str(users)},
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert "not recorded in the audit" in added.stderr
    assert not (tmp_path / "none").exists(), "no store was created to record it"
