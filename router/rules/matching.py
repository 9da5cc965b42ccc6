"""Matching calls against the rules of rules.yaml. Pure: no I/O, compiled once at load.

A `when:` mapping is compiled by `compile_when` into a predicate over the event as
JSON data (a dict; pass `PostCallEvent.model_dump(mode="json")` or the raw body, so
timestamps are ISO strings). Semantics, following DESIGN.md section 6:

- Each key of `when` is a field path: dots step into nested objects
  (`variables.tier`, `metrics.latency.p50`); a segment made of ASCII digits also
  indexes a list (`transcript.0.role`). Every entry must hold. `when: None` or
  `{}` matches every call.
- `all: [...]` and `any: [...]` (lists of such mappings) and `not: {...}` (one
  such mapping) stand where field paths stand, at any depth. A field literally
  named `all`, `any` or `not` therefore cannot be matched at the top of a mapping
  (reach it through its parent, e.g. `variables.any`).
- A condition is a scalar (equals), a list (one of), or a mapping of operators
  (`eq ne in not_in lt le gt ge regex contains startswith exists`); several
  operators in one mapping must all hold.
- Missing and null are the same: a field that is absent *or JSON null* is
  missing, and a missing field matches nothing except `exists: false`
  (`ne` and `not_in` included). `exists: true` holds when the field is present
  and not null. Because of this, `null` is refused as an operand: write
  `{exists: false}`. `not:` inverts, so `not: {field: X}` holds on a missing field.
- Equality is by kind: strings equal strings (case-sensitive), numbers equal
  numbers (`1` equals `1.0`), booleans equal booleans; a boolean is not a number
  and `"1"` is not `1`. `lt le gt ge` compare numbers with numbers and strings with
  strings (ISO timestamps compare as text); other pairs never match.
- `regex` (a search anywhere in the text, as re.search, but run by RE2 in linear time;
  see router.rules.regex) and `startswith` apply to strings only;
  `contains` is a substring test on strings and a membership test on lists.

Every problem in a `when:` block is collected into one `ConditionErrors`, each
with a path relative to the `when:` mapping (an operator's problem points at the
operator's key), so config can report `FILE:LINE:COL`.

`route` evaluates rules in file order. It skips the rules that cannot match through
an index of the tests each rule needs (router.rules.index: string equality, prefixes,
regexes, substrings, bounds, presence), built on first use of a rule list and reused
while that list is unchanged (Config builds its list once per load, so a reload gets a
fresh index). Each `when` is compiled to one generated Python function whose text holds
no config value (see `_Source`); the nested closures it replaces stay the reference.
"""

from __future__ import annotations

import difflib
import itertools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from weakref import WeakKeyDictionary

from router.core.nesting import MAX_DEPTH, deeper_than
from router.rules.fields import FieldPath, Getter, getter
from router.rules.index import Alternative, RuleIndex, guard_alternatives
from router.rules.regex import RegexError, compile_search

Condition = Callable[[Mapping[str, Any]], bool]

_ValueTest = Callable[[Any], bool]
_ErrorPath = tuple[Any, ...]

OPERATORS: tuple[str, ...] = (
    "eq",
    "ne",
    "in",
    "not_in",
    "lt",
    "le",
    "gt",
    "ge",
    "regex",
    "contains",
    "startswith",
    "exists",
)
COMBINATORS: tuple[str, ...] = ("all", "any", "not")
# A `when` nests at most as deep as a call's body may (DESIGN.md section 5): the
# mapping is level 1, each mapping or list inside it one more.
MAX_WHEN_DEPTH = MAX_DEPTH


class ConditionError(Exception):
    """One problem in a `when:` block; `path` is relative to the `when:` mapping."""

    def __init__(self, path: tuple[str | int, ...], message: str, *, at_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.at_key = at_key  # the problem is the key itself (an unknown operator), not its value


class ConditionErrors(Exception):
    """Every problem found in one `when:` block."""

    def __init__(self, errors: list[ConditionError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def compile_when(when: Any) -> Condition:
    """Compile a `when:` mapping (or None: match every call) into a predicate.

    Raises `ConditionErrors` listing every problem of the block.
    """
    if when is None:
        return _match_every_call
    if deeper_than(when, MAX_WHEN_DEPTH):  # compiling and matching recurse once per level
        raise ConditionErrors([ConditionError((), f"nested deeper than {MAX_WHEN_DEPTH} levels")])
    predicate = _compile_closures(when)
    condition = _generate(when) or predicate
    alternatives = guard_alternatives(when)
    if alternatives:
        _GUARDS[condition] = alternatives
    return condition


def _compile_closures(when: Any) -> Condition:
    """`when` as nested closures, one per condition: the reference semantics (and what
    `compile_when` falls back to when a block is too deep for one generated function)."""
    if when is None:
        return _match_every_call
    compiler = _Compiler()
    predicate = compiler.mapping(when, ())
    if compiler.errors:
        raise ConditionErrors(compiler.errors)
    return predicate


def _match_every_call(event: Mapping[str, Any]) -> bool:
    return True


# -- values -------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float)  # bool is an int


def kind_of(value: Any) -> str:
    """How a YAML value is named in an error message: 'a string', 'a list', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if _is_number(value):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date | time):
        return f"a YAML {type(value).__name__} (quote it to compare as text)"
    return type(value).__name__


def _equals(expected: str | int | float | bool) -> _ValueTest:
    """Equality by kind: bool only with bool, number with number, string with string."""
    if isinstance(expected, bool):
        return lambda value: value is expected
    if isinstance(expected, str):
        return lambda value: value == expected  # in JSON data only a string equals a string
    return lambda value: value == expected and _is_number(value)


def _one_of(options: Sequence[str | int | float | bool]) -> _ValueTest:
    strings = frozenset(o for o in options if isinstance(o, str))
    booleans = frozenset(o for o in options if isinstance(o, bool))
    numbers = frozenset(o for o in options if _is_number(o) and o == o)  # NaN equals nothing

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, int | float):
            return value in numbers
        return False

    return test


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _ordered(compare: Callable[[Any, Any], bool], bound: str | int | float) -> _ValueTest:
    if isinstance(bound, str):
        return lambda value: isinstance(value, str) and compare(value, bound)
    return lambda value: _is_number(value) and compare(value, bound)


def _contains(needle: str | int | float | bool) -> _ValueTest:
    member = _equals(needle)
    text = needle if isinstance(needle, str) else None

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return text is not None and text in value
        if isinstance(value, list):
            return any(member(item) for item in value)
        return False

    return test


def _present_and(test: _ValueTest) -> _ValueTest:
    return lambda value: value is not None and test(value)


# -- combining predicates -----------------------------------------------------------------


def _all_of(predicates: Sequence[Condition]) -> Condition:
    if not predicates:
        return _match_every_call
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda event: first(event) and second(event)
    chain = tuple(predicates)

    def every(event: Mapping[str, Any]) -> bool:
        for predicate in chain:  # noqa: SIM110 (a loop is cheaper than a generator)
            if not predicate(event):
                return False
        return True

    return every


def _any_of(predicates: Sequence[Condition]) -> Condition:
    if len(predicates) == 1:
        return predicates[0]
    chain = tuple(predicates)

    def some(event: Mapping[str, Any]) -> bool:
        for predicate in chain:  # noqa: SIM110 (a loop is cheaper than a generator)
            if predicate(event):
                return True
        return False

    return some


def _field_predicate(path: FieldPath, tests: Sequence[_ValueTest]) -> Condition:
    if len(path) == 1:
        # Top-level fields, the common case, read the event directly: one call fewer.
        (key,) = path
        if len(tests) == 1:
            (test,) = tests
            return lambda event: test(event.get(key))
        get: Getter = operator.methodcaller("get", key)
    else:
        get = getter(path)
        if len(tests) == 1:
            (test,) = tests
            return lambda event: test(get(event))
    chain = tuple(tests)

    def every_test(event: Mapping[str, Any]) -> bool:
        value = get(event)
        for test in chain:  # noqa: SIM110 (a loop is cheaper than a generator)
            if not test(value):
                return False
        return True

    return every_test


def _text_equality(path: FieldPath, expected: str) -> Condition:
    """The commonest condition (`status: FAILED`) as one call."""
    if len(path) == 1:
        (key,) = path
        return lambda event: event.get(key) == expected
    get = getter(path)
    return lambda event: get(event) == expected


# -- compiling ----------------------------------------------------------------------------


def _dotted(path: FieldPath) -> str:
    return ".".join(path)


class _Compiler:
    """Compiles one `when:` block, collecting every problem instead of stopping."""

    def __init__(self) -> None:
        self.errors: list[ConditionError] = []

    def fail(self, path: _ErrorPath, message: str, *, at_key: bool = False) -> None:
        self.errors.append(ConditionError(path, message, at_key=at_key))

    def mapping(self, when: Any, path: _ErrorPath) -> Condition:
        if not isinstance(when, dict):
            where = "when" if not path else "this condition"
            self.fail(
                path, f"{where} must be a mapping of field paths to conditions, not {kind_of(when)}"
            )
            return _match_every_call
        predicates = []
        for key, value in when.items():
            entry = (*path, key)
            if key in ("all", "any"):
                predicates.append(self.combination(key, value, entry))
            elif key == "not":
                predicates.append(self.negation(value, entry))
            else:
                predicates.append(self.field(key, value, entry))
        return _all_of(predicates)

    def combination(self, name: str, items: Any, path: _ErrorPath) -> Condition:
        if not isinstance(items, list) or not items:
            self.fail(path, f"{name} needs a non-empty list of condition mappings")
            return _match_every_call
        predicates = []
        for index, item in enumerate(items):
            if isinstance(item, dict) and not item:
                self.fail((*path, index), f"{name}: an empty condition mapping says nothing")
            predicates.append(self.mapping(item, (*path, index)))
        return _all_of(predicates) if name == "all" else _any_of(predicates)

    def negation(self, inner: Any, path: _ErrorPath) -> Condition:
        if not isinstance(inner, dict) or not inner:
            self.fail(path, "not needs one non-empty mapping of conditions")
            return _match_every_call
        predicate = self.mapping(inner, path)
        return lambda event: not predicate(event)

    def field(self, key: Any, condition: Any, path: _ErrorPath) -> Condition:
        field_path = self.field_path(key, path)
        if field_path is None:
            return _match_every_call
        if isinstance(condition, str):
            return _text_equality(field_path, condition)
        name = _dotted(field_path)
        if isinstance(condition, dict):
            tests = self.operators(name, condition, path)
        elif isinstance(condition, list):
            tests = [self.in_list(name, "one of", condition, path, negate=False)]
        elif self.operand_is_scalar(name, "a value", condition, path):
            tests = [_equals(condition)]
        else:
            tests = []
        return _field_predicate(field_path, tests) if tests else _match_every_call

    def field_path(self, key: Any, path: _ErrorPath) -> FieldPath | None:
        if not isinstance(key, str):
            hint = (
                " (YAML reads yes/no/on/off as true/false: quote it)"
                if isinstance(key, bool)
                else ""
            )
            self.fail(path, f"field path {key!r} must be a string{hint}", at_key=True)
            return None
        segments = tuple(key.split("."))
        if not all(segments):
            self.fail(path, f"field path {key!r} has an empty segment", at_key=True)
            return None
        return segments

    def operand_is_scalar(self, name: str, role: str, operand: Any, path: _ErrorPath) -> bool:
        if operand is None:
            self.fail(
                path,
                f"{name}: null is never equal to anything (a null field is missing); "
                "use {exists: false}",
            )
            return False
        if not _is_scalar(operand):
            self.fail(
                path,
                f"{name}: {role} must be a string, number or true/false, not {kind_of(operand)}",
            )
            return False
        return True

    def in_list(
        self, name: str, role: str, options: Any, path: _ErrorPath, *, negate: bool
    ) -> _ValueTest:
        if not isinstance(options, list):
            self.fail(path, f"{name}: {role} needs a list of values, not {kind_of(options)}")
            return _match_every_call
        valid = True
        for index, option in enumerate(options):
            valid = self.operand_is_scalar(name, f"{role} entry", option, (*path, index)) and valid
        test = _one_of(options if valid else [])
        return _present_and(lambda value: not test(value)) if negate else test

    def operators(self, name: str, ops: dict[Any, Any], path: _ErrorPath) -> list[_ValueTest]:
        if not ops:
            self.fail(path, f"{name}: empty condition; give a value, a list, or operators")
            return []
        tests = []
        for op, operand in ops.items():
            test = self.operator(name, op, operand, (*path, op))
            if test is not None:
                tests.append(test)
        return tests

    def operator(self, name: str, op: Any, operand: Any, path: _ErrorPath) -> _ValueTest | None:
        if op in ("eq", "ne"):
            if op == "eq" and isinstance(operand, list):
                self.fail(path, f"{name}: eq needs one value; for one of several, use in")
                return None
            if not self.operand_is_scalar(name, op, operand, path):
                return None
            equal = _equals(operand)
            return equal if op == "eq" else _present_and(lambda value: not equal(value))
        if op in ("in", "not_in"):
            return self.in_list(name, op, operand, path, negate=op == "not_in")
        if op in _COMPARISONS:
            if not (isinstance(operand, str) or _is_number(operand)):
                self.fail(path, f"{name}: {op} needs a number or a string, not {kind_of(operand)}")
                return None
            return _ordered(_COMPARISONS[op], operand)
        if op == "regex":
            return self.regex(name, operand, path)
        if op == "contains":
            if not self.operand_is_scalar(name, op, operand, path):
                return None
            return _contains(operand)
        if op == "startswith":
            if not isinstance(operand, str):
                self.fail(path, f"{name}: startswith needs a string, not {kind_of(operand)}")
                return None
            return lambda value: isinstance(value, str) and value.startswith(operand)
        if op == "exists":
            if not isinstance(operand, bool):
                self.fail(path, f"{name}: exists needs true or false, not {kind_of(operand)}")
                return None
            return (lambda value: value is not None) if operand else (lambda value: value is None)
        self.fail(path, self.unknown_operator(name, op), at_key=True)
        return None

    def regex(self, name: str, pattern: Any, path: _ErrorPath) -> _ValueTest | None:
        if not isinstance(pattern, str):
            self.fail(path, f"{name}: regex needs a string pattern, not {kind_of(pattern)}")
            return None
        try:
            occurs_in = compile_search(pattern)
        except RegexError as exc:
            self.fail(path, f"{name}: invalid regex {pattern!r}: {exc}")
            return None
        return lambda value: isinstance(value, str) and occurs_in(value)

    @staticmethod
    def unknown_operator(name: str, op: Any) -> str:
        message = f"{name}: unknown operator {op!r}; expected one of: {', '.join(OPERATORS)}"
        if not isinstance(op, str):
            return message
        close = _OPERATOR_SYNONYMS.get(op.lower()) or next(
            iter(difflib.get_close_matches(op.lower(), OPERATORS, n=1)), None
        )
        if op in COMBINATORS:
            return f"{message} ({op} stands where a field path stands, not inside a condition)"
        if close:
            return f"{message} (did you mean {close!r}?)"
        return f"{message} (to test a nested field, write its dotted path: '{name}.{op}')"


_OPERATOR_SYNONYMS: dict[str, str] = {
    "equals": "eq",
    "==": "eq",
    "not_equals": "ne",
    "!=": "ne",
    "neq": "ne",
    "nin": "not_in",
    "notin": "not_in",
    "<": "lt",
    "lte": "le",
    "<=": "le",
    ">": "gt",
    "gte": "ge",
    ">=": "ge",
    "matches": "regex",
    "match": "regex",
    "starts_with": "startswith",
    "has": "contains",
}


# -- explaining a mismatch ---------------------------------------------------------------

_WANTED: dict[str, str] = {
    "eq": "{!r}",
    "ne": "anything but {!r}",
    "lt": "less than {!r}",
    "le": "at most {!r}",
    "gt": "more than {!r}",
    "ge": "at least {!r}",
    "regex": "a match for {!r}",
    "contains": "something containing {!r}",
    "startswith": "text starting with {!r}",
}
_SHOWN_CHARACTERS = 80


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else text[: _SHOWN_CHARACTERS - 1] + "…"


def _wanted(op: str, operand: Any) -> str:
    if op in ("in", "not_in"):
        listed = ", ".join(_shown(option) for option in operand)
        return f"{'one' if op == 'in' else 'none'} of {listed}" if operand else "no value at all"
    if op == "exists":
        return "a value" if operand else "no value"
    return _WANTED[op].format(operand)


def explain(when: Any, event: Mapping[str, Any]) -> str | None:
    """Why a valid `when` does not hold for `event`: its first condition that fails, with
    the call's value there (`hangupCause is 'USER_ENDED', wanted 'VOICEMAIL_DETECTED'`);
    None when it holds. For `route --explain`: each condition is compiled again here as
    closures (the reference semantics), so the generated matcher `route` runs stays as
    it is."""
    if not when:
        return None
    for key, value in when.items():
        if key == "all":
            failed = next(filter(None, (explain(item, event) for item in value)), None)
        elif key == "any":
            failed = None
            if not any(_compile_closures(item)(event) for item in value):
                first = explain(value[0], event)
                failed = f"no alternative of any holds (the first: {first})"
        elif key == "not":
            failed = None
            if _compile_closures(value)(event):
                failed = f"not {json.dumps(value, default=str)} holds, wanted it not to"
        else:
            failed = _explain_field(key, value, event)
        if failed is not None:
            return failed
    return None


def _explain_field(key: str, condition: Any, event: Mapping[str, Any]) -> str | None:
    value = getter(tuple(key.split(".")))(event)
    if isinstance(condition, dict):
        tests = list(condition.items())
    elif isinstance(condition, list):
        tests = [("in", condition)]
    else:
        tests = [("eq", condition)]
    for op, operand in tests:
        if not _compile_closures({key: {op: operand}})(event):
            found = "missing" if value is None else _shown(value)
            return f"{key} is {found}, wanted {_wanted(op, operand)}"
    return None


# -- one function per `when` ------------------------------------------------------------

# A block nested deeper than this stays closures (Python's parser limits nesting).
_MAX_GENERATED_DEPTH = 24
_GENERATED = itertools.count(1)
_SYMBOLS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_VALUE = "\x00"  # where a template reads the field's value


class _Source:
    """Python source for one valid `when`: a single function, instead of a call per
    condition (the closures cost about 0.1 µs a call).

    The text is made of fixed templates and generated names only (`c3`, `v0`); every
    value from the config (field names, strings, numbers, patterns) reaches the function
    as a closure cell `cN`, never as text, so nothing a rules.yaml says can become code.
    """

    def __init__(self) -> None:
        self.constants: list[Any] = []
        self.fields = 0

    def constant(self, value: Any) -> str:
        self.constants.append(value)
        return f"c{len(self.constants) - 1}"

    def mapping(self, when: dict[Any, Any]) -> str:
        parts = []
        for key, value in when.items():
            if key in ("all", "any"):
                joint = " and " if key == "all" else " or "
                parts.append("(" + joint.join(self.mapping(item) for item in value) + ")")
            elif key == "not":
                parts.append(f"(not {self.mapping(value)})")
            else:
                parts.append(self.field(tuple(key.split(".")), value))
        return "(" + " and ".join(parts) + ")" if parts else "True"

    def field(self, path: FieldPath, condition: Any) -> str:
        if isinstance(condition, dict):
            tests = [self.operator(op, operand) for op, operand in condition.items()]
        elif isinstance(condition, list):
            tests = [self.one_of(condition)]
        else:
            tests = [self.equals(condition)]
        if len(path) == 1:
            read = f"event.get({self.constant(path[0])})"
        else:
            read = f"{self.constant(getter(path))}(event)"
        name = f"v{self.fields}"
        self.fields += 1
        # Every template reads the value first, so the first read binds it.
        text = tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")"
        return text.replace(_VALUE, f"({name} := {read})", 1).replace(_VALUE, name)

    def equals(self, expected: Any) -> str:
        c = self.constant(expected)
        if isinstance(expected, bool):
            return f"{_VALUE} is {c}"
        if isinstance(expected, str):
            return f"{_VALUE} == {c}"
        number = f"isinstance({_VALUE}, _NUMBER) and not isinstance({_VALUE}, bool)"
        return f"({_VALUE} == {c} and {number})"

    def one_of(self, options: list[Any]) -> str:
        if all(isinstance(option, str) for option in options):
            return (
                f"(isinstance({_VALUE}, str) and {_VALUE} in {self.constant(frozenset(options))})"
            )
        return f"{self.constant(_one_of(options))}({_VALUE})"

    def operator(self, op: str, operand: Any) -> str:
        if op == "eq":
            return self.equals(operand)
        if op == "ne":
            return f"({_VALUE} is not None and not {self.equals(operand)})"
        if op == "in":
            return self.one_of(operand)
        if op == "not_in":
            return f"({_VALUE} is not None and not {self.one_of(operand)})"
        if op in _SYMBOLS:
            c, symbol = self.constant(operand), _SYMBOLS[op]
            if isinstance(operand, str):
                return f"(isinstance({_VALUE}, str) and {_VALUE} {symbol} {c})"
            return (
                f"(isinstance({_VALUE}, _NUMBER) and not isinstance({_VALUE}, bool)"
                f" and {_VALUE} {symbol} {c})"
            )
        if op == "regex":
            search = self.constant(compile_search(operand))
            return f"(isinstance({_VALUE}, str) and {search}({_VALUE}))"
        if op == "contains":
            return f"{self.constant(_contains(operand))}({_VALUE})"
        if op == "startswith":
            return f"(isinstance({_VALUE}, str) and {_VALUE}.startswith({self.constant(operand)}))"
        if op == "exists":
            return f"{_VALUE} is not None" if operand else f"{_VALUE} is None"
        raise AssertionError(f"not a valid operator: {op!r}")  # compile_when checked it


def _depth(when: Any) -> int:
    if isinstance(when, dict):
        return 1 + max((_depth(value) for value in when.values()), default=0)
    if isinstance(when, list):
        return 1 + max((_depth(item) for item in when), default=0)
    return 0


def _when_source(when: dict[Any, Any]) -> tuple[str, list[Any]]:
    """The generated module text for a valid `when`, and the constants it is given."""
    source = _Source()
    expression = source.mapping(when)
    parameters = ", ".join(f"c{i}" for i in range(len(source.constants)))
    text = (
        f"def make({parameters}):\n"
        f"    def when(event):\n"
        f"        return {expression}\n"
        f"    return when\n"
    )
    return text, source.constants


def _generate(when: Any) -> Condition | None:
    """One generated function for a valid `when` (None: too deep, keep the closures)."""
    if not isinstance(when, dict) or _depth(when) > _MAX_GENERATED_DEPTH:
        return None
    text, constants = _when_source(when)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "isinstance": isinstance,
        "str": str,
        "bool": bool,
        "_NUMBER": (int, float),
    }
    try:
        # A name of its own per block, so that profilers tell the rules apart.
        code = compile(text, f"<when {next(_GENERATED)}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    # The text holds no config value (see _Source); the values are arguments.
    exec(code, namespace)  # noqa: S102
    generated: Condition = namespace["make"](*constants)
    return generated


# -- the index ----------------------------------------------------------------------------

# For each compiled `when`, the alternatives of which one holds on every event it matches
# (router.rules.index). No entry: nothing is known, the rule is always evaluated.
_GUARDS: WeakKeyDictionary[Condition, tuple[Alternative, ...]] = WeakKeyDictionary()

_INDEX_CACHE_SIZE = 8
_index_cache: dict[int, tuple[tuple[CompiledRule, ...], RuleIndex]] = {}


def _index_for(rules: Sequence[CompiledRule]) -> RuleIndex:
    """The index of a rule list, built once and reused while the list is unchanged."""
    cached = _index_cache.get(id(rules))
    if cached is not None and (cached[0] is rules or cached[0] == tuple(rules)):
        return cached[1]
    snapshot = rules if isinstance(rules, tuple) else tuple(rules)
    index = RuleIndex.build([_GUARDS.get(rule.condition, ()) for rule in snapshot])
    if len(_index_cache) >= _INDEX_CACHE_SIZE:
        _index_cache.pop(next(iter(_index_cache)), None)  # two threads may evict the same
    _index_cache[id(rules)] = (snapshot, index)
    return index


# -- routing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    by: tuple[str, ...]
    window: float
    max: int | None = None


def group_key(spec: GroupSpec, event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's values at the `by` paths (dotted, as in `when`), in `by` order; a
    missing value is None."""
    return {path: getter(tuple(path.split(".")))(event) for path in spec.by}


def group_key_json(key: Mapping[str, Any]) -> str:
    """A group key as canonical JSON text: equal keys give equal text (paths keep `by`
    order, objects inside values are sorted), so the store can compare them as strings."""
    canonical = {path: _canonical_value(value) for path, value in key.items()}
    return json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))


def _canonical_value(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    except (RecursionError, ValueError, TypeError):
        return "<value nested too deeply to group by>"  # such calls share one digest


@dataclass(frozen=True)
class EscalateSpec:
    """A rule's `escalate`: after `after` seconds unacknowledged, a delivery to each of `to`."""

    after: float
    to: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    condition: Condition
    to: tuple[str, ...]
    stop: bool = False
    group: GroupSpec | None = None
    active_during: tuple[str, ...] = ()  # names of time intervals (router.rules.muting)
    muted_during: tuple[str, ...] = ()
    escalate: EscalateSpec | None = None


@dataclass
class Route:
    """The rules an event matched, in file order, and one target rule per sink."""

    matched: list[CompiledRule] = field(default_factory=list)
    deliveries: dict[str, CompiledRule] = field(default_factory=dict)


def route(rules: Sequence[CompiledRule], event: Mapping[str, Any]) -> Route:
    """Evaluate `rules` in file order against one event.

    Every matching rule fires; each sink appears once in `deliveries`, with the first
    matching rule that routes to it; a matching rule with `stop` ends evaluation.
    """
    result = Route()
    deliveries = result.deliveries
    fire = result.matched.append
    for position in _index_for(rules).candidates(event):
        rule = rules[position]
        if not rule.condition(event):
            continue
        fire(rule)
        for sink in rule.to:
            if sink not in deliveries:
                deliveries[sink] = rule
        if rule.stop:
            break
    return result
