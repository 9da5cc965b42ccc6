"""`revring-router calls` (stored calls, newest first: `--q` a number in any format or
words, `--status`, `--verification`, `--json`) and `revring-router deliveries --call` on a
real SQLite store, the calls stored the way the webhook stores them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from router.cli.main import main
from router.engine.prepare import Prepared, prepare
from router.engine.records import call_record
from router.store import NewDelivery
from router.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def sample(name: str, **changes: Any) -> bytes:
    body = json.loads((SAMPLES / f"{name}.json").read_text())
    return json.dumps({**body, **changes}).encode()


CALLS = [
    # (body, deliveries by sink)
    (sample("completed-inbound", id="call-dental"), ["console"]),
    (
        sample(
            "failed-outbound",
            id="call-failed",
            toNumber="+14155550123",
            summary="Carrier said 503 (415) 555-0188 is unreachable",
        ),
        ["console", "ops-slack"],
    ),
    (sample("minimal-canceled", id="call-canceled", fromNumber="+442071838750"), []),
]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    database = tmp_path / "router.db"

    async def fill() -> None:
        store = SQLiteStore(database)
        await store.open()
        for n, (body, sinks) in enumerate(CALLS):
            prepared = prepare(body, ())
            assert isinstance(prepared, Prepared)
            deliveries = [NewDelivery(f"{prepared.event_id}:{s}", s, "all") for s in sinks]
            await store.ingest(call_record(prepared, body, T0 + n, deliveries))
        await store.close()

    asyncio.run(fill())
    return f"sqlite:///{database}"


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["calls", "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def ids(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    return [call["id"] for call in listed(capsys, *args)]


def test_every_stored_call_newest_first(store_url: str, capsys) -> None:
    assert ids(capsys, "--store", store_url) == ["call-canceled", "call-failed", "call-dental"]
    assert main(["calls", "--store", store_url]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["RECEIVED", "(UTC)", "ID", "DIRECTION"]
    assert [row.split()[2] for row in rows] == ["call-canceled", "call-failed", "call-dental"]
    assert "+1415•••0123" in rows[2] and "+14155550123" not in "\n".join(rows)
    assert "Caller rescheduled a cleaning" in rows[2]


@pytest.mark.parametrize(
    "query", ["+14155550123", "+1 415-555-0123", "(415) 555-0123", "415.555.0123"]
)
def test_a_number_in_any_format_finds_the_calls_from_and_to_it(
    store_url: str, capsys, query: str
) -> None:
    assert ids(capsys, "--store", store_url, "--q", query) == ["call-failed", "call-dental"]


def test_words_of_the_summary_or_transcript_and_the_status(store_url: str, capsys) -> None:
    assert ids(capsys, "--store", store_url, "--q", "FRIDAY") == ["call-dental"]
    assert ids(capsys, "--store", store_url, "--q", "acme dental") == ["call-dental"]
    assert ids(capsys, "--store", store_url, "--q", "unreachable 503") == ["call-failed"]
    assert ids(capsys, "--store", store_url, "--q", "friday unreachable") == []
    assert ids(capsys, "--store", store_url, "--status", "failed") == ["call-failed"]
    assert ids(capsys, "--store", store_url, "--q", "+44 20 7183 8750") == ["call-canceled"]
    assert main(["calls", "--store", store_url, "--q", "nobody said this"]) == 0
    assert capsys.readouterr().out == "no calls match\n"


@pytest.mark.parametrize("query", ['"', "NEAR(", "*", "':*", "&!", '"friday" OR'])
def test_full_text_syntax_in_a_search_is_plain_text(store_url: str, capsys, query) -> None:
    assert main(["calls", "--store", store_url, "--q", query]) == 0
    assert capsys.readouterr().out == "no calls match\n"


def test_the_json_masks_numbers_and_keeps_the_columns(store_url: str, capsys) -> None:
    [failed] = listed(capsys, "--store", store_url, "--status", "FAILED")
    assert failed["to_number"] == "+1415•••0123"
    assert failed["summary"] == "Carrier said 503 +1415•••0188 is unreachable"
    assert {"received_at", "status", "direction", "agent_id", "verification"} <= set(failed)
    assert "payload" not in failed and "search_text" not in failed


def test_a_bad_search_exits_2_naming_it(store_url: str, capsys) -> None:
    assert main(["calls", "--store", store_url, "--q", "a b c d e f g h i"]) == 2
    assert "revring-router calls: --q: at most 8 words, got 9" in capsys.readouterr().err


def test_held_calls_are_behind_verification(store_url: str, capsys) -> None:
    assert ids(capsys, "--store", store_url, "--verification", "pending") == []
    assert main(["calls", "--store", store_url, "--verification", "pending"]) == 0
    assert capsys.readouterr().out == "no calls match\n"


def test_one_calls_deliveries(store_url: str, capsys) -> None:
    assert main(["deliveries", "--store", store_url, "--call", "call-failed", "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(d["id"], d["event_id"]) for d in shown} == {
        ("call-failed:console", "call-failed"),
        ("call-failed:ops-slack", "call-failed"),
    }
    assert main(["deliveries", "--store", store_url, "--call", "call-dental"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["ID", "EVENT"] and row.split()[:2] == [
        "call-dental:console",
        "call-dental",
    ]
    assert main(["deliveries", "--store", store_url, "--call", "call-canceled"]) == 0
    assert capsys.readouterr().out == "no deliveries of call call-canceled\n"
    args = ["deliveries", "--store", store_url, "--call", "call-failed", "--sink", "ops-slack"]
    assert main([*args, "--json"]) == 0
    [only] = capsys.readouterr().out.splitlines()
    assert json.loads(only)["sink"] == "ops-slack"


def test_replay_by_status_sink_and_rule(store_url: str, capsys) -> None:
    async def kill_all() -> None:
        store = SQLiteStore(store_url.removeprefix("sqlite:///"))
        await store.open()
        for view in await store.list_deliveries():
            await store.kill(view.id, None, "HTTP 500")
        await store.close()

    asyncio.run(kill_all())
    args = ["replay", "--status", "dead", "--store", store_url]
    assert main([*args, "--rule", "other-rule"]) == 0
    assert capsys.readouterr().out == "requeued 0 dead deliveries of rule other-rule\n"
    assert main([*args, "--rule", "all", "--sink", "console"]) == 0
    assert capsys.readouterr().out == "requeued 2 dead deliveries of sink console of rule all\n"
