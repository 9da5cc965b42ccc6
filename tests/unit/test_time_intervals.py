"""Time intervals in Alertmanager's format: parsing, errors, and containment at fixed
instants (no clock is read)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.rules.time_intervals import (
    MONTHS,
    WEEKDAYS,
    IntervalErrors,
    TimeInterval,
    compile_time_intervals,
)


def interval(*specs: dict[str, Any]) -> TimeInterval:
    return compile_time_intervals({"it": list(specs)})["it"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def problems(raw: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(IntervalErrors) as caught:
        compile_time_intervals(raw)
    return [(error.path, error.message) for error in caught.value.errors]


# -- containment ----------------------------------------------------------------------------


def test_an_empty_spec_contains_every_instant_and_an_empty_interval_none() -> None:
    assert interval({}).contains(utc(2026, 1, 1, 0, 0))
    assert not compile_time_intervals({"never": []})["never"].contains(utc(2026, 1, 1))


def test_times_include_the_start_and_exclude_the_end() -> None:
    office = interval({"times": [{"start_time": "09:00", "end_time": "17:30"}]})
    assert not office.contains(utc(2026, 3, 2, 8, 59, 59))
    assert office.contains(utc(2026, 3, 2, 9, 0))
    assert office.contains(utc(2026, 3, 2, 17, 29, 59))
    assert not office.contains(utc(2026, 3, 2, 17, 30))


def test_24_00_ends_at_midnight_and_a_night_is_written_as_two_ranges() -> None:
    night = interval(
        {
            "times": [
                {"start_time": "22:00", "end_time": "24:00"},
                {"start_time": "00:00", "end_time": "06:00"},
            ]
        }
    )
    assert night.contains(utc(2026, 3, 2, 23, 59, 59))
    assert night.contains(utc(2026, 3, 3, 0, 0))
    assert night.contains(utc(2026, 3, 3, 5, 59))
    assert not night.contains(utc(2026, 3, 3, 6, 0))
    assert not night.contains(utc(2026, 3, 2, 21, 59))


def test_weekday_ranges_and_names_in_any_case() -> None:
    workdays = interval({"weekdays": ["Monday:FRIDAY"]})
    # 2026-03-02 is a Monday.
    assert [workdays.contains(utc(2026, 3, 2 + offset, 12)) for offset in range(7)] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    weekend = interval({"weekdays": ["saturday", "sunday"]})
    assert weekend.contains(utc(2026, 3, 7, 12)) and weekend.contains(utc(2026, 3, 8, 12))
    assert not weekend.contains(utc(2026, 3, 9, 12))


def test_days_of_month_ranges_and_single_days() -> None:
    first_week = interval({"days_of_month": ["1:7", 15]})
    assert first_week.contains(utc(2026, 4, 1)) and first_week.contains(utc(2026, 4, 7, 23, 59))
    assert not first_week.contains(utc(2026, 4, 8))
    assert first_week.contains(utc(2026, 4, 15, 12))


@pytest.mark.parametrize(
    ("year", "last_day"), [(2024, 29), (2026, 28), (2000, 29), (2100, 28)], ids=str
)
def test_minus_one_is_the_last_day_of_february_leap_year_or_not(year: int, last_day: int) -> None:
    last = interval({"days_of_month": ["-1"]})
    assert last.contains(utc(year, 2, last_day, 12))
    assert not last.contains(utc(year, 2, last_day - 1, 12))
    assert not last.contains(utc(year, 3, 1, 12))


def test_the_last_three_days_of_a_month() -> None:
    month_end = interval({"days_of_month": ["-3:-1"]})
    assert [day for day in range(1, 31) if month_end.contains(utc(2026, 4, day, 12))] == [
        28,
        29,
        30,
    ]
    assert [day for day in range(1, 29) if month_end.contains(utc(2026, 2, day, 12))] == [
        26,
        27,
        28,
    ]


def test_a_day_past_a_short_months_end_matches_nothing_and_a_range_stops_at_it() -> None:
    assert not interval({"days_of_month": ["31"]}).contains(utc(2026, 4, 30, 12))
    assert not interval({"days_of_month": ["30:31"]}).contains(utc(2026, 3, 1, 12))
    to_the_end = interval({"days_of_month": ["27:31"]})
    assert to_the_end.contains(utc(2026, 2, 28, 12))
    assert not to_the_end.contains(utc(2026, 3, 1, 12))


def test_from_a_day_to_the_months_end() -> None:
    rest = interval({"days_of_month": ["20:-1"]})
    assert rest.contains(utc(2026, 2, 28)) and rest.contains(utc(2026, 1, 31))
    assert not rest.contains(utc(2026, 1, 19, 23, 59))


def test_months_by_name_and_number_and_years() -> None:
    quarter = interval({"months": ["january:march", "12"], "years": ["2026:2027"]})
    assert quarter.contains(utc(2026, 2, 1))
    assert quarter.contains(utc(2027, 12, 31, 23, 59))
    assert not quarter.contains(utc(2026, 4, 1))
    assert not quarter.contains(utc(2028, 1, 1))
    assert not quarter.contains(utc(2025, 12, 31, 23, 59))
    assert interval({"months": ["1:3"]}).contains(utc(2026, 3, 31))


def test_every_field_of_a_spec_must_hold_and_any_spec_of_an_interval() -> None:
    christmas_or_new_year = interval(
        {"months": ["december"], "days_of_month": ["24:26"]},
        {"months": ["january"], "days_of_month": ["1"]},
    )
    assert christmas_or_new_year.contains(utc(2026, 12, 25, 12))
    assert christmas_or_new_year.contains(utc(2027, 1, 1, 0))
    assert not christmas_or_new_year.contains(utc(2026, 11, 25, 12))  # day right, month wrong
    assert not christmas_or_new_year.contains(utc(2026, 12, 27))


def test_fields_are_read_in_the_specs_location() -> None:
    tokyo_morning = interval(
        {"times": [{"start_time": "09:00", "end_time": "12:00"}], "location": "Asia/Tokyo"}
    )
    assert tokyo_morning.contains(utc(2026, 3, 2, 0, 30))  # 09:30 in Tokyo
    assert not tokyo_morning.contains(utc(2026, 3, 2, 9, 30))
    # The local day decides the weekday: 23:30 UTC on a Sunday is Monday in Tokyo.
    tokyo_monday = interval({"weekdays": ["monday"], "location": "Asia/Tokyo"})
    assert tokyo_monday.contains(utc(2026, 3, 1, 23, 30))
    assert not interval({"weekdays": ["monday"]}).contains(utc(2026, 3, 1, 23, 30))


def test_an_instant_in_another_zone_is_the_same_instant() -> None:
    office = interval({"times": [{"start_time": "09:00", "end_time": "17:00"}]})  # UTC
    paris = ZoneInfo("Europe/Paris")
    assert office.contains(datetime(2026, 1, 5, 17, 30, tzinfo=paris))  # 16:30 UTC
    assert not office.contains(datetime(2026, 1, 5, 18, 30, tzinfo=paris))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        interval({}).contains(datetime(2026, 1, 1))


BUSINESS_HOURS = {"times": [{"start_time": "09:00", "end_time": "17:30"}]}


@pytest.mark.parametrize(
    ("zone", "winter_offset", "summer_offset", "before", "after"),
    [
        # London: GMT until 2026-03-29 01:00 UTC, then BST (UTC+1).
        ("Europe/London", 0, 1, datetime(2026, 3, 27), datetime(2026, 3, 30)),
        # New York: EST (UTC-5) until 2026-03-08 07:00 UTC, then EDT (UTC-4).
        ("America/New_York", -5, -4, datetime(2026, 3, 6), datetime(2026, 3, 9)),
    ],
)
def test_a_local_office_day_stays_local_across_the_dst_change(
    zone: str, winter_offset: int, summer_offset: int, before: datetime, after: datetime
) -> None:
    office = interval({**BUSINESS_HOURS, "location": zone})
    for day, offset in ((before, winter_offset), (after, summer_offset)):
        opens = day.replace(hour=9, tzinfo=UTC) - timedelta(hours=offset)
        closes = day.replace(hour=17, minute=30, tzinfo=UTC) - timedelta(hours=offset)
        assert office.contains(opens)
        assert not office.contains(opens - timedelta(seconds=1))
        assert office.contains(closes - timedelta(seconds=1))
        assert not office.contains(closes)


def test_the_dst_change_night_itself() -> None:
    # 2026-10-25 in London: 01:00-02:00 BST is followed by 01:00-02:00 GMT. An interval
    # 01:00-02:00 local holds during both hours, two hours of real time.
    early = interval(
        {"times": [{"start_time": "01:00", "end_time": "02:00"}], "location": "Europe/London"}
    )
    assert early.contains(utc(2026, 10, 25, 0, 30))  # 01:30 BST
    assert early.contains(utc(2026, 10, 25, 1, 30))  # 01:30 GMT
    assert not early.contains(utc(2026, 10, 25, 2, 0))


# -- properties ------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


@given(st.integers(0, 6), st.integers(0, 6), instants)
def test_a_weekday_range_holds_exactly_on_the_days_between(
    first: int, last: int, instant: datetime
) -> None:
    """A week runs sunday..saturday as in Alertmanager; a reversed range is refused."""
    text = f"{WEEKDAYS[first]}:{WEEKDAYS[last]}"
    if first > last:
        assert problems({"it": [{"weekdays": [text]}]})
        return
    sunday_first = (instant.weekday() + 1) % 7
    assert interval({"weekdays": [text]}).contains(instant) == (first <= sunday_first <= last)


@given(st.integers(1, 12), st.integers(1, 12), instants)
def test_a_month_range_holds_exactly_in_the_months_between(
    first: int, last: int, instant: datetime
) -> None:
    text = f"{MONTHS[first - 1]}:{last}"
    if first > last:
        assert problems({"it": [{"months": [text]}]})
        return
    assert interval({"months": [text]}).contains(instant) == (first <= instant.month <= last)


days = st.integers(-31, 31).filter(bool)


@given(days, days, instants)
def test_a_day_of_month_range_holds_on_the_days_it_names_in_that_month(
    first: int, last: int, instant: datetime
) -> None:
    text = f"{first}:{last}"
    in_shortest_month = [d if d > 0 else 29 + d for d in (first, last)]
    if (first < 0 < last) or in_shortest_month[0] > in_shortest_month[1]:
        assert problems({"it": [{"days_of_month": [text]}]})
        return
    length = calendar.monthrange(instant.year, instant.month)[1]
    named = {
        day
        for day in range(1, length + 1)
        if (first if first > 0 else length + first + 1)
        <= day
        <= (last if last > 0 else length + last + 1)
    }
    assert interval({"days_of_month": [text]}).contains(instant) == (instant.day in named)


@given(st.integers(0, 24 * 60 - 1), st.integers(1, 24 * 60), instants)
def test_a_time_range_holds_from_its_start_until_before_its_end(
    start: int, end: int, instant: datetime
) -> None:
    def clock(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    raw = {"it": [{"times": [{"start_time": clock(start), "end_time": clock(end)}]}]}
    if start >= end:
        assert problems(raw)
        return
    minute = instant.hour * 60 + instant.minute
    assert compile_time_intervals(raw)["it"].contains(instant) == (start <= minute < end)


@given(instants, st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata"]))
def test_a_whole_local_day_holds_at_every_instant(instant: datetime, zone: str) -> None:
    all_day = [{"start_time": "00:00", "end_time": "24:00"}]
    whole_day = interval({"times": all_day, "location": zone})
    assert whole_day.contains(instant)


# -- errors ----------------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_path() -> None:
    found = problems(
        {
            "bad": [
                {
                    "weekdays": ["friday:monday", "funday"],
                    "days_of_month": ["-3:2", "0", "32", "25:-5"],
                    "months": ["march:january", "13", "smarch"],
                    "years": ["2027:2026", "year"],
                    "times": [
                        {"start_time": "9:00", "end_time": "10:00"},
                        {"start_time": "10:00", "end_time": "09:00"},
                        {"start_time": "24:00", "end_time": "24:00"},
                        {"start_time": "08:60", "end_time": "25:00"},
                        {"start_time": "08:00"},
                    ],
                    "location": "Mars/Olympus_Mons",
                    "hours": [1],
                }
            ]
        }
    )
    paths = [path for path, _ in found]
    assert paths == [
        ("bad", 0, "hours"),
        ("bad", 0, "times", 0, "start_time"),
        ("bad", 0, "times", 1),
        ("bad", 0, "times", 2, "start_time"),
        ("bad", 0, "times", 3, "start_time"),
        ("bad", 0, "times", 3, "end_time"),
        ("bad", 0, "times", 4),
        ("bad", 0, "weekdays", 0),
        ("bad", 0, "weekdays", 1),
        ("bad", 0, "days_of_month", 0),
        ("bad", 0, "days_of_month", 1),
        ("bad", 0, "days_of_month", 2),
        ("bad", 0, "days_of_month", 3),
        ("bad", 0, "months", 0),
        ("bad", 0, "months", 1),
        ("bad", 0, "months", 2),
        ("bad", 0, "years", 0),
        ("bad", 0, "years", 1),
        ("bad", 0, "location"),
    ]
    messages = dict(found)
    assert "unknown key 'hours'" in messages[("bad", 0, "hours")]
    assert "'9:00' is not a time of day 'HH:MM'" in messages[("bad", 0, "times", 0, "start_time")]
    assert "must come before end_time" in messages[("bad", 0, "times", 1)]
    assert "start_time cannot be 24:00" in messages[("bad", 0, "times", 2, "start_time")]
    assert "needs end_time" in messages[("bad", 0, "times", 4)]
    assert "ranges do not wrap" in messages[("bad", 0, "weekdays", 0)]
    assert "'funday' is not a weekday" in messages[("bad", 0, "weekdays", 1)]
    assert "must end counting from it too" in messages[("bad", 0, "days_of_month", 0)]
    assert "'0' is not a day of the month" in messages[("bad", 0, "days_of_month", 1)]
    assert "'32' is not a day of the month" in messages[("bad", 0, "days_of_month", 2)]
    assert "the start comes after the end" in messages[("bad", 0, "days_of_month", 3)]
    assert "the start comes after the end" in messages[("bad", 0, "months", 0)]
    assert "'13' is not a month" in messages[("bad", 0, "months", 1)]
    assert "'smarch' is not a month" in messages[("bad", 0, "months", 2)]
    assert "the start comes after the end" in messages[("bad", 0, "years", 0)]
    assert "'year' is not a year" in messages[("bad", 0, "years", 1)]
    assert "unknown time zone 'Mars/Olympus_Mons'" in messages[("bad", 0, "location")]
    assert all(message.startswith("time interval 'bad': ") for _, message in found)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([], "must be a mapping of names to lists"),
        ({"x": {"times": []}}, "must be a list of interval specs"),
        ({"x": ["weekdays"]}, "a spec must be a mapping"),
        ({"x": [{"weekdays": "monday"}]}, "weekdays must be a list"),
        ({"x": [{"weekdays": [True]}]}, "not true/false"),
        ({"x": [{"weekdays": ["monday:tuesday:friday"]}]}, "is not 'start:end'"),
        ({"x": [{"times": [{"start_time": 900, "end_time": "10:00"}]}]}, "900"),
        ({"x": [{"location": ""}]}, "IANA zone name"),
        ({"x": [{"location": "../../etc/passwd"}]}, "unknown time zone"),
    ],
)
def test_shapes_that_are_not_intervals_are_refused(raw: Any, fragment: str) -> None:
    found = problems(raw)
    assert any(fragment in message for _, message in found), found


def test_none_means_no_intervals() -> None:
    assert compile_time_intervals(None) == {}
