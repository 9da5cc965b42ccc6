"""What `check` says about a `when:` block beyond what compiling it checks (`compile_when`
refuses what cannot be read; this reads what can be, against RevRing's post-call schema,
`router.core.call_fields`). Pure.

- **Errors**: a comparison that cannot hold for the field's kind of value, whatever the
  call (`durationSeconds: {lt: ten}`, `{lt: 10s}`, `fromNumber: 14155550123` unquoted,
  `transcript: hello`).
- **Warnings**: a field path the schema does not have (`staus`, with "did you mean"),
  a `status` or `direction` RevRing does not send, and a rule that can never match where
  a quick look proves it: one field required to be two different values at once, `in:
  []`, bounds that exclude each other, absent and compared at once.

Each finding's `path` is relative to the `when:` mapping, like `ConditionError`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from router.core.call_fields import (
    CALL_FIELDS,
    FREE_FIELDS,
    KNOWN_VALUES,
    FieldKind,
    did_you_mean,
    unknown_field,
)
from router.rules.matching import COMBINATORS, OPERATORS, kind_of

_Path = tuple[Any, ...]


@dataclass(frozen=True)
class WhenFinding:
    """One problem of a `when:` block: an error (it can never hold) or a warning."""

    path: _Path
    message: str
    error: bool = False
    at_key: bool = False


@dataclass(frozen=True)
class _Test:
    field: str
    op: str  # a bare value is an `eq`, a bare list an `in`
    operand: Any
    path: _Path  # of the operator, or of the field's key for a bare value or list
    key_path: _Path  # of the field's key

    @property
    def written(self) -> str:
        """The operator as written, and a space; nothing for a bare value or list."""
        return "" if self.path == self.key_path else f"{self.op} "


def lint_when(when: Any) -> list[WhenFinding]:
    """Every finding of a `when:` block (malformed parts are left to `compile_when`)."""
    if not isinstance(when, dict):
        return []
    tests = list(_tests(when, ()))
    findings: list[WhenFinding] = []
    seen_fields: set[str] = set()
    for test in tests:
        if test.field not in seen_fields:
            seen_fields.add(test.field)
            problem = unknown_field(test.field.split("."))
            if problem is not None:
                findings.append(WhenFinding(test.key_path, problem, at_key=True))
        findings.extend(_kind_findings(test))
    findings.extend(_never_matching(when, (), top=True))
    return findings


def _tests(mapping: dict[Any, Any], path: _Path) -> Iterator[_Test]:
    """Every (field, operator, operand) of a `when` mapping, at any depth."""
    for key, value in mapping.items():
        entry = (*path, key)
        if key in ("all", "any") and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _tests(item, (*entry, index))
        elif key == "not" and isinstance(value, dict):
            yield from _tests(value, entry)
        elif isinstance(key, str) and key and key not in COMBINATORS and all(key.split(".")):
            yield from _field_tests(key, value, entry)


def _field_tests(field: str, condition: Any, path: _Path) -> Iterator[_Test]:
    if isinstance(condition, dict):
        for op, operand in condition.items():
            if op in OPERATORS:
                yield _Test(field, op, operand, (*path, op), path)
    elif isinstance(condition, list):
        yield _Test(field, "in", condition, path, path)
    else:
        yield _Test(field, "eq", condition, path, path)


# -- kinds ----------------------------------------------------------------------------------


def _field_kind(field: str) -> FieldKind | None:
    """The kind of value at a field path; None when the schema does not say."""
    segments = field.split(".")
    if len(segments) > 1 or segments[0] in FREE_FIELDS - {"transcript"}:
        return None
    kind = CALL_FIELDS.get(segments[0])
    return None if kind is FieldKind.ANY else kind


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_DURATION = re.compile(r"\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*")


def _fits(kind: FieldKind, op: str, operand: Any) -> bool:
    """Whether `op operand` can hold for some value of `kind`."""
    if op == "exists":
        return True
    if kind is FieldKind.LIST:
        return op in ("contains", "ne", "not_in")
    text = isinstance(operand, str)
    if op in ("regex", "startswith"):
        return kind in (FieldKind.TEXT, FieldKind.TIMESTAMP)
    if op == "contains":
        return kind in (FieldKind.TEXT, FieldKind.TIMESTAMP) and text
    if kind is FieldKind.TEXT:
        return text
    if kind is FieldKind.WHOLE_NUMBER:
        return _is_number(operand)
    return text or _is_number(operand)  # a timestamp comes as ISO text or unix seconds


def _hint(kind: FieldKind, operand: Any) -> str:
    if kind is FieldKind.WHOLE_NUMBER and isinstance(operand, str):
        if operand.strip().isdigit():
            return f" (write {operand.strip()} without quotes)"
        if _DURATION.fullmatch(operand):
            return " (it counts seconds: write a number, like 10)"
    if kind is FieldKind.TEXT and isinstance(operand, bool):
        return " (YAML reads yes/no/on/off as true/false: quote it)"
    if kind is FieldKind.TEXT and _is_number(operand):
        return f" (quote it: '{operand}')"
    if kind is FieldKind.LIST:
        return " (to test its entries, use contains)"
    return ""


def _kind_findings(test: _Test) -> Iterator[WhenFinding]:
    kind = _field_kind(test.field)
    if kind is None:
        return
    operands = test.operand if test.op in ("in", "not_in") else [test.operand]
    if not isinstance(operands, list):
        return
    for index, operand in enumerate(operands):
        if operand is None or isinstance(operand, dict | list):
            continue  # compile_when says what is wrong with it
        if _fits(kind, test.op, operand):
            continue
        where = (*test.path, index) if test.op in ("in", "not_in") else test.path
        yield WhenFinding(
            where,
            f"{test.field} is {kind.value}, so {test.written}{operand!r} ({kind_of(operand)})"
            f" never holds{_hint(kind, operand)}",
            error=True,
        )
        return
    yield from _value_findings(test)


def _value_findings(test: _Test) -> Iterator[WhenFinding]:
    """A `status` or `direction` value RevRing does not send (more may come: a warning)."""
    known = KNOWN_VALUES.get(test.field)
    if known is None or test.op not in ("eq", "ne", "in", "not_in"):
        return
    operands = test.operand if isinstance(test.operand, list) else [test.operand]
    for index, operand in enumerate(operands):
        if isinstance(operand, str) and operand not in known:
            where = (*test.path, index) if isinstance(test.operand, list) else test.path
            yield WhenFinding(
                where,
                f"{test.field} {operand!r} is not one RevRing sends"
                f" ({', '.join(sorted(known))}){did_you_mean(operand, known)}",
            )


# -- rules that can never match ----------------------------------------------------------------


def _conjunction(mapping: dict[Any, Any], path: _Path) -> tuple[list[_Test], list[_Path]]:
    """The tests that must all hold for `mapping` (its own and its `all` items'), and the
    paths of the `any` lists among them."""
    tests: list[_Test] = []
    alternatives: list[_Path] = []
    for key, value in mapping.items():
        entry = (*path, key)
        if key == "all" and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    inner, more = _conjunction(item, (*entry, index))
                    tests.extend(inner)
                    alternatives.extend(more)
        elif key == "any" and isinstance(value, list):
            alternatives.append(entry)
        elif key != "not" and isinstance(key, str) and key and all(key.split(".")):
            tests.extend(_field_tests(key, value, entry))
    return tests, alternatives


def _at(when: dict[Any, Any], path: _Path) -> Any:
    node: Any = when
    for step in path:
        node = node[step]
    return node


def _never_matching(when: dict[Any, Any], path: _Path, *, top: bool) -> Iterator[WhenFinding]:
    mapping = _at(when, path) if path else when
    tests, alternatives = _conjunction(mapping, path)
    by_field: dict[str, list[_Test]] = {}
    for test in tests:
        by_field.setdefault(test.field, []).append(test)
    outcome = "the rule never matches" if top else "this alternative of any never holds"
    for field_tests in by_field.values():
        contradiction = _contradiction(field_tests)
        if contradiction is not None:
            where, reason = contradiction
            yield WhenFinding(where, f"{reason}: {outcome}")
            return
    for any_path in alternatives:
        for index, item in enumerate(_at(when, any_path)):
            if isinstance(item, dict):
                yield from _never_matching(when, (*any_path, index), top=False)


def _same_kind_key(value: Any) -> tuple[str, Any] | None:
    """A value as equality by kind sees it (`1` equals `1.0`, `true` is not `1`)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("text", value)
    if _is_number(value):
        return ("number", float(value))
    return None


def _allowed(test: _Test) -> set[tuple[str, Any]] | None:
    values = test.operand if test.op == "in" else [test.operand]
    if not isinstance(values, list):
        return None
    keys = [_same_kind_key(value) for value in values]
    if any(key is None for key in keys):
        return None
    return {key for key in keys if key is not None}


_SHOWN = {"eq": "{!r}", "in": "one of {!r}", "ne": "not {!r}", "not_in": "none of {!r}"}


def _shown(test: _Test) -> str:
    return _SHOWN.get(test.op, f"{test.op} {{!r}}").format(test.operand)


_LOWER = {"gt": False, "ge": True}  # operator: bound included
_UPPER = {"lt": False, "le": True}


def _contradiction(tests: list[_Test]) -> tuple[_Path, str] | None:
    """Where and why one field's tests exclude each other, if they provably do."""
    field = tests[0].field
    allowed: set[tuple[str, Any]] | None = None
    allowed_by: _Test | None = None
    excluded: set[tuple[str, Any]] = set()
    excluded_by: _Test | None = None
    lower: tuple[float, bool, _Test] | None = None
    upper: tuple[float, bool, _Test] | None = None
    absent = next((t for t in tests if t.op == "exists" and t.operand is False), None)
    for test in tests:
        if absent is not None and test is not absent:
            return test.path, f"{field} cannot be absent (exists: false) and {_shown(test)}"
        if test.op in ("eq", "in"):
            values = _allowed(test)
            if values is None:
                continue
            if not values:
                return test.path, f"{field}: in: [] allows no value"
            if allowed is not None and not allowed & values:
                assert allowed_by is not None
                return test.path, f"{field} cannot be {_shown(allowed_by)} and {_shown(test)}"
            allowed = values if allowed is None else allowed & values
            allowed_by = test
        elif test.op in ("ne", "not_in"):
            plain = _Test(field, "in" if test.op == "not_in" else "eq", test.operand, (), ())
            excluded |= _allowed(plain) or set()
            excluded_by = test
        elif test.op in _LOWER and _is_number(test.operand):
            bound = (float(test.operand), _LOWER[test.op], test)
            lower = bound if lower is None or bound[0] > lower[0] else lower
        elif test.op in _UPPER and _is_number(test.operand):
            bound = (float(test.operand), _UPPER[test.op], test)
            upper = bound if upper is None or bound[0] < upper[0] else upper
        if allowed is not None and excluded_by is not None and allowed <= excluded:
            assert allowed_by is not None
            later = max(allowed_by, excluded_by, key=tests.index)
            reason = f"{field} cannot be {_shown(allowed_by)} and {_shown(excluded_by)}"
            return later.path, reason
    if lower is not None and upper is not None:
        low, low_in, low_test = lower
        high, high_in, high_test = upper
        if low > high or (low == high and not (low_in and high_in)):
            return (
                high_test.path,
                f"{field} cannot be {_shown(low_test)} and {_shown(high_test)}",
            )
    if allowed is not None and (lower is not None or upper is not None):
        numbers = [value for kind, value in allowed if kind == "number"]
        if len(numbers) == len(allowed) and not any(
            _within(number, lower, upper) for number in numbers
        ):
            last = (upper or lower)[2]  # type: ignore[index]
            assert allowed_by is not None
            return last.path, f"{field} cannot be {_shown(allowed_by)} and {_shown(last)}"
    return None


def _within(
    number: float, lower: tuple[float, bool, _Test] | None, upper: tuple[float, bool, _Test] | None
) -> bool:
    if lower is not None and (number < lower[0] or (number == lower[0] and not lower[1])):
        return False
    return not (upper is not None and (number > upper[0] or (number == upper[0] and not upper[1])))
