"""What the CLI prints: `check` renders every template of every sink, `route --render`
masks a URL's path, and `deliveries` cannot be made to drive the terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.cli.main import main
from router.core.samples import sample_event
from router.store import IngestRecord, NewDelivery
from router.store.sqlite import SQLiteStore

EVERY_TEMPLATE = """\
version: 1
sinks:
  slack-text:
    type: slack
    webhook_url: https://hooks.example.com/x
    text: "{{ status }} {{ agentNme }}"
  slack-blocks:
    type: slack
    webhook_url: https://hooks.example.com/x
    blocks: '{"type": "section"}'
  mail:
    type: email
    host: smtp.example.com
    from: router@example.com
    to: [ops@example.com]
    subject: "{{ subjectLine }}"
    body: "{{ bodyText }}"
    html: "{{ htmlText }}"
  crm:
    type: http
    url: https://crm.example.com/calls
    headers: {X-Tier: "{{ tierName }}"}
  console:
    type: log
    text: "{{ logLine }}"
rules:
  - {name: all, to: [slack-text, slack-blocks, mail, crm, console]}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return str(path)


def test_check_renders_every_template_of_every_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", write(tmp_path, EVERY_TEMPLATE)]) == 1
    shown = capsys.readouterr().out
    error = "blocks: blocks template must render a JSON array of block objects"
    assert f"error: sink 'slack-blocks': {error}" in shown
    assert "rendered with the sample call 'completed-inbound'" in shown
    expected = {
        "slack-text": "text: 'agentNme'",
        "mail": "subject: 'subjectLine'",
        "crm": "headers.X-Tier: 'tierName'",
        "console": "text: 'logLine'",
    }
    expected |= {"mail ": "body: 'bodyText'", "mail  ": "html: 'htmlText'"}
    for sink, problem in expected.items():
        warning = f"warning: sink {sink.strip()!r}: {problem} is not a field of RevRing's"
        assert warning in shown, (sink, shown)


GROUPED = """\
version: 1
sinks:
  ops:
    type: slack
    webhook_url: https://hooks.example.com/x
    text: "{{ count }} calls on {{ group_key.sipTrunkId }} since {{ window_start }}"
rules:
  - name: trunk-outage
    when: {status: COMPLETED}
    to: [ops]
    group: {by: [sipTrunkId], window: 2m}
"""


def test_check_renders_a_grouped_rules_templates_as_a_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", write(tmp_path, GROUPED)]) == 0
    assert "OK (1 rules, 1 sinks)" in capsys.readouterr().out

    also_ungrouped = GROUPED + "  - {name: each-call, to: [ops]}\n"
    assert main(["check", "--config", write(tmp_path, also_ungrouped)]) == 0
    shown = capsys.readouterr().out
    for value in ("count", "group_key.sipTrunkId", "window_start"):
        assert (
            f"warning: sink 'ops': text: {value} is given to a digest only (a grouped rule's"
            " delivery), and rule 'each-call' sends single calls here"
        ) in shown
    assert main(["check", "--strict", "--config", write(tmp_path, also_ungrouped)]) == 1


def test_route_render_does_not_print_the_path_of_an_http_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path,
        "version: 1\nsinks:\n  crm:\n    type: http\n"
        "    url: https://hooks.example.com/services/T000/B000/s3cretWebhookPath?k=v\n"
        "rules: [{name: all, to: [crm]}]\n",
    )
    event = tmp_path / "call.json"
    event.write_text(json.dumps(sample_event()))
    assert main(["route", str(event), "--config", config, "--render"]) == 0
    shown = capsys.readouterr().out
    assert '"url": "https://hooks.example.com/***"' in shown
    assert "s3cretWebhookPath" not in shown and "services" not in shown


CONTROL_ID = "call-1\x1b[2J\x1b]0;owned\x07\nforged-row"


def test_the_deliveries_table_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "router.db"

    async def fill() -> None:
        store = SQLiteStore(database)
        await store.open()
        try:
            deliveries = [NewDelivery("del-1\r\nforged", "crm", "all\x1b[31m")]
            await store.ingest(IngestRecord(CONTROL_ID, b"{}", 1_700_000_000.0, deliveries))
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["deliveries", "--store", f"sqlite:///{database}"]) == 0
    shown = capsys.readouterr().out
    _header, row = shown.splitlines()
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert row.startswith("del-1\\r\\nforged  call-1\\x1b[2J\\x1b]0;owned\\x07\\nforged-row")
    assert "all\\x1b[31m" in row
