"""What RevRing's post-call schema says about each field of a call (`PostCallEvent`), for
`check`: which names are fields, what kind of value each holds, which values `status`
and `direction` are documented to take, and the closest field to a name that is none.

Under `variables`, `metrics` and a transcript entry the schema fixes no shape: any path
there may exist. A call may also carry fields the schema does not name yet (they are
kept), so a name outside it is worth a warning, never an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from types import NoneType
from typing import Any, get_args

from router.core.events import KNOWN_DIRECTIONS, KNOWN_STATUSES, PostCallEvent


class FieldKind(StrEnum):
    TEXT = "text"
    WHOLE_NUMBER = "a whole number"
    TIMESTAMP = "a timestamp"  # ISO 8601 text or unix seconds, as sent
    LIST = "a list"
    ANY = "any JSON"


def _kind(annotation: Any) -> FieldKind:
    kinds = {arg for arg in get_args(annotation) or (annotation,) if arg is not NoneType}
    if kinds == {str}:
        return FieldKind.TEXT
    if kinds == {datetime}:
        return FieldKind.TIMESTAMP
    if any(getattr(kind, "__origin__", kind) is list for kind in kinds):
        return FieldKind.LIST
    if any(int in (get_args(kind) or (kind,)) for kind in kinds):
        return FieldKind.WHOLE_NUMBER
    return FieldKind.ANY


CALL_FIELDS: dict[str, FieldKind] = {
    name: _kind(info.annotation) for name, info in PostCallEvent.model_fields.items()
}
REQUIRED_FIELDS: tuple[str, ...] = tuple(
    name for name, info in PostCallEvent.model_fields.items() if info.is_required()
)
# Fields whose inside has no fixed shape: any path under them may exist.
FREE_FIELDS = frozenset({"variables", "metrics", "transcript"})
KNOWN_VALUES: dict[str, frozenset[str]] = {
    "status": KNOWN_STATUSES,
    "direction": KNOWN_DIRECTIONS,
}


def _squashed(word: str) -> str:
    return re.sub(r"[_\-\s]", "", word).lower()


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate `word` most likely misspells: one equal but for case, `_` and `-`
    (`duration_seconds`, `Status`), else the closest by `difflib`, if close enough."""
    options = list(candidates)
    squashed = {_squashed(option): option for option in options}
    if _squashed(word) in squashed:
        return squashed[_squashed(word)]
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.7)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'status'?)`, or nothing when no candidate is close."""
    close = closest(word, candidates)
    return f" (did you mean {close!r}?)" if close is not None and close != word else ""


def unknown_field(path: Sequence[str]) -> str | None:
    """Why the dotted `path` names no field of a call, None when it names one (or a place
    under `variables`, `metrics` or a transcript entry, which may hold anything)."""
    root = path[0]
    kind = CALL_FIELDS.get(root)
    if kind is None:
        return (
            f"{root!r} is not a field of RevRing's post-call event{did_you_mean(root, CALL_FIELDS)}"
        )
    if len(path) > 1 and root not in FREE_FIELDS and kind is not FieldKind.ANY:
        return f"{root!r} is {kind.value}: there is no {'.'.join(path)!r} in it"
    return None
