"""Examples for the rules matcher: every operator, field paths, combinators, routing, errors."""

from __future__ import annotations

from typing import Any

import pytest

from router.rules.matching import (
    CompiledRule,
    ConditionError,
    ConditionErrors,
    compile_when,
    route,
)

EVENT: dict[str, Any] = {
    "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    "status": "COMPLETED",
    "direction": "INBOUND",
    "hangupCause": "USER_ENDED",
    "errorMessage": None,
    "durationSeconds": 108,
    "summary": "Caller rescheduled a cleaning to Friday 10am.",
    "initiatedAt": "2026-11-20T15:02:11Z",
    "transcript": [
        {"role": "agent", "content": "Thanks for calling"},
        {"role": "user", "content": "Move my cleaning"},
    ],
    "metrics": {"latency": {"p50": 620, "p95": 980.5}, "interruptions": 1},
    "variables": {"customer_tier": "gold", "vip": True, "score": 0, "tags": ["a", "b", 3]},
}


def matches(when: Any, event: dict[str, Any] = EVENT) -> bool:
    return compile_when(when)(event)


def errors_of(when: Any) -> list[ConditionError]:
    with pytest.raises(ConditionErrors) as caught:
        compile_when(when)
    return caught.value.errors


# -- every call ---------------------------------------------------------------------------


@pytest.mark.parametrize("when", [None, {}])
def test_no_when_matches_every_call(when: Any) -> None:
    assert matches(when)
    assert matches(when, {})


# -- shorthand ----------------------------------------------------------------------------


def test_scalar_means_equals() -> None:
    assert matches({"status": "COMPLETED"})
    assert not matches({"status": "FAILED"})


def test_string_equality_is_case_sensitive() -> None:
    assert not matches({"status": "completed"})


def test_list_means_one_of() -> None:
    assert matches({"status": ["FAILED", "COMPLETED"]})
    assert not matches({"status": ["FAILED", "CANCELED"]})


def test_several_entries_must_all_hold() -> None:
    assert matches({"status": "COMPLETED", "direction": "INBOUND"})
    assert not matches({"status": "COMPLETED", "direction": "OUTBOUND"})


# -- field paths --------------------------------------------------------------------------


def test_dotted_path_reaches_nested_objects() -> None:
    assert matches({"variables.customer_tier": "gold"})
    assert matches({"metrics.latency.p50": 620})
    assert not matches({"metrics.latency.p50": 621})


def test_digit_segment_indexes_a_list() -> None:
    assert matches({"transcript.0.role": "agent"})
    assert matches({"transcript.1.role": "user"})
    assert not matches({"transcript.2.role": {"exists": True}})
    assert matches({"transcript.2.role": {"exists": False}})


def test_digit_segment_is_a_key_in_an_object() -> None:
    assert matches({"variables.7": "seven"}, {"variables": {"7": "seven"}})


def test_path_through_a_scalar_is_missing() -> None:
    assert not matches({"status.length": {"exists": True}})
    assert matches({"status.length": {"exists": False}})


def test_unknown_event_fields_can_be_matched() -> None:
    assert matches({"campaign.name": "spring"}, {**EVENT, "campaign": {"name": "spring"}})


# -- operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"eq": "COMPLETED"}, True),
        ({"eq": "FAILED"}, False),
        ({"ne": "FAILED"}, True),
        ({"ne": "COMPLETED"}, False),
        ({"in": ["FAILED", "COMPLETED"]}, True),
        ({"in": ["FAILED"]}, False),
        ({"in": []}, False),
        ({"not_in": ["FAILED", "CANCELED"]}, True),
        ({"not_in": ["COMPLETED"]}, False),
        ({"not_in": []}, True),
        ({"regex": "^COMP"}, True),
        ({"regex": "LETE"}, True),
        ({"regex": "^LETE"}, False),
        ({"contains": "PLET"}, True),
        ({"contains": "FAIL"}, False),
        ({"startswith": "COM"}, True),
        ({"startswith": "OMP"}, False),
        ({"exists": True}, True),
        ({"exists": False}, False),
        ({"lt": "D"}, True),
        ({"gt": "D"}, False),
    ],
)
def test_operators_on_strings(condition: dict[str, Any], expected: bool) -> None:
    assert matches({"status": condition}) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"lt": 109}, True),
        ({"lt": 108}, False),
        ({"le": 108}, True),
        ({"le": 107.9}, False),
        ({"gt": 107.5}, True),
        ({"gt": 108}, False),
        ({"ge": 108}, True),
        ({"ge": 108.1}, False),
        ({"eq": 108.0}, True),
        ({"eq": 108}, True),
        ({"ne": 108.0}, False),
        ({"in": [1, 108.0]}, True),
        ({"gt": 100, "lt": 200}, True),
        ({"gt": 100, "lt": 101}, False),
    ],
)
def test_operators_on_numbers(condition: dict[str, Any], expected: bool) -> None:
    assert matches({"durationSeconds": condition}) is expected


def test_number_never_equals_its_text() -> None:
    assert not matches({"durationSeconds": "108"})
    assert not matches({"durationSeconds": {"in": ["108"]}})
    assert not matches({"status": {"eq": 1}}, {"status": "1"})


def test_boolean_is_not_a_number() -> None:
    assert matches({"variables.vip": True})
    assert not matches({"variables.vip": 1})
    assert not matches({"variables.vip": {"in": [1]}})
    assert not matches({"variables.score": False})
    assert matches({"variables.score": 0})
    assert not matches({"variables.vip": {"gt": 0}})


def test_comparisons_across_kinds_never_match() -> None:
    assert not matches({"durationSeconds": {"lt": "zzz"}})
    assert not matches({"status": {"gt": 0}})
    assert not matches({"transcript": {"gt": 0}})


def test_iso_timestamps_compare_as_text() -> None:
    assert matches({"initiatedAt": {"ge": "2026-11-20T00:00:00Z", "lt": "2026-11-21"}})
    assert not matches({"initiatedAt": {"lt": "2026-11-20T15:02:11Z"}})


def test_regex_searches_strings_only() -> None:
    assert matches({"summary": {"regex": r"Friday \d+am"}})
    assert not matches({"durationSeconds": {"regex": "108"}})


def test_contains_is_substring_for_text_and_membership_for_lists() -> None:
    assert matches({"summary": {"contains": "cleaning"}})
    assert matches({"variables.tags": {"contains": "a"}})
    assert matches({"variables.tags": {"contains": 3.0}})
    assert not matches({"variables.tags": {"contains": "ab"}})
    assert not matches({"durationSeconds": {"contains": 1}})
    assert not matches({"summary": {"contains": 1}})


def test_startswith_on_non_text_is_false() -> None:
    assert not matches({"durationSeconds": {"startswith": "1"}})


def test_several_operators_must_all_hold() -> None:
    assert matches({"summary": {"startswith": "Caller", "contains": "Friday", "exists": True}})
    assert not matches({"summary": {"startswith": "Caller", "contains": "Monday"}})


# -- missing and null ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hangupCause", "errorMessage", "nope", "metrics.none.p50"])
@pytest.mark.parametrize(
    "condition",
    [
        "x",
        ["x"],
        {"eq": "x"},
        {"ne": "x"},
        {"in": ["x"]},
        {"not_in": ["x"]},
        {"lt": 1},
        {"ge": ""},
        {"regex": ".*"},
        {"contains": "x"},
        {"startswith": ""},
        {"exists": True},
    ],
)
def test_missing_or_null_field_matches_nothing(name: str, condition: Any) -> None:
    event = {**EVENT, "hangupCause": None}
    assert not matches({name: condition}, event)
    assert matches({name: {"exists": False}}, event)


def test_not_of_a_missing_field_holds() -> None:
    assert matches({"not": {"nope": "x"}})
    assert matches({"not": {"errorMessage": {"ne": "x"}}})


def test_present_falsy_values_exist() -> None:
    event = {"a": 0, "b": "", "c": False, "d": [], "e": {}}
    for name in event:
        assert matches({name: {"exists": True}}, event)


# -- combinators --------------------------------------------------------------------------


def test_any_holds_when_one_holds() -> None:
    assert matches({"any": [{"status": "FAILED"}, {"hangupCause": "USER_ENDED"}]})
    assert not matches({"any": [{"status": "FAILED"}, {"hangupCause": "SILENCE_TIMEOUT"}]})


def test_all_holds_when_every_one_holds() -> None:
    assert matches({"all": [{"status": "COMPLETED"}, {"durationSeconds": {"gt": 60}}]})
    assert not matches({"all": [{"status": "COMPLETED"}, {"durationSeconds": {"gt": 600}}]})


def test_not_inverts() -> None:
    assert matches({"not": {"status": "FAILED"}})
    assert not matches({"not": {"status": "COMPLETED"}})
    assert not matches({"not": {"status": "COMPLETED", "direction": "INBOUND"}})
    assert matches({"not": {"status": "COMPLETED", "direction": "OUTBOUND"}})


def test_combinators_nest_at_any_depth() -> None:
    when = {
        "direction": "INBOUND",
        "any": [
            {"status": "FAILED"},
            {
                "all": [
                    {"variables.customer_tier": ["gold", "platinum"]},
                    {
                        "not": {
                            "any": [{"durationSeconds": {"lt": 30}}, {"summary": {"exists": False}}]
                        }
                    },
                ]
            },
        ],
    }
    assert matches(when)
    assert not matches(when, {**EVENT, "durationSeconds": 12})
    assert not matches(when, {**EVENT, "summary": None})
    assert matches(when, {**EVENT, "summary": None, "status": "FAILED"})
    assert not matches(when, {**EVENT, "direction": "OUTBOUND", "status": "FAILED"})


def test_combinators_stand_beside_fields() -> None:
    when = {"status": "COMPLETED", "not": {"hangupCause": "VOICEMAIL_DETECTED"}}
    assert matches(when)
    assert not matches(when, {**EVENT, "hangupCause": "VOICEMAIL_DETECTED"})


# -- samples ------------------------------------------------------------------------------


def test_design_examples_on_sample_shaped_calls() -> None:
    failed = {
        "status": "FAILED",
        "direction": "OUTBOUND",
        "hangupCause": None,
        "durationSeconds": None,
        "metrics": {},
        "sipTrunkId": "trunk-main",
    }
    completed = {
        "status": "COMPLETED",
        "direction": "INBOUND",
        "durationSeconds": 108,
        "metrics": {"latencyMs": {"p50": 620, "p95": 980}},
    }
    canceled = {"status": "CANCELED", "direction": "INBOUND"}
    outage = compile_when({"status": "FAILED", "direction": "OUTBOUND"})
    short_inbound = compile_when({"direction": "INBOUND", "durationSeconds": {"lt": 10}})
    assert outage(failed) and not outage(completed) and not outage(canceled)
    assert not short_inbound(completed)
    assert not short_inbound(canceled)  # durationSeconds missing: matches nothing
    assert short_inbound({**canceled, "durationSeconds": 3})
    assert compile_when({"metrics.latencyMs.p95": {"gt": 900}})(completed)
    assert compile_when({"metrics.latencyMs.p95": {"exists": False}})(failed)


# -- routing ------------------------------------------------------------------------------


def rule(name: str, when: Any, to: list[str], *, stop: bool = False) -> CompiledRule:
    return CompiledRule(name, compile_when(when), tuple(to), stop)


def test_every_matching_rule_fires_in_file_order() -> None:
    rules = [
        rule("failed", {"status": "FAILED"}, ["slack"]),
        rule("inbound", {"direction": "INBOUND"}, ["crm"]),
        rule("all", None, ["console"]),
        rule("completed", {"status": "COMPLETED"}, ["email"]),
    ]
    result = route(rules, EVENT)
    assert [r.name for r in result.matched] == ["inbound", "all", "completed"]
    assert list(result.deliveries) == ["crm", "console", "email"]


def test_each_sink_gets_one_delivery_from_the_first_matching_rule() -> None:
    rules = [
        rule("skip", {"status": "FAILED"}, ["slack"]),
        rule("first", {"direction": "INBOUND"}, ["crm", "slack"]),
        rule("second", {"status": "COMPLETED"}, ["slack", "email", "crm"]),
    ]
    result = route(rules, EVENT)
    assert {sink: r.name for sink, r in result.deliveries.items()} == {
        "crm": "first",
        "slack": "first",
        "email": "second",
    }
    assert list(result.deliveries) == ["crm", "slack", "email"]
    assert [r.name for r in result.matched] == ["first", "second"]


def test_stop_ends_evaluation_after_a_matching_rule() -> None:
    rules = [
        rule("a", {"status": "COMPLETED"}, ["a"]),
        rule("halt-not-matching", {"status": "FAILED"}, ["x"], stop=True),
        rule("halt", {"direction": "INBOUND"}, ["b"], stop=True),
        rule("after", None, ["c"]),
    ]
    result = route(rules, EVENT)
    assert [r.name for r in result.matched] == ["a", "halt"]
    assert list(result.deliveries) == ["a", "b"]


def test_no_match_routes_nowhere() -> None:
    result = route([rule("failed", {"status": "FAILED"}, ["slack"])], EVENT)
    assert result.matched == [] and result.deliveries == {}


def test_route_sees_a_changed_rule_list() -> None:
    rules = [rule("failed", {"status": "FAILED"}, ["slack"])]
    assert route(rules, EVENT).matched == []
    rules.append(rule("completed", {"status": "COMPLETED"}, ["email"]))
    assert [r.name for r in route(rules, EVENT).matched] == ["completed"]
    rules[0] = rule("inbound", {"direction": "INBOUND"}, ["crm"])
    assert [r.name for r in route(rules, EVENT).matched] == ["inbound", "completed"]


def test_route_with_many_indexed_rules_keeps_file_order() -> None:
    statuses = ["COMPLETED", "FAILED", "CANCELED", "TRANSFERRED"]
    rules = [
        rule(
            f"r{i}",
            {"status": statuses[i % 4], "direction": ["INBOUND", "OUTBOUND"][i % 2]},
            [f"s{i}"],
        )
        for i in range(40)
    ]
    rules.insert(7, rule("free", {"durationSeconds": {"gt": 1}}, ["free"]))
    rules.insert(21, rule("tiered", {"variables.customer_tier": "gold"}, ["tiered"]))
    names = [r.name for r in route(rules, EVENT).matched]
    expected = [r.name for r in rules if r.condition(EVENT)]
    assert names == expected
    assert names[:3] == ["r0", "r4", "free"]
    assert "tiered" in names


def test_route_does_not_skip_rules_whose_equality_is_optional() -> None:
    rules = [
        rule("either", {"any": [{"status": "FAILED"}, {"direction": "INBOUND"}]}, ["a"]),
        rule("neither", {"not": {"status": "FAILED"}}, ["b"]),
        rule("not-in", {"status": {"not_in": ["FAILED"]}}, ["c"]),
        rule("failed", {"status": "FAILED"}, ["d"]),
    ]
    assert [r.name for r in route(rules, EVENT).matched] == ["either", "neither", "not-in"]


def test_route_finds_an_any_rule_through_each_branch_once() -> None:
    rules = [
        rule("either", {"any": [{"status": "COMPLETED"}, {"direction": "INBOUND"}]}, ["a"]),
        rule("loose", {"any": [{"status": "FAILED"}, {"durationSeconds": {"gt": 100}}]}, ["b"]),
        rule(
            "nested", {"any": [{"all": [{"direction": "INBOUND"}]}, {"any": [{"x": "y"}]}]}, ["c"]
        ),
    ]
    assert [r.name for r in route(rules, EVENT).matched] == ["either", "loose", "nested"]
    outbound = {**EVENT, "direction": "OUTBOUND", "durationSeconds": 5}
    assert [r.name for r in route(rules, outbound).matched] == ["either"]


def test_route_accepts_a_tuple_of_rules() -> None:
    rules = (rule("completed", {"status": ["COMPLETED", "FAILED"]}, ["x"]),)
    assert [r.name for r in route(rules, EVENT).matched] == ["completed"]
    assert route(rules, {**EVENT, "status": "CANCELED"}).matched == []


# -- errors -------------------------------------------------------------------------------


def test_unknown_operator_lists_the_valid_ones_and_guesses() -> None:
    (error,) = errors_of({"status": {"equals": "FAILED"}})
    assert error.path == ("status", "equals")
    assert "unknown operator 'equals'" in error.message
    assert (
        "eq, ne, in, not_in, lt, le, gt, ge, regex, contains, startswith, exists" in error.message
    )
    assert "did you mean 'eq'" in error.message


def test_nested_mapping_instead_of_dotted_path_gets_a_hint() -> None:
    (error,) = errors_of({"variables": {"customer_tier": "gold"}})
    assert error.path == ("variables", "customer_tier")
    assert "'variables.customer_tier'" in error.message


def test_invalid_regex_names_pattern_and_problem() -> None:
    (error,) = errors_of({"summary": {"regex": "(unclosed"}})
    assert error.path == ("summary", "regex")
    assert "'(unclosed'" in error.message
    assert "missing )" in error.message


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ({"in": "FAILED"}, "in needs a list"),
        ({"not_in": {"a": 1}}, "not_in needs a list"),
        ({"exists": "yes"}, "exists needs true or false"),
        ({"lt": [1]}, "lt needs a number or a string"),
        ({"ge": True}, "ge needs a number or a string"),
        ({"regex": 5}, "regex needs a string"),
        ({"startswith": 5}, "startswith needs a string"),
        ({"contains": [1]}, "contains must be a string, number or true/false"),
        ({"eq": ["a", "b"]}, "use in"),
        ({"ne": {"a": 1}}, "ne must be a string, number or true/false"),
        ({"eq": None}, "use {exists: false}"),
    ],
)
def test_wrong_operand_types_point_at_the_operator(condition: dict[str, Any], words: str) -> None:
    (error,) = errors_of({"metrics.latency.p50": condition})
    assert error.path == ("metrics.latency.p50", next(iter(condition)))
    assert words in error.message
    assert error.message.startswith("metrics.latency.p50: ")


def test_bad_list_entries_point_at_the_entry() -> None:
    errors = errors_of({"status": ["FAILED", None, ["x"]], "direction": {"in": ["A", {"b": 1}]}})
    assert [e.path for e in errors] == [("status", 1), ("status", 2), ("direction", "in", 1)]


def test_field_path_problems() -> None:
    errors = errors_of({"a..b": 1, True: "x", "": 2, "c": None, "d": {}})
    assert [e.path for e in errors] == [("a..b",), (True,), ("",), ("c",), ("d",)]
    assert "quote it" in errors[1].message
    assert "{exists: false}" in errors[3].message


def test_combinator_shape_problems() -> None:
    errors = errors_of(
        {"any": {"status": "FAILED"}, "all": [], "not": [{"a": 1}], "x": {"any": [{"a": 1}]}}
    )
    assert [e.path for e in errors] == [("any",), ("all",), ("not",), ("x", "any")]
    assert "stands where a field path stands" in errors[3].message


def test_when_must_be_a_mapping() -> None:
    (error,) = errors_of(["status", "FAILED"])
    assert error.path == ()
    errors = errors_of({"any": ["status", {}]})
    assert [e.path for e in errors] == [("any", 0), ("any", 1)]


def test_yaml_dates_need_quoting() -> None:
    import datetime

    (error,) = errors_of({"initiatedAt": {"gt": datetime.date(2026, 1, 1)}})
    assert "quote it" in error.message


def test_every_error_is_collected_with_its_path_at_any_depth() -> None:
    when = {
        "status": {"eq": "FAILED", "bogus": 1},
        "any": [
            {"summary": {"regex": "[a-"}},
            {"not": {"durationSeconds": {"lt": [1]}, "hangupCause": {"exists": 1}}},
        ],
        "all": [{"variables.tier": {"in": "gold"}}],
        "direction": "INBOUND",
    }
    errors = errors_of(when)
    assert [e.path for e in errors] == [
        ("status", "bogus"),
        ("any", 0, "summary", "regex"),
        ("any", 1, "not", "durationSeconds", "lt"),
        ("any", 1, "not", "hangupCause", "exists"),
        ("all", 0, "variables.tier", "in"),
    ]
    with pytest.raises(ConditionErrors) as caught:
        compile_when(when)
    assert "unknown operator 'bogus'" in str(caught.value)
