"""Phone numbers found and masked in free text (router/core/phones.py): formatted numbers in
any common way, read in `ROUTER_PHONE_REGION`, while dates, uuids, durations and ids are
left alone; a text stuffed with digits is masked whole in bounded time."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from router.core.phones import (
    DEFAULT_REGION,
    MATCHER_BUDGET,
    REGION_VARIABLE,
    holds_phone_number,
    mask_phone,
    mask_phone_numbers,
    mask_phone_numbers_in,
    phone_region,
    region_problem,
)


@pytest.fixture(autouse=True)
def _default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGION_VARIABLE, raising=False)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("SIP 503 from +14155550188", "SIP 503 from +1415•••0188"),
        ("call +1 415-555-0142 now", "call +1415•••0142 now"),
        ("at (415) 555-0143.", "at +1415•••0143."),
        ("+1-415-555-0148", "+1415•••0148"),
        ("to +44 20 7183 8750, twice", "to +4420•••8750, twice"),
        ("tel:+1-415-555-0142", "tel:+1415•••0142"),
        ("call me on 415.555.0199", "call me on +1415•••0199"),
        ("SIP 503 (415) 555-0143", "SIP 503 +1415•••0143"),
        ("a test number +15555550100", "a test number +1555•••0100"),  # E.164, not valid
        ("+14155550188 and +442071838750", "+1415•••0188 and +4420•••8750"),
    ],
)
def test_numbers_written_in_any_common_way_are_masked_like_e164(text: str, masked: str) -> None:
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "ended 2026-11-20T15:02:11Z after 00:01:05",
        "2026-11-20 15:02:11.123456+00:00",
        "on 11/20/2026 at 3pm, 20/11/2026 elsewhere",
        "call 123e4567-e89b-12d3-a456-426614174000 failed",
        "order 1234567890 and invoice 987654321",
        "at 2000-01-01T00:00:13.100000+00:00",
        "unix time 1763650931, took 1m 48s",
        "version 1.2.3.4567, SIP 503 Service Unavailable",
        "no digits at all",
    ],
)
def test_dates_times_durations_and_ids_are_left_alone(text: str) -> None:
    assert mask_phone_numbers(text) == text
    assert not holds_phone_number(text)


def test_a_national_number_is_read_in_the_configured_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    london = "ring 020 7183 8750 back"
    assert mask_phone_numbers(london) == london  # not a number in the US
    monkeypatch.setenv(REGION_VARIABLE, "gb")
    assert phone_region() == "GB"
    assert mask_phone_numbers(london) == "ring +4420•••8750 back"
    assert mask_phone_numbers("+1 415-555-0142") == "+1415•••0142"


@pytest.mark.parametrize(
    ("value", "problem"),
    [(None, False), ("", False), ("US", False), ("de", False), ("XX", True), ("USA", True)],
)
def test_the_region_setting_is_checked(value: str | None, problem: bool) -> None:
    found = region_problem(value)
    assert (found is not None) is problem
    if problem:
        assert REGION_VARIABLE in found and repr(value) in found


def test_an_unknown_region_reads_numbers_as_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REGION_VARIABLE, "XX")
    assert phone_region() == DEFAULT_REGION
    assert mask_phone_numbers("(415) 555-0143") == "+1415•••0143"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+1 415-555-0123", "+1415•••0123"),
        ("(415) 555-0123", "+1415•••0123"),
        ("anonymous", "•••"),
        ("sip:alice@example.com", "sip:a•••.com"),
        ("Call me at +14155550123 please", "Call me at +1415•••0123 please"),
    ],
)
def test_the_mask_phone_filter_masks_numbers_and_what_is_not_one(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


def test_decoded_json_is_masked_at_any_depth() -> None:
    body = {
        "summary": "call (415) 555-0143",
        "variables": {"callback": 4155550199, "ids": ["+44 20 7183 8750", 7, True, None]},
    }
    assert mask_phone_numbers_in(body) == {
        "summary": "call +1415•••0143",
        "variables": {"callback": "+1415•••0199", "ids": ["+4420•••8750", 7, True, None]},
    }


@pytest.mark.parametrize(
    "unit",
    ["call 415 555 0143, ", "+14155550143 ", "+1 415 555 0143 ", "(415) 555-0143 (415) 555-0199\n"],
)
def test_a_text_stuffed_with_numbers_shows_none_of_them(unit: str) -> None:
    text = unit * (4 * MATCHER_BUDGET // len(unit))
    masked = mask_phone_numbers(text)
    assert "555" not in masked and "0143" not in masked.replace("•••0143", "")
    assert "•••" in masked


# Numbers of several regions, varied in their last digits, as people and systems write them.
REGIONS = ["US", "CA", "GB", "DE", "FR", "AU", "IN", "BR", "ES", "NL", "JP", "MX"]


@st.composite
def valid_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    region = draw(st.sampled_from(REGIONS))
    kinds = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    kind = draw(st.sampled_from(kinds))
    example = phonenumbers.example_number_for_type(region, kind)
    assume(example is not None)
    national = str(example.national_number)
    tail = draw(st.text("0123456789", min_size=3, max_size=3))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    return number


def written(number: phonenumbers.PhoneNumber, style: str) -> str:
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    return {
        "e164": phonenumbers.format_number(number, PhoneNumberFormat.E164),
        "international": international,
        "dashes": international.replace(" ", "-"),
        "dots": international.replace(" ", "."),
        "rfc3966": phonenumbers.format_number(number, PhoneNumberFormat.RFC3966),
        "national": phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
    }[style]


WORDS = st.lists(
    st.sampled_from(["call", "me", "at", "or", "SIP", "503", "from", "thanks", "Tuesday", "ok."]),
    max_size=4,
).map(" ".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    number=valid_numbers(),
    style=st.sampled_from(["e164", "international", "dashes", "dots", "rfc3966", "national"]),
    before=WORDS,
    after=WORDS,
)
def test_valid_numbers_however_written_are_always_masked(
    number: phonenumbers.PhoneNumber, style: str, before: str, after: str
) -> None:
    region = phonenumbers.region_code_for_number(number)
    shown = written(number, style)
    text = f"{before} {shown} {after}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REGION_VARIABLE, region)
        masked = mask_phone_numbers(text)
    national = str(number.national_number)
    assert national not in re.sub(r"\D", "", masked), (text, masked)
    assert "•••" in masked


@given(moment=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)))
def test_iso_times_are_left_alone(moment: datetime) -> None:
    for text in (
        moment.isoformat(),
        moment.replace(tzinfo=UTC).isoformat(),
        moment.isoformat(sep=" ", timespec="seconds"),
        moment.date().isoformat(),
        moment.strftime("%m/%d/%Y %H:%M"),
    ):
        sentence = f"ended {text} (call 7)"
        assert mask_phone_numbers(sentence) == sentence


@given(value=st.uuids())
def test_uuids_are_left_alone(value: uuid.UUID) -> None:
    for text in (str(value), value.hex, f"call_{value.hex[:20]}"):
        sentence = f"id {text} failed"
        assert mask_phone_numbers(sentence) == sentence


@given(seconds=st.integers(min_value=0, max_value=10**6))
def test_durations_are_left_alone(seconds: int) -> None:
    hours, rest = divmod(seconds, 3600)
    clock = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    for text in (clock, f"{seconds}s", f"{seconds / 1000:.3f} s", f"{clock}.250"):
        sentence = f"the call lasted {text} in all"
        assert mask_phone_numbers(sentence) == sentence


def test_a_run_of_digits_inside_an_id_costs_no_matcher(monkeypatch: pytest.MonkeyPatch) -> None:
    # A third of uuids (and of delivery ids) hold 7 digits apart by dashes only: the
    # matcher (100 µs) is not asked about them, and a number beside them is still found.
    import router.core.phones as phones

    reads: list[str] = []
    found = phones._found

    def counting(text: str, begin: int, end: int, region: str) -> list:
        reads.append(text[begin:end])
        return found(text, begin, end, region)

    monkeypatch.setattr(phones, "_found", counting)
    ids = "call 5c7b5945-4021-8734-9152-eaa6793d72dd, delivery 18eef346d2f1891af440007a6b4d1304"
    assert mask_phone_numbers(ids + " ") == ids + " "
    assert reads == []
    assert mask_phone_numbers(ids + " from (415) 555-0143") == ids + " from +1415•••0143"
    assert len(reads) == 1
