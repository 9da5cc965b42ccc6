"""Log lines (router/core/logs.py): a caller's text cannot forge a line or drive the terminal."""

from __future__ import annotations

import json
import logging
import sys

from router.core.logs import JsonFormatter, TextFormatter

FORGED = "call-1\n2026-12-02 06:00:00,000 ERROR router.web.admin: admin token leaked\x1b[2K"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("router.web.webhook", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_call_id_with_a_line_break_stays_on_one_text_line() -> None:
    line = TextFormatter().format(record("accepted call %s", FORGED, event_id=FORGED))
    assert len(line.splitlines()) == 1
    assert "\x1b" not in line
    assert "accepted call call-1\\n2026-12-02 06:00:00,000 ERROR" in line
    assert line.endswith(
        "event_id=call-1\\n2026-12-02 06:00:00,000 ERROR router.web.admin: "
        "admin token leaked\\x1b[2K"
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
    from router.core.logs import printable

    assert printable("a\tb\rc\x00d\x7fe\x85f\u2028g") == "a\\tb\\rc\\x00d\\x7fe\\x85f\\u2028g"
    assert printable("plain · text ✓") == "plain · text ✓"


def test_phone_numbers_in_a_line_are_masked_however_written() -> None:
    try:
        raise ValueError("contact (415) 555-0143 refused")
    except ValueError:
        failed = logging.LogRecord(
            "router.engine.delivery",
            logging.WARNING,
            __file__,
            1,
            "delivery retry (attempt %d): %s",
            (2, "HTTP 409 Conflict: contact +1 415-555-0142 exists"),
            sys.exc_info(),
        )
    failed.__dict__["detail"] = "SIP 503 from +44 20 7183 8750 on 2026-11-20"
    for line in (JsonFormatter().format(failed), TextFormatter().format(failed)):
        for written in ("(415) 555-0143", "+1 415-555-0142", "+44 20 7183 8750"):
            assert written not in line
        for masked in ("+1415•••0143", "+1415•••0142", "+4420•••8750", "2026-11-20"):
            assert masked in line
