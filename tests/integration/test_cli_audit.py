"""`router.cli.audit.record_cli_change`, what a command that changes something outside
the store (`user add`, ...) calls to record it: as `cli:<os user>` in the store at a URL,
or the reason it could not (the command's change stands)."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path

import pytest

from router.cli.audit import record_cli_change
from router.store import AuditFilters
from router.store.sqlite import SQLiteStore


def test_a_change_is_recorded_as_the_os_user_with_masked_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "root-ops")

    async def run() -> list:
        store = SQLiteStore(tmp_path / "router.db")
        await store.open()
        await store.close()
        url = f"sqlite:///{tmp_path / 'router.db'}"
        details = {"role": "operator", "password": "s3cret-pw"}
        assert await record_cli_change(url, "user.add", "alice", details) is None
        store = SQLiteStore(tmp_path / "router.db")
        await store.open()
        try:
            return await store.list_audit(AuditFilters())
        finally:
            await store.close()

    [record] = asyncio.run(run())
    assert (record.actor, record.action, record.target) == ("cli:root-ops", "user.add", "alice")
    assert json.loads(record.details) == {"role": "operator", "password": "***"}


def test_without_a_store_it_says_why_and_creates_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    reason = asyncio.run(record_cli_change(url, "user.remove", "bob"))
    assert reason is not None and "no store at" in reason
    assert list(tmp_path.iterdir()) == []
