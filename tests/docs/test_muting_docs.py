"""The muting page (operators' controls) stays true: its rules.yaml loads and mutes what it
says, and its commands and JSON bodies run against a real store and do what they say."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.cli.main import main
from router.config.schema import parse_config
from router.operators.silences import parse_pause_request, parse_silence_request
from router.rules.matching import route
from router.rules.muting import decide
from router.store import open_store
from tests import docs

SINKS = "sinks:\n  ops-slack: {type: log}\n  crm: {type: log}\n"
FAILED = {"id": "call-1", "status": "FAILED", "direction": "OUTBOUND", "sipTrunkId": "trunk-a"}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def section() -> str:
    return docs.page("concepts/muting.md")


def blocks(language: str) -> list[str]:
    return docs.blocks(section(), language)


def commands() -> list[list[str]]:
    return [
        shlex.split(line[2:])[1:]
        for block in blocks("console")
        for line in block.splitlines()
        if line.startswith("$ revring-router ")
    ]


def test_office_hours_page_slack_and_the_crm_gets_failed_calls_around_the_clock() -> None:
    [rules] = blocks("yaml")
    config = parse_config("version: 1\n" + SINKS + rules, "rules.yaml", environ={})

    def reasons(instant: datetime) -> dict[str, str | None]:
        decided = decide(route(config.rules, FAILED), config.time_intervals, instant)
        return {sink: decision.muted_reason for sink, decision in decided.items()}

    # A Tuesday: 10:00 and 21:00 in Paris (UTC+1 in December).
    assert reasons(datetime(2026, 12, 15, 9, 0, tzinfo=UTC)) == {"ops-slack": None, "crm": None}
    assert reasons(datetime(2026, 12, 15, 20, 0, tzinfo=UTC)) == {
        "ops-slack": "time_interval:office-hours",
        "crm": None,
    }


def test_the_json_bodies_are_valid_requests() -> None:
    (silence_body,) = (json.loads(b) for b in blocks("json"))
    record = parse_silence_request(silence_body, now=NOW, known_sinks={"ops-slack", "crm"})
    assert record.ends_at - record.starts_at == 7200 and record.sinks == ("ops-slack",)
    pause_body = json.loads(re.search(r"`(\{\"for\": \"1h\".*?\})`", section()).group(1))
    pause = parse_pause_request("crm", pause_body, now=NOW, known_sinks={"crm"})
    assert pause.until == NOW + 3600


async def made(url: str) -> None:
    store = open_store(url)
    await store.open()
    await store.close()


def test_the_commands_run_against_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n" + SINKS + "rules: []\n")
    store = f"sqlite:///{tmp_path / 'router.db'}"
    asyncio.run(made(store))  # as `serve` leaves it: these commands never create one
    run = commands()
    assert [argv[:2] for argv in run] == [
        ["silence", "add"],
        ["silence", "list"],
        ["silence", "expire"],
        ["sink", "pause"],
        ["sink", "resume"],
    ]
    silence_id = None
    for argv in run:
        if argv[:2] == ["silence", "expire"]:
            argv = [*argv[:2], silence_id]
        extra = (
            ["--config", str(rules)] if argv[:2] in (["silence", "add"], ["sink", "pause"]) else []
        )
        assert main([*argv, *extra, "--store", store]) == 0, argv
        out = capsys.readouterr().out
        if argv[:2] == ["silence", "add"]:
            silence_id = out.strip()
        elif argv[:2] == ["silence", "list"]:
            assert silence_id in out and "carrier maintenance" in out
        elif argv[:2] == ["silence", "expire"]:
            assert out == f"silence {silence_id} expired\n"
        elif argv[:2] == ["sink", "pause"]:
            assert out.startswith("sink crm paused until ")
        else:
            assert out == "sink crm resumed\n"
