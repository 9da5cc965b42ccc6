"""Phone numbers found in free text and masked: the one place that decides what a number
is (the `mask_phone` template filter, every sink's default message, the console and the
logs all mask through here).

Numbers are found the way Google's libphonenumber finds them (the `phonenumbers`
package's `PhoneNumberMatcher` at `Leniency.VALID`): `+1 415-555-0142`, `(415) 555-0143`,
`+44 20 7183 8750`, and numbers written without a country code read in the region
`ROUTER_PHONE_REGION` (default `US`), while dates, times, durations and ids are left
alone. Any `+` and 7 to 15 digits (E.164, as RevRing sends numbers) is masked too, valid
or not. A found number shows as its E.164 form with its middle hidden: `+1415•••0143`.

The matcher costs about 100 µs a number, so it reads only around *runs*: at least 7
digits apart by at most 4 characters that are neither letters nor line breaks (every
number it can find is in one). Text without a run (most summaries and errors) costs a
regular-expression scan; a run that is a bare E.164 number, a date or inside a uuid
needs no matcher either. The matcher reads at most `MATCHER_BUDGET` characters of one
text; runs past that are masked whole (`•••`), so a text stuffed with digits costs a
bounded time and still shows no number. A run the matcher refuses because more digits
follow it (`(415) 555-0143 3 times`) is read again one space-apart group after another. The last
`CACHED_TEXTS` texts masked are remembered: each sink's message for one call masks the
same summary and transcript again.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from phonenumbers import (
    SUPPORTED_REGIONS,
    Leniency,
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberMatcher,
    format_number,
    is_possible_number,
    parse,
)

REGION_VARIABLE = "ROUTER_PHONE_REGION"
DEFAULT_REGION = "US"
MASK = "•••"
MIN_DIGITS = 7  # fewer digits in a run: not a phone number
CONTEXT = 40  # characters on each side of a run that the matcher reads with it
MAX_WINDOW = 256  # characters the matcher reads at once; a longer run is masked whole
MATCHER_BUDGET = 2048  # characters of one text the matcher reads; runs past it: masked whole
MAX_GROUPS = 8  # space-apart groups of a run read one after another; more: masked whole
MAX_DIGITS = 17  # digits of the longest number (15 in E.164, a trunk prefix, `00`)
# The same text is often masked again (each sink's message for one call, a page shown
# again): texts up to this long are remembered, the last `CACHED_TEXTS` of them.
MAX_CACHED_TEXT = 4096
CACHED_TEXTS = 512

# A run of digits apart by at most 4 characters that are not letters (`x` and `ー` aside,
# which the matcher reads as separators) nor line breaks, tabs, colons, commas or
# semicolons: every digit of a number the matcher can find lies in one such run.
_GAP = r"(?:[^\w\t\n\r\f\v:,;]|[xXー]){0,4}"
_RUN = re.compile(rf"\d(?:{_GAP}\d){{{MIN_DIGITS - 1},}}")
_E164 = re.compile(r"\+\d{7,15}\b")  # as RevRing sends numbers
_TIME_BEFORE = re.compile(r"\d:[0-5]\d:$")  # a run after `15:02:` is seconds and their fraction
_GROUP = re.compile(r"\S+")
_DIGIT = re.compile(r"\d")
# A date written with digits (`2026-11-20`, `2026-11-20 15` before `:02`, `11/20/2026`).
_DATE = re.compile(
    r"(?:(?:19|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([-/.])(?:0?[1-9]|[12]\d|3[01])\2(?:19|20)\d\d)"
    r"(?:[ T](?:[01]?\d|2[0-3]))?"
)

# An id: a uuid (with or without its dashes) or 32 hex digits (a delivery id). A run of
# digits inside one is no number, and needs no matcher (a third of uuids have such a run).
# It holds a hex letter: 32 digits alone could be numbers written together.
_ID = re.compile(
    r"(?<![0-9A-Za-z-])(?=[0-9-]*[a-fA-F])"
    r"(?:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[0-9a-fA-F]{32})"
    r"(?![0-9A-Za-z-])"
)

Span = tuple[int, int, str | None]  # start, end, the number in E.164 (None: mask whole)


def region_problem(value: str | None) -> str | None:
    """Why `value` cannot be `ROUTER_PHONE_REGION`, or None when it can (unset included)."""
    if not value or not value.strip() or value.strip().upper() in SUPPORTED_REGIONS:
        return None
    return (
        f"{REGION_VARIABLE} must be a two-letter region code such as US, GB or DE "
        f"(ISO 3166-1), got {value!r}"
    )


@lru_cache(maxsize=8)
def _region_of(value: str | None) -> str:
    if not value or region_problem(value) is not None:
        return DEFAULT_REGION
    return value.strip().upper() or DEFAULT_REGION


def phone_region() -> str:
    """The region numbers without a country code are read in: `ROUTER_PHONE_REGION`, or
    `US` when it is unset (or not a region; `serve` refuses to start then)."""
    return _region_of(os.environ.get(REGION_VARIABLE))


def _masked(text: str, keep_start: int = 5, keep_end: int = 4) -> str:
    """`+14155550123` -> `+1415•••0123`; a value too short to keep both ends of is `•••`."""
    if len(text) <= keep_start + keep_end:
        return MASK if text else ""
    return f"{text[:keep_start]}{MASK}{text[len(text) - keep_end :]}"


def _found(text: str, begin: int, end: int, region: str) -> list[Span]:
    """Every valid number the matcher finds in `text[begin:end]` (dates aside)."""
    try:
        return [
            (begin + match.start, begin + match.end, format_number(match.number, _E164_FORMAT))
            for match in PhoneNumberMatcher(text[begin:end], region, leniency=Leniency.VALID)
            if not _DATE.fullmatch(match.raw_string)
        ]
    except Exception:  # a parser failing on hostile text: mask its runs whole instead
        return [(run.start(), run.end(), None) for run in _RUN.finditer(text, begin, end)]


_E164_FORMAT = PhoneNumberFormat.E164


def _plain(text: str, run: re.Match[str]) -> bool:
    """Whether a run needs no matcher: a bare E.164 number (`+14155550188`, masked as
    written), a date (`2026-11-20`, `11/20/2026`) or a time's seconds (`:13.100000`),
    left alone."""
    if _DATE.fullmatch(run[0]) or _TIME_BEFORE.search(text, max(run.start() - 6, 0), run.start()):
        return True
    return run.start() > 0 and _E164.fullmatch(text, run.start() - 1, run.end()) is not None


class _Reader:
    """The matcher's reads of one text, within `MATCHER_BUDGET` characters."""

    def __init__(self, text: str, region: str) -> None:
        self.text = text
        self.region = region
        self.budget = MATCHER_BUDGET

    def read(self, begin: int, end: int) -> list[Span] | None:
        """The numbers in `text[begin:end]`, or None when that is past the budget."""
        if end - begin > min(self.budget, MAX_WINDOW):
            if end - begin > self.budget:
                self.budget = 0
            return None
        self.budget -= end - begin
        return _found(self.text, begin, end, self.region)

    def read_groups(self, begin: int, end: int) -> list[Span] | None:
        """The numbers in a stretch of a run where the matcher found none, read one
        space-apart group after another, longest first: the matcher refuses a number
        followed or preceded by more digits (`(415) 555-0143 2 times`)."""
        groups = [group.span() for group in _GROUP.finditer(self.text, begin, end)]
        if len(groups) > MAX_GROUPS:
            return None
        spans: list[Span] = []
        first = 0
        while first < len(groups):
            for last in range(len(groups) - 1, first - 1, -1):
                if first == 0 and last == len(groups) - 1:
                    continue  # the whole stretch: the matcher read it with its window
                start, stop = groups[first][0], groups[last][1]
                if not MIN_DIGITS <= _digits(self.text, start, stop) <= MAX_DIGITS:
                    continue
                if not _apart(self.text, start, stop):
                    continue
                found = self.read(start, stop)
                if found is None:
                    return None
                if found:
                    spans += found
                    first = last
                    break
            first += 1
        return spans


def _apart(text: str, begin: int, end: int) -> bool:
    """Whether `text[begin:end]` stands apart from letters and digits on both sides (a part
    of an id or a uuid does not)."""
    return (begin == 0 or not text[begin - 1].isalnum()) and (
        end == len(text) or not text[end].isalnum()
    )


def _digits(text: str, begin: int, end: int) -> int:
    return len(_DIGIT.findall(text, begin, end))


def _uncovered(begin: int, end: int, spans: list[Span]) -> list[tuple[int, int]]:
    """The stretches of `[begin, end)` that no span covers."""
    stretches, at = [], begin
    for start, stop, _ in sorted(spans):
        if stop <= at or start >= end:
            continue
        if start > at:
            stretches.append((at, start))
        at = max(at, stop)
    if at < end:
        stretches.append((at, end))
    return stretches


def _windows(runs: list[re.Match[str]]) -> list[list[re.Match[str]]]:
    """The runs the matcher reads together: each with `CONTEXT` characters on each side,
    neighbours joined while what they span stays within `MAX_WINDOW` characters."""
    windows: list[list[re.Match[str]]] = []
    for run in runs:
        if windows:
            first, last = windows[-1][0], windows[-1][-1]
            joined = run.end() - first.start() + 2 * CONTEXT
            if run.start() - last.end() <= 2 * CONTEXT and joined <= MAX_WINDOW:
                windows[-1].append(run)
                continue
        windows.append([run])
    return windows


def _number_spans(text: str, region: str) -> list[Span]:
    """Where the numbers in `text` are, in order and without overlaps."""
    spans: list[Span] = []
    reader = _Reader(text, region)
    ids = [found.span() for found in _ID.finditer(text)]
    runs = [
        run
        for run in _RUN.finditer(text)
        if not _plain(text, run) and not any(a <= run.start() and run.end() <= b for a, b in ids)
    ]
    for window in _windows(runs):
        begin = max(window[0].start() - CONTEXT, 0)
        found = reader.read(begin, min(window[-1].end() + CONTEXT, len(text)))
        if found is None:
            spans += [(run.start(), run.end(), None) for run in window]
            continue
        spans += found
        for run in window:
            for start, stop in _uncovered(run.start(), run.end(), found):
                if _digits(text, start, stop) >= MIN_DIGITS:
                    grouped = reader.read_groups(_lead_start(text, start), stop)
                    spans += [(start, stop, None)] if grouped is None else grouped
    spans += [(match.start(), match.end(), match[0]) for match in _E164.finditer(text)]
    return _without_overlaps(spans)


def _lead_start(text: str, start: int) -> int:
    """`start` moved back over a `(` or `+` that opens the number there."""
    while start > 0 and text[start - 1] in "(+（［[＋":
        start -= 1
    return start


def _without_overlaps(spans: list[Span]) -> list[Span]:
    """`spans` in order, each overlapping pair joined into one masked whole."""
    joined: list[Span] = []
    for start, end, number in sorted(spans, key=lambda span: (span[0], -span[1])):
        if joined and start < joined[-1][1]:
            first, last, kept = joined[-1]
            joined[-1] = (first, max(last, end), kept if end <= last else None)
        else:
            joined.append((start, end, number))
    return joined


def mask_phone_numbers(text: str, keep_start: int = 5, keep_end: int = 4) -> str:
    """`text` with every phone number in it masked: `SIP 503 from +1 (415) 555-0188` ->
    `SIP 503 from +1415•••0188`. Dates, times, durations and ids are left alone."""
    if not _RUN.search(text):  # no 7 digits close together: no number (most text)
        return text
    if len(text) > MAX_CACHED_TEXT:
        return _with_numbers_masked(text, phone_region(), keep_start, keep_end)
    return _cached_with_numbers_masked(text, phone_region(), keep_start, keep_end)


def _with_numbers_masked(text: str, region: str, keep_start: int, keep_end: int) -> str:
    spans = _number_spans(text, region)
    if not spans:
        return text
    pieces, done = [], 0
    for start, end, number in spans:
        pieces.append(text[done:start])
        pieces.append(MASK if number is None else _masked(number, keep_start, keep_end))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


# typed: a str subclass (markupsafe.Markup) never gets back what a plain str was given.
_cached_with_numbers_masked = lru_cache(maxsize=CACHED_TEXTS, typed=True)(_with_numbers_masked)


def mask_phone(value: Any, keep_start: int = 5, keep_end: int = 4) -> str:
    """A phone number field as shown (`fromNumber | mask_phone`): `+1 415-555-0123` ->
    `+1415•••0123`. Text with numbers in it gets those masked; a value in which no number
    is found (`anonymous`, a SIP address) is masked whole, keeping its ends."""
    if value is None:
        return ""
    text = str(value).strip()
    masked = mask_phone_numbers(text, keep_start, keep_end)
    return masked if masked != text else _masked(text, keep_start, keep_end)


def mask_phone_numbers_in(value: Any) -> Any:
    """Decoded JSON with the phone numbers in its strings masked, at any depth; a whole
    number that is a phone number (`4155550123`) becomes its masked text."""
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if isinstance(value, dict):
        return {key: mask_phone_numbers_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_phone_numbers_in(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        masked = mask_phone_numbers(text)
        return value if masked == text else masked
    return value


# E.164 as RevRing writes it: taken as it is, without the parser's 40 µs.
_WRITTEN_E164 = re.compile(r"\+[1-9]\d{6,14}")


def e164(value: Any) -> str | None:
    """A phone number written in any common way (`+1 415-555-0142`, `(415) 555-0142`,
    `+44 20 7183 8750`; without a country code, read in `ROUTER_PHONE_REGION`) in E.164
    (`+14155550142`), or None when `value` is no possible number. What calls are stored
    and searched by, so both sides of a search agree."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if _WRITTEN_E164.fullmatch(text):
        return text
    if len(text) > 64 or _DIGIT.search(text) is None:
        return None
    try:
        number = parse(text, phone_region())
    except NumberParseException:
        return None
    return format_number(number, _E164_FORMAT) if is_possible_number(number) else None


def holds_phone_number(text: str) -> bool:
    """Whether `text` holds a phone number `mask_phone_numbers` would mask."""
    return _RUN.search(text) is not None and bool(_number_spans(text, phone_region()))


ERASED = "[erased]"
"""What a forgotten caller's number becomes wherever it stays stored (DESIGN.md §15)."""


def national_digits(number: str) -> str:
    """The national significant number of an E.164 number, its digits alone
    (`+14155550142` -> `4155550142`): a run every common way of writing it holds once its
    separators are taken out (`(415) 555-0142`, `+1 415.555.0142`, `020 7183 8750` for
    `+442071838750`)."""
    try:
        parsed = parse(number, None)
    except NumberParseException:
        return _digits_of(number)
    leading = "0" * (parsed.number_of_leading_zeros or 1) if parsed.italian_leading_zero else ""
    return f"{leading}{parsed.national_number}"


def _digits_of(text: str) -> str:
    return "".join(_DIGIT.findall(text))


def written_digits(number: str) -> frozenset[str]:
    """The digits of `number` (E.164) as people write it: national (`4155550142`), with a
    trunk prefix (`04155550142`, `14155550142` for NANP), with its country code
    (`14155550142`) or an international prefix (`0014155550142`, `01114155550142`)."""
    national = national_digits(number)
    country = _digits_of(number)[: -len(national)] if national else ""
    return frozenset(
        {
            national,
            f"0{national}",
            f"{country}{national}",
            f"00{country}{national}",
            f"011{country}{national}",
        }
    )


def erase_number(text: str, number: str) -> str:
    """`text` with every writing of `number` (E.164) replaced by `[erased]`: the numbers
    the matcher finds (as `mask_phone_numbers` does, region `ROUTER_PHONE_REGION`) that are
    `number`, and the runs of digits that spell it (`written_digits`) whatever the region;
    other numbers, dates and ids are left alone."""
    if not _RUN.search(text):
        return text
    forms = written_digits(number)
    spans = [
        (start, end)
        for start, end, found in _number_spans(text, phone_region())
        if found == number or (found is None and _digits_of(text[start:end]) in forms)
    ]
    spans += [
        (_lead_start(text, run.start()), run.end())
        for run in _RUN.finditer(text)
        if _digits_of(run[0]) in forms
    ]
    if not spans:
        return text
    pieces, done = [], 0
    for start, end, _ in _without_overlaps([(start, end, None) for start, end in spans]):
        pieces.append(text[done:start])
        pieces.append(ERASED)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def erase_number_in(value: Any, number: str) -> Any:
    """Decoded JSON with `number` erased from its strings (and keys), at any depth; a whole
    number that spells it (`4155550142`) becomes `[erased]`."""
    if isinstance(value, str):
        return erase_number(value, number)
    if isinstance(value, dict):
        return {
            erase_number(key, number): erase_number_in(item, number) for key, item in value.items()
        }
    if isinstance(value, list):
        return [erase_number_in(item, number) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return ERASED if erase_number(text, number) != text else value
    return value
