"""Matching calls against the rules of rules.yaml. Pure: no I/O, compiled once at load.

(Interface fixed here; the implementation is being written.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Condition = Callable[[Mapping[str, Any]], bool]


class ConditionError(Exception):
    """One problem in a `when:` block; `path` is relative to the `when:` mapping."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class ConditionErrors(Exception):
    """Every problem found in one `when:` block."""

    def __init__(self, errors: list[ConditionError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def compile_when(when: Any) -> Condition:
    """Compile a `when:` mapping (or None: match every call) into a predicate."""
    raise NotImplementedError


@dataclass(frozen=True)
class GroupSpec:
    by: tuple[str, ...]
    window: float
    max: int | None = None


@dataclass(frozen=True)
class CompiledRule:
    name: str
    condition: Condition
    to: tuple[str, ...]
    stop: bool = False
    group: GroupSpec | None = None


@dataclass
class Route:
    """The rules an event matched, in file order, and one target rule per sink."""

    matched: list[CompiledRule] = field(default_factory=list)
    deliveries: dict[str, CompiledRule] = field(default_factory=dict)


def route(rules: Sequence[CompiledRule], event: Mapping[str, Any]) -> Route:
    raise NotImplementedError
