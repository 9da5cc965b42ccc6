"""Durations and rates of rules.yaml (router/core/units.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.units import Rate, format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1s", 1.0),
        ("10m", 600.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("1.5s", 1.5),
        (" 2 m ", 120.0),
        (30, 30.0),
        (0.25, 0.25),
        ("0s", 0.0),
    ],
)
def test_parse_duration_accepts_documented_spellings(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "500ms"),
        (1.0, "1s"),
        (90.0, "90s"),
        (600.0, "10m"),
        (86400.0, "1d"),
        (5400.0, "90m"),
        (0.0, "0ms"),
        (0.0015, "1.5ms"),
        (0.1 * 3600, "6m"),
    ],
)
def test_format_duration_is_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10",
        "ten seconds",
        "5 minutes",
        "-1s",
        "1w",
        "1e3s",
        "s",
        True,
        None,
        [1],
        -3,
        "9" * 400 + "s",
    ],
)
def test_parse_duration_rejects_bad_input_naming_it(bad: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(bad)
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_parse_duration_rejects_non_finite_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_duration(bad)


durations = st.builds(
    lambda number, unit: f"{number}{unit}",
    st.one_of(
        st.integers(min_value=0, max_value=10**7).map(str),
        st.decimals(min_value=0, max_value=10**5, places=3, allow_nan=False).map(str),
    ),
    st.sampled_from(["ms", "s", "m", "h", "d"]),
)


@given(durations)
def test_format_duration_round_trips_through_parse(text: str) -> None:
    seconds = parse_duration(text)
    spelled = format_duration(seconds)
    assert math.isclose(parse_duration(spelled), seconds, rel_tol=1e-9, abs_tol=1e-9)
    assert format_duration(parse_duration(spelled)) == spelled


@pytest.mark.parametrize(
    ("text", "count", "per_seconds"),
    [
        ("1/s", 1, 1),
        ("30/m", 30, 60),
        ("100/h", 100, 3600),
        ("5/10s", 5, 10),
        ("2 / 500ms", 2, 0.5),
    ],
)
def test_parse_rate(text: str, count: float, per_seconds: float) -> None:
    rate = parse_rate(text)
    assert rate == Rate(count, per_seconds)
    assert rate.per_second == pytest.approx(count / per_seconds)


def test_rate_prints_in_a_form_parse_rate_reads_back() -> None:
    for text in ["1/s", "30/m", "100/h", "5/10s"]:
        rate = parse_rate(text)
        assert parse_rate(str(rate)) == rate


def test_parse_rate_passes_a_rate_through() -> None:
    rate = Rate(3, 1)
    assert parse_rate(rate) is rate


@pytest.mark.parametrize("bad", ["", "30", "30/", "/s", "0/s", "5/0s", "-1/s", "1/w", 30, None])
def test_parse_rate_rejects_bad_input_naming_it(bad: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rate(bad)
    assert repr(bad) in str(caught.value)
