"""Which rules to evaluate for an event: an index of tests each rule needs to hold.

Pure: built once per rule list, read-only afterwards. From a valid `when:` mapping,
`guard_alternatives` lists what every matching event must satisfy: tests on one field
(*atoms*) that hold whenever the rule holds, one set per alternative (a rule whose
`when` is an `any:` whose every branch has some has one alternative per branch).
`RuleIndex.build` picks one atom per alternative and groups the atoms by field and
kind, so that each group is probed once per event for all its rules:

- string equality (`status: FAILED`, `in: [...]`): a dict from the string;
- `startswith`: a dict from each prefix length's slice of the text;
- `regex`: one RE2 set search of the text for every pattern of the field;
- `contains` with a string: one literal RE2 set search (texts), dict look-ups (lists);
- `lt le gt ge`: a bisection of the field's sorted bounds (numbers and strings apart);
- presence (any test but `exists: false` needs the field present): one `is not None`.

A rule is a candidate when one of its alternatives' chosen atom holds; a rule with an
alternative no group covers is always a candidate. Candidates are then evaluated by
their own compiled condition, in file order, so the index only ever skips rules that
cannot match: the result is the same as evaluating every rule.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.rules.fields import FieldPath, getter
from router.rules.regex import RegexError, compile_search_set

COMBINATORS = ("all", "any", "not")

# Atom kinds, in order of preference when a rule offers several (an equality splits rules
# finest and costs one dict look-up; presence is the weakest).
EQUALS = "equals"  # operand: frozenset of strings
PREFIX = "prefix"  # operand: str
REGEX = "regex"  # operand: str pattern
SUBSTRING = "substring"  # operand: str (contains)
RANGE = "range"  # operand: (op, bound), op in lt le gt ge, bound a number or a string
PRESENT = "present"  # operand: None
_PREFERENCE = {EQUALS: 0, REGEX: 1, SUBSTRING: 1, PREFIX: 2, RANGE: 3, PRESENT: 4}

# A group other than equality is probed only when it stands in for this many rules at
# least: probing a one-pattern RE2 set costs more than evaluating that one rule.
MIN_SHARED = 3


@dataclass(frozen=True)
class Atom:
    path: FieldPath
    kind: str
    operand: Any


Alternative = tuple[Atom, ...]  # every atom holds on every event the alternative matches


# -- what a `when` needs ------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_set(condition: Any) -> frozenset[str] | None:
    """The strings a field must equal for `condition` to hold, if it says so plainly."""
    if isinstance(condition, str):
        return frozenset((condition,))
    if isinstance(condition, list):
        if all(isinstance(option, str) for option in condition):
            return frozenset(condition)
        return None
    if isinstance(condition, dict):
        allowed: frozenset[str] | None = None
        for op in ("eq", "in"):
            guard = _string_set(condition.get(op))
            if guard is not None:
                allowed = guard if allowed is None else allowed & guard
        return allowed
    return None


def _field_atoms(path: FieldPath, condition: Any) -> list[Atom]:
    """Atoms that hold whenever `condition` holds on the field at `path`."""
    atoms: list[Atom] = []
    allowed = _string_set(condition)
    if allowed is not None:
        atoms.append(Atom(path, EQUALS, allowed))
    if isinstance(condition, dict):
        for op, operand in condition.items():
            if op == "startswith":
                atoms.append(Atom(path, PREFIX, operand))
            elif op == "regex":
                atoms.append(Atom(path, REGEX, operand))
            elif op == "contains" and isinstance(operand, str):
                atoms.append(Atom(path, SUBSTRING, operand))
            elif op in ("lt", "le", "gt", "ge") and not (
                isinstance(operand, float) and math.isnan(operand)
            ):
                atoms.append(Atom(path, RANGE, (op, operand)))
        if any(op != "exists" or operand is True for op, operand in condition.items()):
            atoms.append(Atom(path, PRESENT, None))
    else:
        atoms.append(Atom(path, PRESENT, None))  # a value or a list: equality needs one
    return atoms


def _conjunctive_atoms(when: dict[Any, Any]) -> list[Atom]:
    """Atoms of the entries that must all hold: the mapping's own and its `all:` items'."""
    atoms: list[Atom] = []
    for key, condition in when.items():
        if key == "all":
            for item in condition:
                atoms += _conjunctive_atoms(item)
        elif key not in COMBINATORS:
            atoms += _field_atoms(tuple(key.split(".")), condition)
    return atoms


def guard_alternatives(when: Any) -> tuple[Alternative, ...]:
    """What every event matching a valid `when` satisfies: one of the alternatives, each
    a tuple of atoms that all hold. Empty: nothing is known (the rule is unguarded)."""
    if not isinstance(when, dict):
        return ()
    atoms = _conjunctive_atoms(when)
    if atoms:
        return (tuple(atoms),)
    for key, items in when.items():
        if key == "any":
            branches = [guard_alternatives(item) for item in items]
            if all(branches):
                return tuple(alternative for branch in branches for alternative in branch)
    return ()


# -- probing one field --------------------------------------------------------------------

Positions = Sequence[int]
Probe = Callable[[Any], Positions | None]  # the field's value (not None) -> rule positions


def _equality_probe(atoms: dict[Atom, list[int]]) -> dict[str, tuple[int, ...]]:
    buckets: dict[str, list[int]] = {}
    for atom, positions in atoms.items():
        for value in atom.operand:
            buckets.setdefault(value, []).extend(positions)
    return {value: tuple(found) for value, found in buckets.items()}


def _prefix_probe(atoms: dict[Atom, list[int]]) -> Probe:
    by_prefix: dict[str, list[int]] = {}
    for atom, positions in atoms.items():
        by_prefix.setdefault(atom.operand, []).extend(positions)
    table = {prefix: tuple(found) for prefix, found in by_prefix.items()}
    lengths = tuple(sorted({len(prefix) for prefix in table}))

    def probe(value: Any) -> Positions | None:
        if not isinstance(value, str):
            return None
        found: list[int] = []
        for length in lengths:
            if length > len(value):
                break  # a shorter text would be looked up again as its own prefix
            hit = table.get(value[:length])
            if hit:
                found += hit
        return found

    return probe


def _set_probe(atoms: dict[Atom, list[int]], *, literal: bool) -> Probe:
    """Regexes or substrings of one field through one RE2 set search."""
    operands = sorted({atom.operand for atom in atoms})
    where = {operand: index for index, operand in enumerate(operands)}
    table: list[list[int]] = [[] for _ in operands]
    for atom, positions in atoms.items():
        table[where[atom.operand]] += positions
    by_operand = tuple(tuple(found) for found in table)
    every = tuple(position for found in by_operand for position in found)
    search = compile_search_set(operands, literal=literal)
    members = {operand: by_operand[index] for index, operand in enumerate(operands)}

    def probe(value: Any) -> Positions | None:
        if isinstance(value, str):
            hits = search(value)
            if hits is None:
                return every  # RE2 could not answer: evaluate every rule of the group
            found: list[int] = []
            for index in hits:
                found += by_operand[index]
            return found
        if literal and isinstance(value, list):  # contains on a list: membership
            found = []
            for item in value:
                if isinstance(item, str):
                    hit = members.get(item)
                    if hit:
                        found += hit
            return found
        return None

    return probe


@dataclass(frozen=True)
class _Bounds:
    """Rule positions sorted by their bound: `starts[k]` is where the k-th distinct
    bound's rules begin in `flat` (and `starts[-1] == len(flat)`)."""

    bounds: list[Any]
    flat: tuple[int, ...]
    starts: tuple[int, ...]

    @classmethod
    def of(cls, pairs: list[tuple[Any, int]]) -> _Bounds:
        pairs.sort(key=lambda pair: pair[0])
        bounds: list[Any] = []
        starts: list[int] = []
        for index, (bound, _) in enumerate(pairs):
            if not bounds or bounds[-1] != bound:
                bounds.append(bound)
                starts.append(index)
        starts.append(len(pairs))
        return cls(bounds, tuple(position for _, position in pairs), tuple(starts))

    def holding(self, op: str, value: Any) -> Positions:
        """Positions of the rules whose `value OP bound` holds."""
        if op == "lt":  # bound > value
            return self.flat[self.starts[bisect_right(self.bounds, value)] :]
        if op == "le":  # bound >= value
            return self.flat[self.starts[bisect_left(self.bounds, value)] :]
        if op == "gt":  # bound < value
            return self.flat[: self.starts[bisect_left(self.bounds, value)]]
        return self.flat[: self.starts[bisect_right(self.bounds, value)]]  # ge: bound <= value


def _range_probe(atoms: dict[Atom, list[int]]) -> Probe:
    numbers: dict[str, list[tuple[Any, int]]] = {}
    strings: dict[str, list[tuple[Any, int]]] = {}
    for atom, positions in atoms.items():
        op, bound = atom.operand
        side = strings if isinstance(bound, str) else numbers
        side.setdefault(op, []).extend((bound, position) for position in positions)
    by_number = tuple((op, _Bounds.of(pairs)) for op, pairs in numbers.items())
    by_string = tuple((op, _Bounds.of(pairs)) for op, pairs in strings.items())

    def probe(value: Any) -> Positions | None:
        if isinstance(value, str):
            tables = by_string
        elif _is_number(value) and value == value:  # NaN is neither above nor below
            tables = by_number
        else:
            return None
        found: list[int] = []
        for op, table in tables:
            found += table.holding(op, value)
        return found

    return probe


def _present_probe(atoms: dict[Atom, list[int]]) -> Probe:
    every = tuple(position for positions in atoms.values() for position in positions)
    return lambda value: every


_PROBES: dict[str, Callable[[dict[Atom, list[int]]], Probe]] = {
    PREFIX: _prefix_probe,
    REGEX: lambda atoms: _set_probe(atoms, literal=False),
    SUBSTRING: lambda atoms: _set_probe(atoms, literal=True),
    RANGE: _range_probe,
    PRESENT: _present_probe,
}


# -- the index ----------------------------------------------------------------------------

_Group = tuple[FieldPath, str]


def _choose(
    alternatives: Sequence[tuple[Alternative, ...]], excluded: set[_Group]
) -> list[list[Atom] | None]:
    """One atom per alternative of each rule (None: the rule stays unguarded)."""
    distinct: dict[_Group, set[Any]] = {}
    entries: dict[_Group, int] = {}
    for rule_alternatives in alternatives:
        for alternative in rule_alternatives:
            for atom in alternative:
                values = atom.operand if atom.kind == EQUALS else (atom.operand,)
                group = (atom.path, atom.kind)
                distinct.setdefault(group, set()).update(values)
                entries[group] = entries.get(group, 0) + len(values)

    def preference(atom: Atom) -> tuple[int, float]:
        # Among atoms of one kind, the field whose values each stand for the fewest rules
        # (on average) splits them finest.
        group = (atom.path, atom.kind)
        return (_PREFERENCE[atom.kind], entries[group] / max(1, len(distinct[group])))

    chosen: list[list[Atom] | None] = []
    for rule_alternatives in alternatives:
        picks: list[Atom] | None = []
        for alternative in rule_alternatives:
            usable = [atom for atom in alternative if (atom.path, atom.kind) not in excluded]
            if not usable:
                picks = None
                break
            picks.append(min(usable, key=preference))  # type: ignore[union-attr]
        chosen.append(picks or None)
    return chosen


@dataclass(frozen=True)
class RuleIndex:
    """Positions of rules to evaluate for an event: the unguarded ones always, and those
    one of whose chosen atoms holds."""

    unguarded: tuple[int, ...]
    # Per field: its getter, the string-equality buckets, the other groups' probes.
    fields: tuple[tuple[Callable[[Any], Any], dict[str, tuple[int, ...]], tuple[Probe, ...]], ...]
    may_repeat: bool  # a rule with several alternatives can be found twice

    def candidates(self, event: Mapping[str, Any]) -> Sequence[int]:
        if not self.fields:
            return self.unguarded
        positions = list(self.unguarded)
        for get, buckets, probes in self.fields:
            value = get(event)
            if value is None:
                continue  # a missing field holds no atom
            if buckets and isinstance(value, str):
                hit = buckets.get(value)
                if hit:
                    positions += hit
            for probe in probes:
                found = probe(value)
                if found:
                    positions += found
        if self.may_repeat:
            return sorted(set(positions))
        positions.sort()
        return positions

    @classmethod
    def build(cls, alternatives: Sequence[tuple[Alternative, ...]]) -> RuleIndex:
        """The index of rules given, in file order, by their guard alternatives."""
        excluded: set[_Group] = set()
        while True:
            chosen = _choose(alternatives, excluded)
            groups: dict[_Group, dict[Atom, list[int]]] = {}
            for position, picks in enumerate(chosen):
                for atom in picks or ():
                    members = groups.setdefault((atom.path, atom.kind), {})
                    members.setdefault(atom, []).append(position)
            small = {
                group
                for group, atoms in groups.items()
                if group[1] != EQUALS
                and len({p for found in atoms.values() for p in found}) < MIN_SHARED
            }
            probes: dict[_Group, Probe] = {}
            for group, atoms in groups.items():
                if group[1] == EQUALS or group in small:
                    continue
                try:
                    probes[group] = _PROBES[group[1]](atoms)
                except RegexError:
                    small.add(group)  # these patterns cannot share one RE2 set
            if not small:
                break
            excluded |= small
        unguarded = tuple(position for position, picks in enumerate(chosen) if picks is None)
        by_path: dict[FieldPath, tuple[dict[str, tuple[int, ...]], list[Probe]]] = {}
        for (path, kind), atoms in groups.items():
            buckets, path_probes = by_path.setdefault(path, ({}, []))
            if kind == EQUALS:
                buckets.update(_equality_probe(atoms))
            else:
                path_probes.append(probes[(path, kind)])
        fields = tuple(
            (getter(path), buckets, tuple(path_probes))
            for path, (buckets, path_probes) in by_path.items()
        )
        may_repeat = any(len(picks) > 1 for picks in chosen if picks)
        return cls(unguarded, fields, may_repeat)
