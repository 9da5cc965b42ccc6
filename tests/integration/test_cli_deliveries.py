"""`revring-router deliveries` and the admin JSON show each delivery's kind and calls."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from router.cli.main import main
from router.store import GroupJoin, IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0
DESIGN_FIELDS = {"id", "event_id", "sink", "rule", "status", "attempts", "last_error"}


def _fill(database: Path) -> None:
    async def run() -> None:
        store = SQLiteStore(database)
        await store.open()
        try:
            for n in range(3):
                event_id = f"call-{n}"
                deliveries = [
                    NewDelivery(f"digest-{n}", "ops", "trunk-outage", GroupJoin("{}", 60.0))
                ]
                if n == 0:
                    deliveries.append(NewDelivery("single-0", "crm", "all-calls"))
                await store.ingest(IngestRecord(event_id, b"{}", T0 + n, deliveries))
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    database = tmp_path / f"{uuid.uuid4().hex}.db"
    _fill(database)
    return f"sqlite:///{database}"


def test_the_table_has_a_kind_column(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deliveries", "--store", store_url]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:5] == ["ID", "EVENT", "SINK", "RULE", "KIND"]
    by_id = {row.split()[0]: row for row in rows}
    assert set(by_id) == {"digest-0", "single-0"}
    assert "digest (3 calls)" in by_id["digest-0"]
    assert by_id["single-0"].split()[4] == "single"


def test_the_json_has_kind_and_calls(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deliveries", "--store", store_url, "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(DESIGN_FIELDS | {"next_attempt_at"} <= set(item) for item in shown)
    assert {item["id"]: (item["kind"], item["calls"]) for item in shown} == {
        "digest-0": ("digest", 3),
        "single-0": ("single", 1),
    }


# --- a store that cannot be opened -------------------------------------------------------


@pytest.mark.parametrize("command", [["deliveries"], ["replay", "--status", "dead"]])
def test_an_unopenable_sqlite_store_is_one_line_naming_it(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_database = tmp_path / "router.db"
    not_a_database.write_text("a file that is no SQLite database " * 200)

    assert main([*command, "--store", f"sqlite:///{not_a_database}"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"revring-router {command[0]}: ")
    assert str(not_a_database) in line


@pytest.mark.parametrize("command", [["deliveries"], ["replay", "--status", "dead"]])
def test_an_unreachable_postgresql_store_is_named_without_its_password(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://router:s3cret-pw@127.0.0.1:1/router"  # nothing listens on port 1

    assert main([*command, "--store", url]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert "127.0.0.1:1/router" in line
    assert "s3cret-pw" not in line
