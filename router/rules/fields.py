"""Reading a field path (`variables.tier`, `transcript.0.role`) from an event's JSON data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

FieldPath = tuple[str, ...]
Getter = Callable[[Mapping[str, Any]], Any]


def getter(path: FieldPath) -> Getter:
    """Read a field path from an event; None when any step is missing or null.

    Dots step into objects; a segment made of ASCII digits also indexes a list.
    """
    if len(path) == 1:
        (key,) = path

        def get_top(event: Mapping[str, Any]) -> Any:
            return event.get(key)

        return get_top
    steps = tuple((key, int(key) if key.isascii() and key.isdigit() else None) for key in path)

    def get_nested(event: Mapping[str, Any]) -> Any:
        node: Any = event
        for key, index in steps:
            if isinstance(node, dict):
                node = node.get(key)
            elif index is not None and isinstance(node, list):
                node = node[index] if index < len(node) else None
            elif isinstance(node, Mapping):  # after dict and list: an ABC check is slower
                node = node.get(key)
            else:
                return None
            if node is None:
                return None
        return node

    return get_nested
