"""What a stored call is found by in words: `events.search_text`, its summary and the
text of its transcript, folded to lower case, and the full-text queries that find it.

One function makes the text, for a call being stored (the engine's intake) and for the
calls of a database written before the column existed (migration 8). Each database
indexes it with its own full-text search (migration 11): SQLite's FTS5 table
`events_fts`, kept in step with `events` by triggers; PostgreSQL's generated `tsvector`
column `search_vector` under a GIN index. A search's words become *terms* here (runs
of letters and digits: what both indexes see as words), and each term of three
characters or more matches the words it begins (`refund` finds "refunds"), a shorter one
the word alone; a call must hold every term. The terms are
written into each database's query syntax by `fts5_query` and `tsquery`, quoted, so
nothing a person types is read as that syntax (`"`, `*`, `NEAR(`, `&`, `!`, `:`).
Phone numbers are found by their own columns (`from_number`, `to_number`), not here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MAX_SEARCH_WORDS = 8
"""Words one search may hold."""
MAX_SEARCH_TERMS = 16
"""Terms the words of one search may make (`auto-renewal` is two)."""
MIN_PREFIX_CHARACTERS = 3
"""Shorter terms match whole words only."""
MAX_INDEXED_CHARACTERS = 100_000
"""Characters of a call's search text PostgreSQL indexes (its `tsvector` holds at most
1 MB: a longer one would fail the call's write); SQLite's FTS5 indexes all of it."""

# A term: letters and digits, as FTS5's unicode61 tokenizer and PostgreSQL's parser
# split text into words (everything else separates them).
_TERM = re.compile(r"[^\W_]+")


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


def search_terms(words: Iterable[str]) -> tuple[str, ...]:
    """The terms of a search's words, in lower case, each once, in order: `Auto-renewal,
    FRIDAY` -> ("auto", "renewal", "friday"); punctuation alone makes none."""
    found: dict[str, None] = {}
    for word in words:
        for term in _TERM.findall(word.casefold()):
            found.setdefault(term, None)
    return tuple(found)


def is_prefix(term: str) -> bool:
    """Whether a term also matches the longer words it begins: from three characters on
    (`a` or `to` as a prefix would read most of the index, for words people rarely mean)."""
    return len(term) >= MIN_PREFIX_CHARACTERS


def fts5_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression: every term, each a quoted string matching the words it
    begins (`"refund"* AND "friday"*`; a short one the word alone: `"to"`)."""
    return " AND ".join(
        '"' + term.replace('"', '""') + '"' + ("*" if is_prefix(term) else "") for term in terms
    )


def tsquery(terms: Iterable[str]) -> str:
    """A PostgreSQL `to_tsquery` text: every term, each quoted and matching the words it
    begins (`'refund':* & 'friday':*`; a short one the word alone: `'to'`). PostgreSQL's
    parser keeps a sign with the digits after it (`+14155550123`, the `-0142` of
    `555-0142`), so a term of digits also matches them signed."""
    return " & ".join(_ts_term(term) for term in terms)


def _ts_term(term: str) -> str:
    quoted = term.replace("\\", "\\\\").replace("'", "''")
    suffix = ":*" if is_prefix(term) else ""
    if not term[:1].isdigit():
        return f"'{quoted}'{suffix}"
    return "(" + " | ".join(f"'{sign}{quoted}'{suffix}" for sign in ("", "+", "-")) + ")"
