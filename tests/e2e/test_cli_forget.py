"""`revring-router forget --phone NUMBER [--dry-run]` as a person runs it (DESIGN.md
sections 3 and 15): the counts printed, a dry run that changes nothing, a number that is
no number refused with exit 2 before any store is touched, and the number never printed
whole."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from router.store import CallFilters, IngestRecord, NewDelivery, searchable_text
from router.store.sqlite import SQLiteStore
from tests.e2e.test_cli_rules import run

T = 1_700_000_000.0
CALLER = "+14155550142"


def stored_call(event_id: str, caller: str, summary: str, at: float) -> IngestRecord:
    body = {"id": event_id, "fromNumber": caller, "toNumber": "+14155550199", "summary": summary}
    return IngestRecord(
        event_id,
        json.dumps(body).encode(),
        at,
        [NewDelivery(f"{event_id}:ops", "ops", "all")],
        from_number=caller,
        to_number="+14155550199",
        search_text=searchable_text(body),
    )


def make_store(path: Path) -> None:
    async def make() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.ingest(stored_call("mine-1", CALLER, "wants a callback", T))
        await store.ingest(stored_call("mine-2", CALLER, "again", T + 1))
        await store.ingest(
            stored_call("other", "+442071838750", "said her husband is on 415.555.0142", T + 2)
        )
        await store.close()

    asyncio.run(make())


def call_ids(path: Path) -> list[str]:
    async def read() -> list[str]:
        store = SQLiteStore(path)
        await store.open(create=False)
        try:
            return [event.id for event in await store.list_events(CallFilters())]
        finally:
            await store.close()

    return asyncio.run(read())


def test_forget_prints_the_counts_and_erases(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    make_store(database)

    result = run("forget", "--phone", "(415) 555-0142", "--store", f"sqlite:///{database}")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "forgot the caller +1415•••0142"
    assert "calls deleted: 2" in lines
    assert "deliveries deleted: 2 (pending cancelled: 2)" in lines
    assert "other calls rewritten: 1" in lines
    assert "attempts rewritten: 0" in lines
    assert "5550142" not in result.stdout + result.stderr
    assert call_ids(database) == ["other"]


def test_a_dry_run_prints_the_same_counts_and_changes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    make_store(database)
    before = database.read_bytes()

    dry = run(
        "forget", "--phone", "+1 415 555 0142", "--dry-run", "--store", f"sqlite:///{database}"
    )

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.splitlines()[0].startswith("dry run:")
    assert "calls deleted: 2" in dry.stdout
    assert "other calls rewritten: 1" in dry.stdout
    assert dry.stdout.splitlines()[-1] == "dry run: nothing was changed"
    assert call_ids(database) == ["other", "mine-2", "mine-1"]
    assert database.read_bytes() == before
    real = run("forget", "--phone", "+1 415 555 0142", "--store", f"sqlite:///{database}")
    assert real.stdout.splitlines()[1:-1] == dry.stdout.splitlines()[1:-1]


def test_a_number_that_is_no_number_exits_2_with_a_message(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    make_store(database)

    for bad in ("555-01", "not a number", "2026-11-20", ""):
        result = run("forget", "--phone", bad, "--store", f"sqlite:///{database}")
        assert result.returncode == 2, (bad, result.stdout, result.stderr)
        assert "--phone: " in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    assert call_ids(database) == ["other", "mine-2", "mine-1"]


def test_a_bad_region_exits_2_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    make_store(database)
    result = run(
        "forget", "--phone", "(415) 555-0142", "--store", f"sqlite:///{database}",
        env={"ROUTER_PHONE_REGION": "XX"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "ROUTER_PHONE_REGION must be a two-letter region code" in result.stderr
