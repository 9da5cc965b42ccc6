"""Commands that only read or change a store never create one (DESIGN.md section 3): run
from a folder without one, each exits 2 naming where it looked, and leaves the folder as
it was; with a store there, the same command works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from router.store.sqlite import SQLiteStore
from tests.e2e.test_cli_rules import ROOT, SAMPLES, run

READ_OR_CHANGE = [
    ["deliveries"],
    ["deliveries", "--call", "some-call", "--json"],
    ["replay", "--status", "dead"],
    ["replay", "--delivery", "d-1"],
    ["calls"],
    ["calls", "--q", "+1 415 555 0142"],
    ["silence", "list"],
    ["silence", "add", "--when", '{"status": "FAILED"}', "--for", "1h"],
    ["silence", "expire", "s-1"],
    ["sink", "pause", "console", "--for", "1h", "--config", str(ROOT / "rules.yaml")],
    ["sink", "resume", "console"],
    ["release", "c-1", "--config", str(ROOT / "rules.yaml")],
    ["audit"],
    ["audit", "--since", "2h", "--json"],
    ["forget", "--phone", "+1 415 555 0142"],
    ["forget", "--phone", "(415) 555-0142", "--dry-run"],
    ["ack", "d-1"],
]
NO_STORE_ENV = {"ROUTER_STORE": ""}


@pytest.mark.parametrize("command", READ_OR_CHANGE, ids=lambda args: " ".join(args[:2]))
def test_without_a_store_it_exits_2_naming_where_it_looked(
    tmp_path: Path, command: list[str]
) -> None:
    result = run(*command, cwd=tmp_path, env=NO_STORE_ENV)
    assert result.returncode == 2, result.stdout + result.stderr
    expected = f"no store at {tmp_path / 'data' / 'router.db'}: the file does not exist"
    assert expected in result.stderr
    assert "revring-router serve" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_route_with_a_store_that_is_not_there_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.db"
    result = run(
        "route",
        str(SAMPLES / "failed-outbound.json"),
        "--config",
        str(ROOT / "rules.yaml"),
        "--store",
        f"sqlite:///{missing}",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no store at {missing}" in result.stderr
    assert not missing.exists()


def test_with_a_store_there_the_same_commands_work(tmp_path: Path) -> None:
    async def make() -> None:
        store = SQLiteStore(tmp_path / "data" / "router.db")
        await store.open()
        await store.close()

    asyncio.run(make())
    for command in (["deliveries"], ["calls"], ["silence", "list"]):
        result = run(*command, cwd=tmp_path, env=NO_STORE_ENV)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("no ")
