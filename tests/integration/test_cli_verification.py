"""`revring-router calls --verification` and `revring-router release` on a real SQLite
store holding calls in verify mode."""

from __future__ import annotations

import asyncio
import json

from router.cli.main import main
from router.store import IngestRecord, open_store
from tests.conftest import fresh_event

RULES = """
version: 1
sinks:
  console: {type: log, path: "%(log)s"}
rules:
  - name: failed
    when: {status: FAILED}
    to: [console]
"""


def hold(url: str, *calls: dict) -> None:
    async def run() -> None:
        store = open_store(url)
        await store.open()
        for call in calls:
            body = json.dumps(call).encode()
            await store.ingest_held(IngestRecord(call["id"], body, 1.0, [], "FAILED", "OUTBOUND"))
        await store.mark_not_verified([calls[-1]["id"]])
        await store.close()

    asyncio.run(run())


def test_calls_lists_held_and_not_verified_and_release_routes(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % {"log": tmp_path / "out.jsonl"})
    waiting, invented = fresh_event(), fresh_event()
    hold(url, waiting, invented)

    assert main(["calls", "--verification", "pending", "--store", url]) == 0
    out = capsys.readouterr().out
    assert waiting["id"] in out and invented["id"] not in out
    assert main(["calls", "--store", url]) == 0
    out = capsys.readouterr().out
    assert waiting["id"] in out and invented["id"] in out, "every stored call"
    assert main(["calls", "--verification", "not_verified", "--json", "--store", url]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == invented["id"]
    assert json.loads(line)["verification"] == "not_verified"

    assert main(["release", invented["id"], "--config", str(rules), "--store", url]) == 0
    assert f"released call {invented['id']}: 1 deliveries" in capsys.readouterr().out
    assert main(["release", invented["id"], "--config", str(rules), "--store", url]) == 1
    assert "is not held (verification: released)" in capsys.readouterr().err
    assert main(["release", "nope", "--config", str(rules), "--store", url]) == 1
    capsys.readouterr()
    assert main(["audit", "--json", "--store", url]) == 0
    [released] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (released["action"], released["target"]) == ("release", f"call:{invented['id']}")
    assert released["actor"].startswith("cli:") and released["details"] == {"deliveries": 1}
    assert main(["deliveries", "--json", "--store", url]) == 0
    [delivery] = capsys.readouterr().out.splitlines()
    assert json.loads(delivery)["event_id"] == invented["id"]


def test_serve_refuses_verify_mode_without_a_key_or_with_a_bad_value(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROUTER_REVRING_API_KEY", raising=False)
    monkeypatch.setenv("ROUTER_VERIFY_CALLS", "revring")
    args = ["serve", "--no-auth", "--store", f"sqlite:///{tmp_path / 'r.db'}"]
    assert main(args) == 2
    assert "ROUTER_VERIFY_CALLS=revring needs ROUTER_REVRING_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("ROUTER_VERIFY_CALLS", "yes")
    monkeypatch.setenv("ROUTER_REVRING_API_KEY", "k-secret")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ROUTER_VERIFY_CALLS must be revring or off" in err and "k-secret" not in err
