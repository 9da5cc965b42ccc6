"""Time intervals in Alertmanager's format: parsing rules.yaml's `time_intervals:` into
compiled intervals, and telling whether an instant falls inside one. Pure: no I/O.

`time_intervals:` maps a name to a list of specs; an interval contains an instant when
any of its specs does, and a spec contains it when every field it sets holds, read in
the spec's `location` (an IANA zone, UTC when absent):

- `times`: `{start_time: 'HH:MM', end_time: 'HH:MM'}` entries, the end excluded
  (`24:00` ends at midnight); the start must come before the end, so a range never
  crosses midnight (write two entries, `22:00-24:00` and `00:00-06:00`).
- `weekdays`: names (`monday`, any case) and inclusive ranges `monday:friday`. As in
  Alertmanager a week runs sunday to saturday and a range never wraps: `saturday:sunday`
  is refused, write `['saturday', 'sunday']`.
- `days_of_month`: 1..31 and -31..-1, counted from the month's end (-1 is its last
  day), single or as ranges `1:5`, `-3:-1`. A negative start needs a negative end, and a
  range must not be empty in a 28-day month (`25:-5` is refused). A day past the end
  of a short month matches nothing; a range running past it stops at its last day.
- `months`: names (`january`, any case) or numbers 1..12, single or ranges.
- `years`: numbers, single or ranges `2026:2027`.

A field that is absent holds at every instant; a field given as an empty list never
holds. Local times keep their meaning across daylight-saving changes (09:00-17:30 in
Europe/London is 08:00-16:30 UTC in summer and 09:00-17:30 UTC in winter).

Every problem of the block is collected into one `IntervalErrors`, each with a path
relative to `time_intervals:` so config can report `FILE:LINE:COL`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.rules.matching import kind_of

_ErrorPath = tuple[str | int, ...]
Range = tuple[int, int]  # inclusive
_ParseOne = Callable[[str], tuple[int, str]]  # a value, or 0 and what is wrong

WEEKDAYS: tuple[str, ...] = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
MONTHS: tuple[str, ...] = tuple(name.lower() for name in calendar.month_name[1:])
SPEC_KEYS: tuple[str, ...] = (
    "times",
    "weekdays",
    "days_of_month",
    "months",
    "years",
    "location",
)
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class IntervalError(Exception):
    """One problem in `time_intervals:`; `path` is relative to that mapping."""

    def __init__(self, path: _ErrorPath, message: str, *, at_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.at_key = at_key


class IntervalErrors(Exception):
    """Every problem found in `time_intervals:`."""

    def __init__(self, errors: list[IntervalError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class IntervalSpec:
    """One entry of an interval. None: the field is not set (holds always)."""

    times: tuple[Range, ...] | None = None  # minutes of the day, end excluded
    weekdays: tuple[Range, ...] | None = None  # 0 = sunday .. 6 = saturday
    days_of_month: tuple[Range, ...] | None = None  # 1..31 or -31..-1
    months: tuple[Range, ...] | None = None  # 1..12
    years: tuple[Range, ...] | None = None
    location: tzinfo = UTC

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(self.location)
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.weekdays is not None:
            weekday = (local.weekday() + 1) % 7  # Python counts from monday
            if not _within(weekday, self.weekdays):
                return False
        if self.days_of_month is not None and not _day_within(local, self.days_of_month):
            return False
        if self.months is not None and not _within(local.month, self.months):
            return False
        return self.years is None or _within(local.year, self.years)


@dataclass(frozen=True)
class TimeInterval:
    """A named interval: it contains an instant when any of its specs does."""

    name: str
    specs: tuple[IntervalSpec, ...]

    def contains(self, instant: datetime) -> bool:
        """Whether `instant` (timezone-aware) falls inside the interval."""
        if instant.tzinfo is None:
            raise ValueError("an instant needs a time zone")
        return any(spec.contains(instant) for spec in self.specs)


def _within(value: int, ranges: tuple[Range, ...]) -> bool:
    return any(start <= value <= end for start, end in ranges)


def _day_within(local: datetime, ranges: tuple[Range, ...]) -> bool:
    days_in_month = calendar.monthrange(local.year, local.month)[1]
    for start, end in ranges:
        first = start if start > 0 else days_in_month + start + 1
        last = end if end > 0 else days_in_month + end + 1
        if max(first, 1) <= local.day <= min(last, days_in_month):
            return True
    return False


# -- parsing ------------------------------------------------------------------------------


def compile_time_intervals(raw: Any) -> dict[str, TimeInterval]:
    """Compile the `time_intervals:` mapping (None: none defined).

    Raises `IntervalErrors` listing every problem of the block.
    """
    if raw is None:
        return {}
    parser = _Parser()
    intervals = parser.intervals(raw)
    if parser.errors:
        raise IntervalErrors(parser.errors)
    return intervals


class _Parser:
    """Parses `time_intervals:`, collecting every problem instead of stopping."""

    def __init__(self) -> None:
        self.errors: list[IntervalError] = []

    def fail(self, path: _ErrorPath, message: str, *, at_key: bool = False) -> None:
        self.errors.append(IntervalError(path, message, at_key=at_key))

    def intervals(self, raw: Any) -> dict[str, TimeInterval]:
        if not isinstance(raw, dict):
            self.fail((), f"time_intervals must be a mapping of names to lists, not {kind_of(raw)}")
            return {}
        compiled = {}
        for name, specs in raw.items():
            if not isinstance(name, str) or not name:
                self.fail((name,), f"time interval name {name!r} must be a string", at_key=True)
                continue
            if not isinstance(specs, list):
                self.fail(
                    (name,),
                    f"time interval {name!r} must be a list of interval specs, "
                    f"not {kind_of(specs)}",
                )
                continue
            parsed = [self.spec(name, spec, (name, index)) for index, spec in enumerate(specs)]
            compiled[name] = TimeInterval(name, tuple(s for s in parsed if s is not None))
        return compiled

    def spec(self, name: str, spec: Any, path: _ErrorPath) -> IntervalSpec | None:
        if not isinstance(spec, dict):
            self.fail(
                path, f"time interval {name!r}: a spec must be a mapping, not {kind_of(spec)}"
            )
            return None
        for key in spec:
            if key not in SPEC_KEYS:
                self.fail(
                    (*path, key),
                    f"time interval {name!r}: unknown key {key!r}; "
                    f"expected one of: {', '.join(SPEC_KEYS)}",
                    at_key=True,
                )
        fields: dict[str, Any] = {}
        if "times" in spec:
            fields["times"] = self.times(name, spec["times"], (*path, "times"))
        range_fields = (
            ("weekdays", self.weekday),
            ("days_of_month", self.day_of_month),
            ("months", self.month),
            ("years", self.year),
        )
        for key, parse_one in range_fields:
            if key in spec:
                fields[key] = self.ranges(name, key, spec[key], (*path, key), parse_one)
        if "location" in spec:
            fields["location"] = self.location(name, spec["location"], (*path, "location"))
        return IntervalSpec(**fields)

    def times(self, name: str, entries: Any, path: _ErrorPath) -> tuple[Range, ...]:
        if not isinstance(entries, list):
            self.fail(path, f"time interval {name!r}: times must be a list, not {kind_of(entries)}")
            return ()
        ranges = []
        for index, entry in enumerate(entries):
            where = (*path, index)
            if not isinstance(entry, dict):
                self.fail(
                    where,
                    f"time interval {name!r}: a times entry is a mapping "
                    f"{{start_time: 'HH:MM', end_time: 'HH:MM'}}, not {kind_of(entry)}",
                )
                continue
            for key in entry:
                if key not in ("start_time", "end_time"):
                    self.fail(
                        (*where, key),
                        f"time interval {name!r}: unknown key {key!r} in times; "
                        "expected start_time and end_time",
                        at_key=True,
                    )
            bounds = []
            for key in ("start_time", "end_time"):
                if key not in entry:
                    self.fail(where, f"time interval {name!r}: times entry needs {key}")
                    continue
                bounds.append(self.clock(name, key, entry[key], (*where, key)))
            if len(bounds) == 2 and None not in bounds:
                start, end = bounds
                assert start is not None and end is not None
                if start >= end:
                    self.fail(
                        where,
                        f"time interval {name!r}: start_time {entry['start_time']} must come "
                        f"before end_time {entry['end_time']} (a range cannot cross midnight: "
                        "split it in two)",
                    )
                else:
                    ranges.append((start, end))
        return tuple(ranges)

    def clock(self, name: str, key: str, text: Any, path: _ErrorPath) -> int | None:
        if not isinstance(text, str) or not _CLOCK.fullmatch(text):
            self.fail(
                path,
                f"time interval {name!r}: {key} {text!r} is not a time of day 'HH:MM' "
                "(00:00 to 23:59, or 24:00)",
            )
            return None
        if key == "start_time" and text == "24:00":
            self.fail(path, f"time interval {name!r}: start_time cannot be 24:00")
            return None
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    def ranges(
        self,
        name: str,
        key: str,
        entries: Any,
        path: _ErrorPath,
        parse_one: _ParseOne,
    ) -> tuple[Range, ...]:
        if not isinstance(entries, list):
            self.fail(path, f"time interval {name!r}: {key} must be a list, not {kind_of(entries)}")
            return ()
        ranges = []
        for index, entry in enumerate(entries):
            parsed = self.one_range(name, key, entry, (*path, index), parse_one)
            if parsed is not None:
                ranges.append(parsed)
        return tuple(ranges)

    def one_range(
        self, name: str, key: str, entry: Any, path: _ErrorPath, parse_one: _ParseOne
    ) -> Range | None:
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = str(entry)
        if not isinstance(entry, str):
            self.fail(
                path,
                f"time interval {name!r}: {key} entry must be a value or a range 'a:b', "
                f"not {kind_of(entry)}",
            )
            return None
        parts = entry.split(":")
        if len(parts) > 2:
            self.fail(path, f"time interval {name!r}: {key} range {entry!r} is not 'start:end'")
            return None
        values = [parse_one(part.strip()) for part in parts]
        problems = [problem for _, problem in values if problem]
        if problems:
            self.fail(path, f"time interval {name!r}: {key} {entry!r}: {problems[0]}")
            return None
        start, end = values[0][0], values[-1][0]
        problem = _order_problem(key, start, end)
        if problem:
            self.fail(path, f"time interval {name!r}: {key} {entry!r}: {problem}")
            return None
        return start, end

    @staticmethod
    def weekday(text: str) -> tuple[int, str]:
        lowered = text.lower()
        if lowered in WEEKDAYS:
            return WEEKDAYS.index(lowered), ""
        return 0, f"{text!r} is not a weekday (expected one of: {', '.join(WEEKDAYS)})"

    @staticmethod
    def month(text: str) -> tuple[int, str]:
        lowered = text.lower()
        if lowered in MONTHS:
            return MONTHS.index(lowered) + 1, ""
        if _INTEGER.fullmatch(text) and 1 <= int(text) <= 12:
            return int(text), ""
        return 0, f"{text!r} is not a month (a name such as january, or 1 to 12)"

    @staticmethod
    def day_of_month(text: str) -> tuple[int, str]:
        if _INTEGER.fullmatch(text) and 1 <= abs(int(text)) <= 31:
            return int(text), ""
        return 0, (
            f"{text!r} is not a day of the month (1 to 31, or -31 to -1 counting from its end)"
        )

    @staticmethod
    def year(text: str) -> tuple[int, str]:
        if _INTEGER.fullmatch(text) and 1 <= int(text) <= 9999:
            return int(text), ""
        return 0, f"{text!r} is not a year (1 to 9999)"

    def location(self, name: str, zone: Any, path: _ErrorPath) -> tzinfo:
        if not isinstance(zone, str) or not zone:
            self.fail(
                path,
                f"time interval {name!r}: location must be an IANA zone name "
                f"such as Europe/London, not {kind_of(zone)}",
            )
            return UTC
        try:
            return ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail(
                path,
                f"time interval {name!r}: unknown time zone {zone!r} "
                "(use an IANA name such as Europe/London or America/New_York)",
            )
            return UTC


def _order_problem(key: str, start: int, end: int) -> str:
    """Why a parsed range can never hold, or ''."""
    if key == "days_of_month":
        if start < 0 < end:
            return "a range starting from the month's end must end counting from it too"
        # Negative days are judged in the shortest month, 28 days: -1 is the 28th.
        if (start if start > 0 else 29 + start) > (end if end > 0 else 29 + end):
            return "the start comes after the end"
        return ""
    if start > end:
        if key == "weekdays":
            return (
                "the start comes after the end (a week runs sunday to saturday; ranges do not wrap)"
            )
        return "the start comes after the end"
    return ""
