"""`revring-router silence add|list|expire`, `sink pause|resume`, `deliveries`/`replay
--status muted` and `route --store`, run as commands against a SQLite store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.cli.main import main
from router.store import IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore
from tests.e2e.test_cli_rules import SAMPLES

RULES = """\
version: 1
sinks:
  console: {type: log}
  crm: {type: http, url: "https://crm.example.com/hook"}
rules:
  - name: everything
    to: [console, crm]
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A store as `serve` leaves it (these commands never create one)."""

    async def make() -> None:
        store = SQLiteStore(tmp_path / "router.db")
        await store.open()
        await store.close()

    asyncio.run(make())
    return f"sqlite:///{tmp_path / 'router.db'}"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_silence_is_added_listed_applied_by_route_and_expired(
    rules: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["silence", "add", "--when", '{"status": "FAILED"}', "--for", "2h"]
    add += ["--sink", "crm", "--comment", "trunk maintenance"]
    code, out, err = run([*add, "--config", str(rules), "--store", store_url], capsys)
    assert (code, err) == (0, "")
    silence_id = out.strip()

    code, out, _ = run(["silence", "list", "--store", store_url], capsys)
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "STATE", "STARTS"]
    assert row.split()[:2] == [silence_id, "active"] and "trunk maintenance" in row
    code, out, _ = run(["silence", "list", "--json", "--store", store_url], capsys)
    [shown] = [json.loads(line) for line in out.splitlines()]
    assert (shown["when"], shown["sinks"]) == ({"status": "FAILED"}, ["crm"])

    event = str(SAMPLES / "failed-outbound.json")
    code, out, _ = run(["route", event, "--config", str(rules), "--store", store_url], capsys)
    assert code == 0
    assert f"crm (type http, rule everything): muted (silence:{silence_id}): not sent" in out
    assert "console (type log, rule everything): send" in out
    code, out, _ = run(["route", event, "--config", str(rules)], capsys)
    assert "muted" not in out

    assert run(["silence", "expire", silence_id, "--store", store_url], capsys)[:2] == (
        0,
        f"silence {silence_id} expired\n",
    )
    assert run(["silence", "list", "--store", store_url], capsys)[1] == "no silences\n"
    code, out, _ = run(["silence", "list", "--all", "--json", "--store", store_url], capsys)
    assert json.loads(out)["state"] == "expired"
    code, _, err = run(["silence", "expire", "nope", "--store", store_url], capsys)
    assert code == 1 and "no silence 'nope'" in err


def test_a_bad_silence_exits_2_naming_each_problem_and_stores_nothing(
    rules: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ["silence", "add", "--when", '{"status": {"like": 1}}', "--for", "0s", "--sink", "nope"]
    code, out, err = run([*bad, "--config", str(rules), "--store", store_url], capsys)
    assert (code, out) == (2, "")
    assert "when.status" in err and "for: must be longer than 0s" in err
    assert "unknown sink 'nope'" in err
    code, _, err = run(["silence", "add", "--when", "{", "--for", "1h"], capsys)
    assert code == 2 and "--when: not JSON" in err
    assert run(["silence", "list", "--store", store_url], capsys)[1] == "no silences\n"


def test_a_silence_that_names_no_values_exits_2_and_stores_nothing(
    rules: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for when in ('{"id": {"exists": true}}', '{"not": {"status": "NOPE"}}'):
        add = ["silence", "add", "--when", when, "--for", "366d", "--store", store_url]
        code, out, err = run([*add, "--config", str(rules)], capsys)
        assert (code, out) == (2, ""), when
        assert "when: names no values, so it would silence every call" in err
    assert run(["silence", "list", "--store", store_url], capsys)[1] == "no silences\n"


def test_a_sink_is_paused_and_resumed(
    rules: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pause = ["sink", "pause", "crm", "--for", "1h", "--comment", "CRM migration"]
    code, out, _ = run([*pause, "--config", str(rules), "--store", store_url], capsys)
    assert code == 0 and out.startswith("sink crm paused until ")
    code, _, err = run(
        ["sink", "pause", "nope", "--for", "1h", "--config", str(rules), "--store", store_url],
        capsys,
    )
    assert code == 2 and "unknown sink 'nope'" in err
    assert run(["sink", "resume", "crm", "--store", store_url], capsys)[1] == "sink crm resumed\n"
    assert run(["sink", "resume", "crm", "--store", store_url], capsys)[1] == (
        "sink crm was not paused\n"
    )


def test_muted_deliveries_are_listed_with_their_reason_and_replayed(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fill() -> None:
        store = SQLiteStore(tmp_path / "router.db")
        await store.open()
        try:
            for n in range(2):
                muted = NewDelivery(f"m{n}", "crm", "r", muted_reason="time_interval:night")
                await store.ingest(IngestRecord(f"call-{n}", b"{}", 1e9 + n, [muted]))
        finally:
            await store.close()

    asyncio.run(fill())
    code, out, _ = run(["deliveries", "--status", "muted", "--store", store_url], capsys)
    header, *rows = out.splitlines()
    assert "MUTED BY" in header and len(rows) == 2
    assert all("time_interval:night" in row for row in rows)
    code, out, _ = run(["deliveries", "--status", "muted", "--json", "--store", store_url], capsys)
    assert {json.loads(line)["muted_reason"] for line in out.splitlines()} == {
        "time_interval:night"
    }
    code, out, _ = run(
        ["replay", "--status", "muted", "--sink", "crm", "--store", store_url], capsys
    )
    assert (code, out) == (0, "requeued 2 muted deliveries of sink crm\n")
    code, out, _ = run(["deliveries", "--status", "muted", "--store", store_url], capsys)
    assert out == "no deliveries\n"
