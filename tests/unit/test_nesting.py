"""How deeply JSON data nests (router/core/nesting.py), and `decode_json`'s depth limit."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.events import TooDeep, decode_json
from router.core.nesting import CLIPPED, MAX_DEPTH, clipped, deeper_than, shape, too_deep_fields

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=40,
)


def reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(reference_depth, value), default=0)
    return 0


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for index in range(levels):
        value = [value] if index % 2 else {"k": value}
    return value


@given(json_data, st.integers(min_value=0, max_value=8))
def test_depth_is_measured_as_a_recursive_walk_would(value: Any, limit: int) -> None:
    depth = reference_depth(value)
    assert deeper_than(value, limit) == (depth > limit)
    assert shape(value, None).depth == depth
    assert shape(value, limit).depth == min(depth, limit + 1)


@given(json_data, st.integers(min_value=1, max_value=8))
def test_clipped_data_nests_at_most_the_limit_and_is_the_value_itself_when_it_did(
    value: Any, limit: int
) -> None:
    result = clipped(value, limit)
    assert reference_depth(result) <= limit
    if reference_depth(value) <= limit:
        assert result is value


def test_clipping_replaces_what_lies_below_the_limit() -> None:
    value = {"a": [1, {"b": [2]}], "c": "text"}
    assert clipped(value, 2) == {"a": [1, CLIPPED], "c": "text"}
    assert clipped(value, 1) == {"a": CLIPPED, "c": "text"}
    assert value == {"a": [1, {"b": [2]}], "c": "text"}, "the original is untouched"


def test_data_thousands_of_levels_deep_is_measured_and_clipped_without_recursion() -> None:
    deep = nested(50_000)
    assert deeper_than(deep, MAX_DEPTH)
    assert shape(deep, None).depth == 50_000
    assert json.dumps(clipped(deep)).count("[") + json.dumps(clipped(deep)).count("{") == 64


def test_floats_that_may_stand_for_big_integers_are_found() -> None:
    assert shape({"a": [1.5, 2.0**62]}).big_float is False
    assert shape({"a": [1.5, 2.0**64]}).big_float is True
    assert shape({"a": [-(2.0**63)]}).big_float is True
    assert shape(2.0**70).big_float is True


def test_the_fields_that_are_too_deep_are_named() -> None:
    body = {"metrics": nested(64), "variables": nested(63), "transcript": [nested(80)]}
    assert too_deep_fields(body, 64) == ["metrics", "transcript"]
    assert too_deep_fields(nested(71), 64) == ["k"]
    assert too_deep_fields([nested(70)], 64) == ["body"]


@pytest.mark.parametrize("levels", [65, 200, 1000, 1024, 1025, 100_000])
def test_decode_json_with_a_limit_refuses_deeper_json_naming_the_field(levels: int) -> None:
    body = b'{"id": "c1", "metrics": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    with pytest.raises(TooDeep) as caught:
        decode_json(body, refuse_deep=True)
    where = "metrics" if levels <= 1024 else "body"
    assert caught.value.problems == [f"{where}: nested deeper than 64 levels"]
    assert isinstance(caught.value, ValueError)


def test_decode_json_with_a_limit_takes_json_at_the_limit() -> None:
    body = b'{"metrics": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert decode_json(body, refuse_deep=True) == orjson.loads(body)


def test_a_stored_body_deeper_than_the_limit_comes_cut_at_the_limit() -> None:
    """Stored before the limit: 1,000 levels and a big integer. The stdlib parser would
    overflow the stack: orjson's reading (the integer as a float) is kept, cut at 64
    levels, and prints as JSON again."""
    body = b'{"n": 123456789012345678901234567890, "m": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    value = decode_json(body)
    assert value["n"] == float(123456789012345678901234567890)
    assert shape(value, None).depth == MAX_DEPTH
    text = json.dumps(value, ensure_ascii=False)
    assert text.count("[") == MAX_DEPTH - 1 and f'"{CLIPPED}"' in text


def test_a_stored_body_at_the_limit_is_read_whole() -> None:
    body = b'{"n": 123456789012345678901234567890, "m": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert decode_json(body) == json.loads(body)


def test_a_big_float_written_as_a_float_changes_nothing() -> None:
    assert decode_json(b'{"x": 1e30, "ref": "12345678901234567890123"}') == {
        "x": 1e30,
        "ref": "12345678901234567890123",
    }
