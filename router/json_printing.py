"""How templates that produce JSON print values, so no event text can change the document.

A JSON template's finalizer does not write a value straight into the output: it writes
both ways the value could be needed, between private-use markers, and `place_values`
picks one once the whole template has rendered and the position of each value is known:

- inside a JSON string (`"summary": "{{ summary }}"`): the value's text escaped for a
  JSON string (quotes, backslashes, line breaks and control characters);
- anywhere else (`"summary": {{ summary }}`): a whole JSON value. Text becomes a JSON
  string; numbers, booleans, null, lists and mappings their JSON; the output of
  `tojson` (a `JsonValue`) goes in as it is.

Either way a value fills exactly one JSON token: it can neither close a string nor add
keys, elements or blocks. Marker characters that come from event text are written as
`\\uXXXX` escapes, so only the finalizer's own markers are ever read as markers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_OPEN, _SPLIT, _CLOSE = "\ue000", "\ue001", "\ue002"
MARKER_CHARACTERS = frozenset((_OPEN, _SPLIT, _CLOSE))
_MARKER_ESCAPES = str.maketrans({char: f"\\u{ord(char):04x}" for char in MARKER_CHARACTERS})
# A backslash escape inside a string, a quote, or one marked value (never a marker escaped).
_TOKEN = re.compile(
    r'\\[^\ue000-\ue002]|"|\ue000([^\ue000-\ue002]*)\ue001([^\ue000-\ue002]*)\ue002', re.DOTALL
)


class JsonValue(str):
    """A whole JSON value (what `tojson` returns in a JSON template), printed as it is
    outside quotes, and as text inside them."""


def json_string_content(text: str) -> str:
    """`text` escaped to stand between the quotes of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1].translate(_MARKER_ESCAPES)


def to_json_value(value: Any, indent: int | None = None) -> JsonValue:
    """The `tojson` filter of JSON templates: plain JSON (no `\\u003c`-style escapes, so
    a Slack template still escapes `<` in it), marked as a whole value."""
    return JsonValue(json.dumps(value, ensure_ascii=False, indent=indent, default=str))


def mark_value(value: Any, escape: Callable[[str], str]) -> str:
    """The finalizer of a JSON template: `value` in both of its printed forms, marked.

    `escape` runs on the value's text first (Slack's mrkdwn escaping for blocks)."""
    if value is None:
        inside, outside = "", "null"
    elif isinstance(value, str) and not isinstance(value, JsonValue):
        inside = json_string_content(escape(value))
        outside = f'"{inside}"'
    else:
        whole = value if isinstance(value, JsonValue) else to_json_value(value)
        inside = json_string_content(escape(str(value)))
        outside = escape(whole).translate(_MARKER_ESCAPES)
    return f"{_OPEN}{inside}{_SPLIT}{outside}{_CLOSE}"


def place_values(rendered: str) -> str:
    """The rendered template with each marked value in the form its position needs.

    Raises ValueError when a marker is left over (a value printed right after a
    backslash, or a marker the finalizer did not write)."""
    in_string = False

    def place(match: re.Match[str]) -> str:
        nonlocal in_string
        piece = match[0]
        if piece == '"':
            in_string = not in_string
            return piece
        if match[1] is None:
            return piece
        return match[1] if in_string else match[2]

    placed = _TOKEN.sub(place, rendered)
    if any(marker in placed for marker in MARKER_CHARACTERS):
        raise ValueError("a value is printed where it cannot stand (right after a backslash?)")
    return placed
