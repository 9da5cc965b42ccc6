"""Properties of the rules matcher, checked on generated events, conditions and rule lists."""

from __future__ import annotations

import re
from typing import Any
from weakref import WeakKeyDictionary

from hypothesis import given, settings
from hypothesis import strategies as st

from router.rules.matching import (
    CompiledRule,
    Condition,
    _compile_closures,
    _when_source,
    compile_when,
    route,
)

FIELDS = ["status", "direction", "cause", "n.a", "n.0", "list.1"]
TEXT = st.text(alphabet="abAB1", max_size=3)
NUMBER = st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False)
SCALAR = TEXT | NUMBER | st.booleans()
VALUE = st.none() | SCALAR | st.lists(SCALAR, max_size=3)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name in ("status", "direction", "cause"):
        if draw(st.booleans()):
            event[name] = draw(VALUE)
    if draw(st.booleans()):
        event["n"] = draw(st.dictionaries(st.sampled_from(["a", "0"]), VALUE, max_size=2))
    if draw(st.booleans()):
        event["list"] = draw(st.lists(VALUE, max_size=3))
    return event


SINGLE_OPERATORS = [
    st.builds(lambda v: {"eq": v}, SCALAR),
    st.builds(lambda v: {"ne": v}, SCALAR),
    st.builds(lambda v: {"in": v}, st.lists(SCALAR, max_size=3)),
    st.builds(lambda v: {"not_in": v}, st.lists(SCALAR, max_size=3)),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["lt", "le", "gt", "ge"]), TEXT | NUMBER),
    st.builds(lambda v: {"regex": v}, st.sampled_from(["a", "^A", "1$", "b|B", ".*"])),
    st.builds(lambda v: {"contains": v}, SCALAR),
    st.builds(lambda v: {"startswith": v}, TEXT),
    st.builds(lambda v: {"exists": v}, st.booleans()),
]


def operator_conditions() -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(st.one_of(*SINGLE_OPERATORS), min_size=1, max_size=3).map(
        lambda ops: {k: v for o in ops for k, v in o.items()}
    )


CONDITION = SCALAR | st.lists(SCALAR, max_size=3) | operator_conditions()


def whens() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.dictionaries(st.sampled_from(FIELDS), CONDITION, min_size=1, max_size=3)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda item: {"not": item}, inner),
            st.builds(lambda a, b: {**a, **b}, leaf, inner),
        ),
        max_leaves=6,
    )


def holds(when: Any, event: dict[str, Any]) -> bool:
    return compile_when(when)(event)


@given(whens(), events())
def test_not_inverts(when: dict[str, Any], event: dict[str, Any]) -> None:
    assert holds({"not": when}, event) is (not holds(when, event))


@given(whens(), events())
def test_any_or_all_of_one_is_that_one(when: dict[str, Any], event: dict[str, Any]) -> None:
    expected = holds(when, event)
    assert holds({"any": [when]}, event) is expected
    assert holds({"all": [when]}, event) is expected


@given(whens(), whens(), events())
def test_any_and_all_are_or_and_and(
    a: dict[str, Any], b: dict[str, Any], event: dict[str, Any]
) -> None:
    assert holds({"any": [a, b]}, event) is (holds(a, event) or holds(b, event))
    assert holds({"all": [a, b]}, event) is (holds(a, event) and holds(b, event))


@given(st.dictionaries(st.sampled_from(FIELDS), CONDITION, min_size=2, max_size=4), events())
def test_entries_of_a_mapping_all_hold(when: dict[str, Any], event: dict[str, Any]) -> None:
    each = all(holds({name: condition}, event) for name, condition in when.items())
    assert holds(when, event) is each


@given(st.sampled_from(FIELDS), CONDITION, events(), st.booleans())
def test_missing_field_matches_only_exists_false(
    name: str, condition: Any, event: dict[str, Any], as_null: bool
) -> None:
    top = name.split(".")[0]
    event = {**event, top: None} if as_null else {k: v for k, v in event.items() if k != top}
    assert holds({name: condition}, event) is (condition == {"exists": False})


@given(st.sampled_from(FIELDS), SCALAR, events())
def test_in_one_value_is_eq_that_value(name: str, value: Any, event: dict[str, Any]) -> None:
    expected = holds({name: {"eq": value}}, event)
    assert holds({name: {"in": [value]}}, event) is expected
    assert holds({name: [value]}, event) is expected
    assert holds({name: value}, event) is expected


@given(st.sampled_from(FIELDS), SCALAR, st.lists(SCALAR, max_size=3), events())
def test_ne_and_not_in_negate_eq_and_in_on_present_fields(
    name: str, value: Any, options: list[Any], event: dict[str, Any]
) -> None:
    present = holds({name: {"exists": True}}, event)
    assert holds({name: {"ne": value}}, event) is (
        present and not holds({name: {"eq": value}}, event)
    )
    assert holds({name: {"not_in": options}}, event) is (
        present and not holds({name: {"in": options}}, event)
    )


@given(SCALAR, SCALAR)
def test_equality_is_by_kind(expected: Any, actual: Any) -> None:
    same_kind = isinstance(expected, bool) == isinstance(actual, bool) and isinstance(
        expected, str
    ) == isinstance(actual, str)
    assert holds({"f": expected}, {"f": actual}) is (same_kind and expected == actual)


@given(TEXT | NUMBER, SCALAR | st.lists(SCALAR, max_size=2))
def test_comparisons_split_comparable_values_and_skip_the_rest(bound: Any, value: Any) -> None:
    event = {"f": value}
    lt, ge = holds({"f": {"lt": bound}}, event), holds({"f": {"ge": bound}}, event)
    gt, le = holds({"f": {"gt": bound}}, event), holds({"f": {"le": bound}}, event)
    numbers = not isinstance(value, bool | str | list) and not isinstance(bound, str)
    comparable = numbers or (isinstance(value, str) and isinstance(bound, str))
    if comparable:
        assert lt is not ge and gt is not le
    else:
        assert not (lt or ge or gt or le)


# -- routing ------------------------------------------------------------------------------

SINKS = st.lists(
    st.sampled_from(["slack", "email", "crm", "log"]), min_size=1, max_size=3, unique=True
)
INDEXABLE_WHEN = st.one_of(
    st.none(),
    st.fixed_dictionaries({"status": st.sampled_from(["A", "B", "a"])}),
    st.fixed_dictionaries({"status": st.lists(st.sampled_from(["A", "B", "1"]), max_size=2)}),
    st.fixed_dictionaries(
        {"direction": st.sampled_from(["A", "b"]), "n.a": st.sampled_from(["A", "B"])}
    ),
    st.fixed_dictionaries({"cause": st.fixed_dictionaries({"eq": st.sampled_from(["A", "B"])})}),
    st.fixed_dictionaries({"all": st.just([{"status": "A"}, {"direction": {"in": ["A", "B"]}}])}),
    st.fixed_dictionaries({"any": st.just([{"status": "B"}, {"direction": "b"}])}),
    st.fixed_dictionaries({"any": st.just([{"status": "A"}, {"n.a": {"exists": True}}])}),
    st.fixed_dictionaries({"any": st.just([{"status": "1"}, {"any": [{"direction": "A"}]}])}),
    st.fixed_dictionaries({"not": st.just({"status": "A"})}),
    whens(),
)


# Rules that share a field and an operator, so that the index groups them (regex sets,
# prefixes, bounds, substrings, presence) once three or more rules stand in one group.
ONE_OPERATOR = st.builds(
    lambda name, ops: {name: ops},
    st.sampled_from(["status", "n.a", "list.1"]),
    operator_conditions(),
)
GUARDED_WHEN = st.one_of(
    ONE_OPERATOR,
    st.builds(lambda a, b: {**a, **b}, ONE_OPERATOR, ONE_OPERATOR),
    st.builds(lambda a, b: {"any": [a, b]}, ONE_OPERATOR, ONE_OPERATOR),
    st.builds(lambda a, b: {"all": [a, {"not": b}]}, ONE_OPERATOR, ONE_OPERATOR),
)

# What each rule's condition means, compiled the plain way (one closure per condition):
# routing through the index and the generated functions must agree with it.
REFERENCE: WeakKeyDictionary[Condition, Condition] = WeakKeyDictionary()


@st.composite
def grouped_whens(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Three to six conditions with one operator on one field (and maybe more beside)."""
    name = draw(st.sampled_from(["status", "n.a", "list.1"]))
    operator = draw(st.sampled_from(SINGLE_OPERATORS))
    found = []
    for _ in range(draw(st.integers(3, 6))):
        when: dict[str, Any] = {name: draw(operator)}
        wrap = draw(st.integers(0, 3))
        if wrap == 1:
            when = {**draw(ONE_OPERATOR), **when}
        elif wrap == 2:
            when = {"any": [when, draw(ONE_OPERATOR)]}
        elif wrap == 3:
            when = {"all": [when, {"not": draw(ONE_OPERATOR)}]}
        found.append(when)
    return found


@st.composite
def rule_lists(draw: st.DrawFn, *, most: int = 12) -> list[CompiledRule]:
    whens = [draw(INDEXABLE_WHEN | GUARDED_WHEN) for _ in range(draw(st.integers(0, most)))]
    if most > 12:
        for group in draw(st.lists(grouped_whens(), max_size=3)):
            whens += group
        whens = draw(st.permutations(whens))
    rules = []
    for i, when in enumerate(whens):
        condition = compile_when(when)
        REFERENCE[condition] = _compile_closures(when)
        rules.append(CompiledRule(f"r{i}", condition, tuple(draw(SINKS)), draw(st.booleans())))
    return rules


def route_by_hand(rules: list[CompiledRule], event: dict[str, Any]) -> list[CompiledRule]:
    matched = []
    for rule in rules:
        if REFERENCE.get(rule.condition, rule.condition)(event):
            matched.append(rule)
            if rule.stop:
                break
    return matched


EVENT_WITH_STRINGS = (
    events()
    | st.fixed_dictionaries(
        {
            "status": st.sampled_from(["A", "B", "a", "1"]),
            "direction": st.sampled_from(["A", "b"]),
            "n": st.fixed_dictionaries({"a": st.sampled_from(["A", "B"])}),
        }
    )
    | st.fixed_dictionaries(
        {
            "status": TEXT | NUMBER,
            "n": st.fixed_dictionaries({"a": TEXT | NUMBER | st.lists(SCALAR, max_size=3)}),
            "list": st.lists(TEXT | NUMBER, min_size=2, max_size=3),
        }
    )
)


@settings(max_examples=150)
@given(rule_lists(most=30), EVENT_WITH_STRINGS)
def test_route_matches_rules_in_file_order_and_stops(
    rules: list[CompiledRule], event: dict[str, Any]
) -> None:
    result = route(rules, event)
    assert result.matched == route_by_hand(rules, event)
    assert not any(rule.stop for rule in result.matched[:-1])


@settings(max_examples=150)
@given(rule_lists(), EVENT_WITH_STRINGS)
def test_route_gives_each_sink_one_delivery_from_its_first_rule(
    rules: list[CompiledRule], event: dict[str, Any]
) -> None:
    result = route(rules, event)
    expected: dict[str, CompiledRule] = {}
    for rule in result.matched:
        for sink in rule.to:
            expected.setdefault(sink, rule)
    assert list(result.deliveries.items()) == list(expected.items())
    for sink, rule in result.deliveries.items():
        assert sink in rule.to
        assert any(rule is matched for matched in result.matched)


@given(rule_lists(), EVENT_WITH_STRINGS, st.integers(0, 11))
def test_a_stop_rule_that_matches_truncates(
    rules: list[CompiledRule], event: dict[str, Any], cut: int
) -> None:
    if not rules:
        return
    cut = cut % len(rules)
    halt = CompiledRule("halt", compile_when(None), ("halt",), stop=True)
    with_stop = [*rules[:cut], halt, *rules[cut:]]
    before = route(rules[:cut], event).matched
    matched = route(with_stop, event).matched
    if any(rule.stop for rule in before):
        assert matched == before
    else:
        assert matched == [*before, halt]


@settings(max_examples=300)
@given(whens(), events())
def test_the_generated_condition_agrees_with_the_closures(
    when: dict[str, Any], event: dict[str, Any]
) -> None:
    assert compile_when(when)(event) is _compile_closures(when)(event)


@settings(max_examples=100)
@given(st.lists(rule_lists(most=40), min_size=1, max_size=1), st.lists(EVENT_WITH_STRINGS))
def test_route_over_many_events_agrees_with_evaluating_every_rule(
    lists: list[list[CompiledRule]], many: list[dict[str, Any]]
) -> None:
    (rules,) = lists
    for event in many:  # one index, reused for every event
        assert route(rules, event).matched == route_by_hand(rules, event)


# -- generated conditions -----------------------------------------------------------------

ANY_TEXT = st.text(max_size=12) | st.sampled_from(["'", '"', "\n", "\\", "x'); import os #", "{}"])
HOSTILE_NAME = ANY_TEXT.filter(
    lambda name: all(name.split(".")) and name not in ("all", "any", "not")
)
HOSTILE_CONDITION = (
    ANY_TEXT
    | st.lists(ANY_TEXT, max_size=2)
    | st.builds(
        lambda op, v: {op: v}, st.sampled_from(["eq", "ne", "contains", "startswith"]), ANY_TEXT
    )
    | st.builds(lambda op, v: {op: v}, st.sampled_from(["lt", "ge"]), ANY_TEXT | NUMBER)
    | st.builds(lambda v: {"in": v}, st.lists(ANY_TEXT | NUMBER | st.booleans(), max_size=2))
    | st.builds(lambda v: {"regex": v}, st.sampled_from(["'", '"', "\\n", "a'b", "é"]))
)


@given(st.dictionaries(HOSTILE_NAME, HOSTILE_CONDITION, min_size=1, max_size=3), st.data())
def test_no_config_text_becomes_code(when: dict[str, Any], data: st.DataObject) -> None:
    text, _constants = _when_source(when)
    # Only fixed templates and generated names: no literal of any kind, no config text.
    assert re.fullmatch(r"[A-Za-z0-9_ ():=<>!.,\n]*", text), text
    assert not re.search(r"(?<![A-Za-z_])[0-9]", text)  # digits only inside names
    event = data.draw(st.dictionaries(st.sampled_from([*when, "x"]), ANY_TEXT | NUMBER | st.none()))
    assert compile_when(when)(event) is _compile_closures(when)(event)


def test_a_condition_nested_too_deep_for_one_function_keeps_the_closures() -> None:
    when: dict[str, Any] = {"status": "A"}
    for _ in range(40):
        when = {"not": when}
    condition = compile_when(when)
    assert condition({"status": "A"}) is True and condition({"status": "B"}) is False
    assert condition.__name__ != "when"
