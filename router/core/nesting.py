"""How deeply JSON data nests, measured and bounded without recursion.

Python's JSON encoder and decoder, `str()` of a list and `==` between lists recurse
once per level: a value nested about a thousand levels deep raises `RecursionError`
wherever it is printed, parsed again or compared. A call's body may nest at most
`MAX_DEPTH` levels (DESIGN.md section 5); calls stored before that limit may nest
deeper (orjson reads up to 1,024 levels), so what prints stored data cuts it at the
limit (`clipped`).

Levels count containers: the call object is level 1, its `metrics` object level 2,
a list inside that level 3. Everything here walks level by level, never recursing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64
CLIPPED = "…"  # what stands for a container cut off by `clipped`
# orjson turns an integer literal beyond 64 bits into a float: such a float is at
# least this large. Smaller floats came from float literals and are read exactly.
_LOSSY_FLOAT = 2.0**63


@dataclass(frozen=True, slots=True)
class Shape:
    """What one walk over decoded JSON found."""

    depth: int  # levels of containers; `limit + 1` means deeper than the walk's limit
    big_float: bool  # a float at least 2**63 in size, in the levels walked


def shape(value: Any, limit: int | None = MAX_DEPTH) -> Shape:
    """The depth of decoded JSON data (dicts, lists and scalars, as a JSON parser makes
    them), and whether it holds a float that may stand for a big integer. The walk stops
    below level `limit + 1` (None: it walks everything)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return Shape(0, kind is float and abs(value) >= _LOSSY_FLOAT)
    level: list[Any] = [value]
    depth = 0
    big_float = False
    while level:
        depth += 1
        if limit is not None and depth > limit:
            break
        below: list[Any] = []
        push = below.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    push(child)
                elif kind is float and (child >= _LOSSY_FLOAT or child <= -_LOSSY_FLOAT):
                    big_float = True
        level = below
    return Shape(depth, big_float)


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` (JSON data, or any mappings and lists) nests deeper than `limit`."""
    level = [value] if isinstance(value, Mapping | list | tuple) else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, Mapping) else node)
            if isinstance(child, Mapping | list | tuple)
        ]
    return bool(level)


def too_deep_fields(body: Any, limit: int = MAX_DEPTH) -> list[str]:
    """The top-level fields of a JSON object that take it deeper than `limit` levels
    (`body` when it is not an object, or when none does)."""
    if isinstance(body, Mapping):
        names = [str(name) for name, value in body.items() if deeper_than(value, limit - 1)]
        if names:
            return names
    return ["body"]


def clipped(value: Any, limit: int = MAX_DEPTH) -> Any:
    """`value` itself when it nests at most `limit` levels; else a copy in which every
    container below level `limit` is replaced by `CLIPPED`, safe to print."""
    if not deeper_than(value, limit):
        return value
    root: list[Any] = [None]
    # (container to copy, the copy's parent, the key or index in that parent, its level)
    pending: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while pending:
        node, parent, key, depth = pending.pop()
        if depth > limit:
            parent[key] = CLIPPED
            continue
        if isinstance(node, Mapping):
            copy: Any = dict(node)
            items: Any = copy.items()
        else:
            copy = list(node)
            items = enumerate(copy)
        parent[key] = copy
        for child_key, child in list(items):
            if isinstance(child, Mapping | list | tuple):
                pending.append((child, copy, child_key, depth + 1))
    return root[0]
