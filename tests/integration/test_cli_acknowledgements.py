"""`revring-router deliveries --json` shows who acknowledged a call for a delivery's rule,
or a digest, from Slack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.cli.main import main
from router.store import Acknowledgement, GroupJoin, IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def test_the_json_names_who_acknowledged_and_when(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "router.db"

    async def fill() -> None:
        store = SQLiteStore(database)
        await store.open()
        try:
            deliveries = [
                NewDelivery("slack-1", "slack", "failed"),
                NewDelivery("crm-1", "crm", "failed"),
                NewDelivery("sales-1", "sales", "vip"),
                NewDelivery("digest-1", "ops", "trunks", GroupJoin("{}", 60.0)),
            ]
            await store.ingest(IngestRecord("call-1", b"{}", T0, deliveries))
            await store.ingest(
                IngestRecord("call-2", b"{}", T0, [NewDelivery("slack-2", "slack", "failed")])
            )
            await store.acknowledge(
                Acknowledgement("call", "call-1", "failed", "U0ALICE", "alice", "C1", T0 + 60)
            )
            await store.acknowledge(
                Acknowledgement("digest", "digest-1", "trunks", "U0BOB", "bob", "C1", T0 + 90)
            )
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["deliveries", "--store", f"sqlite:///{database}", "--json"]) == 0
    shown = {
        item["id"]: (item["acknowledged_by"], item["acknowledged_at"])
        for item in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert shown == {
        # An acknowledgement is on the call and rule: every delivery of both shows it,
        # none of another rule of the call.
        "slack-1": ("U0ALICE", "2023-11-14T22:14:20Z"),
        "crm-1": ("U0ALICE", "2023-11-14T22:14:20Z"),
        "sales-1": (None, None),
        "digest-1": ("U0BOB", "2023-11-14T22:14:50Z"),
        "slack-2": (None, None),
    }
