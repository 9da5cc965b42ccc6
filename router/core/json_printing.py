"""How templates that produce JSON print values, so no event text can change the document.

A JSON template's finalizer does not write a value straight into the output: it writes
both ways the value could be needed, between private-use markers, and `place_values`
picks one once the whole template has rendered and the position of each value is known:

- inside a JSON string (`"summary": "{{ summary }}"`): the value's text escaped for a
  JSON string (quotes, backslashes, line breaks and control characters);
- anywhere else (`"summary": {{ summary }}`): a whole JSON value. Text becomes a JSON
  string; numbers, booleans, null, lists and mappings their JSON; the output of
  `tojson` (a `JsonValue`) goes in as it is.

A value the call lacks (`router.core.missing_values`) prints as null does: `""` inside a
string, `null` as a whole value.

Either way a value fills exactly one JSON token: it can neither close a string nor add
keys, elements or blocks. For the usual Jinja idiom `{{ "," if not loop.last }}`, the
empty result of an inline `if` without `else` prints nothing, and a comma printed right
after a value (where only a separator can stand) is a separator; where a value is
expected, a comma is text like any other.

Marker characters that come from event text are written as `\\uXXXX` escapes, so only
the finalizer's own markers are ever read as markers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jinja2

from router.core.missing_values import json_default, printed_as_none

_OPEN, _SPLIT, _CLOSE = "\ue000", "\ue001", "\ue002"
MARKER_CHARACTERS = frozenset((_OPEN, _SPLIT, _CLOSE))
_MARKER_ESCAPES = str.maketrans({char: f"\\u{ord(char):04x}" for char in MARKER_CHARACTERS})
# A backslash escape inside a string, a quote, or one marked value (never a marker escaped).
_TOKEN = re.compile(
    r'\\[^\ue000-\ue002]|"|\ue000([^\ue000-\ue002]*)\ue001([^\ue000-\ue002]*)\ue002', re.DOTALL
)
_SEPARATOR = re.compile(r" *, *")
_JSON_WHITESPACE = " \t\r\n"
_VALUE_EXPECTED_AFTER = frozenset("[{,:")


class JsonValue(str):
    """A whole JSON value (what `tojson` returns in a JSON template), printed as it is
    outside quotes, and as text inside them."""


def json_string_content(text: str) -> str:
    """`text` escaped to stand between the quotes of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1].translate(_MARKER_ESCAPES)


def to_json_value(value: Any, indent: int | None = None) -> JsonValue:
    """The `tojson` filter of JSON templates: plain JSON (no `\\u003c`-style escapes, so
    a Slack template still escapes `<` in it), marked as a whole value."""
    return JsonValue(json.dumps(value, ensure_ascii=False, indent=indent, default=json_default))


def mark_value(value: Any, escape: Callable[[str], str]) -> str:
    """The finalizer of a JSON template: `value` in both of its printed forms, marked.

    `escape` runs on the value's text first (Slack's mrkdwn escaping for blocks)."""
    value = printed_as_none(value)  # a value the call lacks prints as null does
    if isinstance(value, jinja2.Undefined):
        return ""  # Jinja's empty value: `{{ x if c }}` with c false
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
    placed: list[str] = []
    in_string = after_value = False
    position = 0
    for match in _TOKEN.finditer(rendered):
        between = rendered[position : match.start()]
        position = match.end()
        placed.append(between)
        significant = between.strip(_JSON_WHITESPACE)
        if significant and not in_string:
            after_value = significant[-1] not in _VALUE_EXPECTED_AFTER
        piece = match[0]
        if piece == '"':
            in_string = not in_string
            after_value = not in_string
            placed.append(piece)
        elif match[1] is None or in_string:
            placed.append(piece if match[1] is None else match[1])
        elif after_value and _SEPARATOR.fullmatch(match[1]):
            placed.append(match[1])
            after_value = False
        else:
            placed.append(match[2])
            after_value = True
    placed.append(rendered[position:])
    text = "".join(placed)
    if any(marker in text for marker in MARKER_CHARACTERS):
        raise ValueError("a value is printed where it cannot stand (right after a backslash?)")
    return text
