"""Logging setup: one JSON object per line (default) or plain text, with the delivery
fields (event_id, delivery_id, sink, rule, ...) passed as `extra=` kept as keys.

Text that reaches a log line or a terminal may come from a caller (a call id, an error
a server echoed): `printable` writes its control characters as escapes, so it can
neither start a forged log line nor drive the terminal. Phone numbers in a line (its
message, its string fields, a traceback) are masked (`router.core.phones`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

from router.core.phones import mask_phone_numbers

LogFormat = Literal["json", "text"]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """`str(value)` on one line: line breaks, terminal escape sequences and other
    control characters become `\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`..."""
    return _CONTROL.sub(_escape_control, str(value))


def _escape_control(match: re.Match[str]) -> str:
    char = match[0]
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _masked(value: object) -> object:
    return mask_phone_numbers(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_phone_numbers(record.getMessage()),
        }
        entry.update({key: _masked(value) for key, value in _extras(record).items()})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

    def formatException(self, ei: ExcInfo) -> str:
        return mask_phone_numbers(super().formatException(ei))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # The message and extras escaped; a traceback (exc_info) keeps its own lines.
        escaped = logging.makeLogRecord(vars(record))
        escaped.msg, escaped.args = printable(mask_phone_numbers(record.getMessage())), None
        text = super().format(escaped)
        extras = _extras(record)
        if extras:
            text += " " + " ".join(
                f"{printable(k)}={printable(mask_phone_numbers(str(v)))}" for k, v in extras.items()
            )
        return text

    def formatException(self, ei: ExcInfo) -> str:
        return mask_phone_numbers(super().formatException(ei))


def setup_logging(fmt: LogFormat = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
