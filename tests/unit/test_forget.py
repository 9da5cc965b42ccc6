"""Forgetting a caller, the pure parts (DESIGN.md section 15): which writings of a number
are erased from text and JSON, and which look-alikes stay; the request as the admin API
reads it; what the audit records (a salted hash, never the number)."""

from __future__ import annotations

import json

import pytest

from router.core.phones import ERASED, erase_number, erase_number_in, national_digits
from router.operators import ForgetRequest, RequestInvalid, audit_details, parse_forget_request
from router.operators.forget import erasure_of, number_hash, report_json
from router.store import ErasureCounts

CALLER = "+14155550142"


@pytest.mark.parametrize(
    "text",
    [
        "+14155550142",
        "+1 415-555-0142",
        "+1 (415) 555-0142",
        "(415) 555-0142",
        "415.555.0142",
        "415 555 0142",
        "1-415-555-0142",
        "4155550142",
        "tel:+1-415-555-0142",
        "001 415 555 0142",
    ],
)
def test_every_common_writing_of_the_number_is_erased(text: str) -> None:
    erased = erase_number(f"call back on {text} today", CALLER)
    assert erased == f"call back on {text.split('+')[0] if 'tel:' in text else ''}{ERASED} today"


@pytest.mark.parametrize(
    "text",
    [
        "+1 415-555-0143",  # another number
        "(415) 555-0124",
        "2026-11-20 15:02:11",  # a date and time
        "order 0014155550142777",  # the digits inside a longer run
        "id 3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "555-0142",  # too short to be the number
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert erase_number(text, CALLER) == text


def test_a_number_of_another_country_is_erased_in_its_national_writing() -> None:
    london = "+442071838750"
    assert national_digits(london) == "2071838750"
    text = "ring 020 7183 8750 or +44 20 7183 8750, not 020 7183 8751"
    assert erase_number(text, london) == f"ring {ERASED} or {ERASED}, not 020 7183 8751"


def test_json_keeps_its_shape_with_the_number_erased() -> None:
    body = {
        "summary": "call (415) 555-0142",
        "variables": {"raw": 4155550142, "other": 4155550143, "flag": True, "n": 1.5},
        "transcript": [{"role": "user", "content": "my number is 415 555 0142"}],
        "(415) 555-0142": "a key",
    }
    erased = erase_number_in(body, CALLER)
    assert erased == {
        "summary": f"call {ERASED}",
        "variables": {"raw": ERASED, "other": 4155550143, "flag": True, "n": 1.5},
        "transcript": [{"role": "user", "content": f"my number is {ERASED}"}],
        ERASED: "a key",
    }
    assert json.loads(json.dumps(erased)) == erased


def test_the_request_reads_any_writing_and_names_every_problem() -> None:
    assert parse_forget_request({"phone": "(415) 555-0142"}) == ForgetRequest(CALLER)
    assert parse_forget_request({"phone": "+1 415 555 0142", "dry_run": True}) == ForgetRequest(
        CALLER, dry_run=True
    )
    with pytest.raises(RequestInvalid) as raised:
        parse_forget_request({"phone": "415-555-01", "dry_run": 1, "extra": 2})
    errors = raised.value.errors
    assert [error.split(":")[0] for error in errors] == ["extra", "phone", "dry_run"]
    assert not any("555-01" in error for error in errors), "the number is never repeated"


def test_the_audit_holds_a_salted_hash_and_the_counts_never_the_number() -> None:
    counts = ErasureCounts(calls_deleted=2, deliveries_deleted=3, pending_cancelled=1)
    details = audit_details(CALLER, counts, "salt-a")
    assert details["phone_hash"] == number_hash(CALLER, "salt-a")
    assert details["phone_hash"] != number_hash(CALLER, "salt-b")
    assert len(details["phone_hash"]) == 64
    assert details["calls_deleted"] == 2 and details["pending_cancelled"] == 1
    assert "5550142" not in json.dumps(details)


def test_the_erasure_carries_the_numbers_digits_and_its_redaction() -> None:
    erasure = erasure_of(ForgetRequest(CALLER, dry_run=True))
    assert (erasure.number, erasure.digits, erasure.dry_run) == (CALLER, "4155550142", True)
    assert erasure.redact("on 415.555.0142") == f"on {ERASED}"


def test_the_answer_shows_the_number_masked() -> None:
    from router.operators import ForgetReport

    answer = report_json(ForgetReport(ErasureCounts(calls_deleted=1), dry_run=False), CALLER)
    assert answer["phone"] == "+1415•••0142"
    assert answer["status"] == "forgotten" and answer["calls_deleted"] == 1
