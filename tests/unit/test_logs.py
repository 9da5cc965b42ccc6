"""Log lines (router/logs.py): a caller's text cannot forge a line or drive the terminal."""

from __future__ import annotations

import json
import logging
import sys

from router.logs import JsonFormatter, TextFormatter

FORGED = "call-1\n2026-12-02 06:00:00,000 ERROR router.admin: admin token leaked\x1b[2K"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("router.ingest", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_call_id_with_a_line_break_stays_on_one_text_line() -> None:
    line = TextFormatter().format(record("accepted call %s", FORGED, event_id=FORGED))
    assert len(line.splitlines()) == 1
    assert "\x1b" not in line
    assert "accepted call call-1\\n2026-12-02 06:00:00,000 ERROR" in line
    assert line.endswith(
        "event_id=call-1\\n2026-12-02 06:00:00,000 ERROR router.admin: admin token leaked\\x1b[2K"
    )


def test_a_traceback_keeps_its_own_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = logging.LogRecord(
            "router", logging.ERROR, __file__, 1, "failed %s", ("x\ny",), sys.exc_info()
        )
    text = TextFormatter().format(failed)
    first, *rest = text.splitlines()
    assert first.endswith("failed x\\ny")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "RuntimeError: boom"


def test_json_lines_keep_the_text_exact() -> None:
    line = JsonFormatter().format(record("accepted call %s", FORGED, event_id=FORGED))
    assert len(line.splitlines()) == 1
    entry = json.loads(line)
    assert entry["event_id"] == FORGED and entry["msg"] == f"accepted call {FORGED}"


def test_printable_escapes_every_control_character_and_unicode_line_separator() -> None:
    from router.logs import printable

    assert printable("a\tb\rc\x00d\x7fe\x85f\u2028g") == "a\\tb\\rc\\x00d\\x7fe\\x85f\\u2028g"
    assert printable("plain · text ✓") == "plain · text ✓"
