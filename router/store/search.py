"""What a stored call is found by in words: `events.search_text`, its summary and the
text of its transcript, folded to lower case.

One function makes it, for a call being stored (the engine's intake) and for the calls
of a database written before the column existed (migration 8); the calls query
(`ConsoleReads.list_events` with `CallFilters.words`) matches each word as a substring
of it. Phone numbers are found by their own columns (`from_number`, `to_number`), not
here.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SEARCH_WORDS = 8
"""Words one search may hold (each is a condition of the calls query)."""


# Who speaks, in the entry shapes RevRing is seen to send (role/content, speaker/text):
# every call has "agent" and "user", so they would match every call.
SPEAKER_KEYS = frozenset({"role", "speaker"})


def searchable_text(call: Any) -> str:
    """The summary and every string of the transcript (entries as role/content,
    speaker/text, plain strings or anything else; who speaks left out), one per line, in
    lower case; '' for a call with neither, or a body that is not a JSON object."""
    if not isinstance(call, dict):
        return ""
    parts: list[str] = []
    summary = call.get("summary")
    if isinstance(summary, str):
        parts.append(summary)
    _collect_strings(call.get("transcript"), parts)
    return "\n".join(part for part in parts if part).casefold()


def searchable_text_of_body(payload: bytes | str | memoryview) -> str:
    """`searchable_text` of a stored body (bytes as written; text in a SQLite store an
    old tool wrote); '' for one that cannot be read."""
    try:
        return searchable_text(
            json.loads(bytes(payload) if isinstance(payload, memoryview) else payload)
        )
    except (ValueError, RecursionError):
        return ""


def _collect_strings(value: Any, found: list[str]) -> None:
    """Every string in `value`, at any depth, in order (dict keys and speakers aside);
    the depth is a stored body's, at most `router.core.events.MAX_DEPTH`."""
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                found.append(item)
            else:
                _collect_strings(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in SPEAKER_KEYS:
                continue
            if isinstance(item, str):  # most entries: role/content, speaker/text
                found.append(item)
            else:
                _collect_strings(item, found)


def contains_pattern(word: str) -> str:
    """A LIKE pattern (with `ESCAPE '\\'`) matching text that holds `word` as it is."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
