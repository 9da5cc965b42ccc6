"""Pure pieces of the PagerDuty sink: the dedup_key (stable, bounded, no phone numbers),
the summary sentences, and PagerDuty's answers turned into outcomes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from sinks.base import DeliveryRequest, Digest, Permanent, Retryable, SendResult
from sinks.call_text import call_line, digest_line, window_length_text
from sinks.pagerduty import (
    MAX_DEDUP_KEY,
    PagerDutySinkConfig,
    bounded_dedup_key,
    build_event,
    classify_answer,
    default_dedup_key,
    severity_problem,
)
from tests.conftest import sample


@given(st.text(min_size=1, max_size=2000))
def test_a_dedup_key_is_bounded_and_the_same_for_the_same_input(key: str) -> None:
    bounded = bounded_dedup_key(key)
    assert len(bounded) <= MAX_DEDUP_KEY
    assert bounded == bounded_dedup_key(key)
    assert bounded == key or len(key) > MAX_DEDUP_KEY


def test_two_long_keys_sharing_a_start_stay_apart() -> None:
    assert bounded_dedup_key("k" * 300 + "a") != bounded_dedup_key("k" * 300 + "b")


def digest_request(group_key: dict, rule: str = "r") -> DeliveryRequest:
    event = sample("failed-outbound")
    digest = Digest(group_key, "2026-11-20T15:02:00Z", "2026-11-20T15:02:45Z", [event])
    return DeliveryRequest("d", event["id"], "oncall", rule, event, digest=digest)


def test_a_digest_key_is_its_rule_and_group_key_without_phone_numbers() -> None:
    assert default_dedup_key(digest_request({"sipTrunkId": "sip-7"}, "outage")) == (
        "digest:outage:sipTrunkId=sip-7"
    )
    by_number = default_dedup_key(digest_request({"toNumber": "+442071838750"}))
    assert "+44" not in by_number and by_number.startswith("digest:r:")
    assert by_number != default_dedup_key(digest_request({"toNumber": "+442071838751"}))
    unmasked = default_dedup_key(digest_request({"toNumber": "+442071838750"}), masked=False)
    assert unmasked == "digest:r:toNumber=+442071838750"


def test_sentences_for_calls_and_digests() -> None:
    assert call_line(sample("minimal-canceled")).startswith("CANCELED ")
    assert call_line({"status": "FAILED", "errorMessage": "line\nbreak"}) == (
        "FAILED unknown-direction call: line break"
    )
    assert digest_line(digest_request({"sipTrunkId": "sip-7"}).digest) == (
        "1 FAILED call on trunk sip-7 in 45 s"
    )
    assert window_length_text("2026-11-20T15:00:00Z", "2026-11-20T16:30:00Z") == "1.5 h"
    assert window_length_text("nonsense", "2026-11-20T16:30:00Z") is None


def test_severity_problems_name_the_value_and_the_choices() -> None:
    assert severity_problem(" Warning ") is None
    assert severity_problem("sev1") == (
        "'sev1' is not a PagerDuty severity (critical, error, warning or info)"
    )


def test_answers_become_outcomes() -> None:
    accepted = classify_answer(
        202,
        json.dumps({"status": "success", "dedup_key": "abc"}).encode(),
        retry_after=None,
        secrets=[],
        now=0,
    )
    assert accepted == SendResult(status_code=202, detail="dedup_key abc")
    not_json = classify_answer(400, b"<html>bad</html>", retry_after=None, secrets=[], now=0)
    assert isinstance(not_json, Permanent)
    assert not_json.reason == "pagerduty: HTTP 400 invalid event: <html>bad</html>"
    throttled = classify_answer(429, b"", retry_after="30", secrets=[], now=0)
    assert isinstance(throttled, Retryable) and throttled.retry_after == 30.0
    numbers = classify_answer(
        400, b'{"errors": ["bad +442071838750"]}', retry_after=None, secrets=[], now=0
    )
    assert numbers.reason.endswith("bad +4420•••8750")


def test_payload_fields_are_one_line_text_and_a_bad_timestamp_is_left_out() -> None:
    event = {
        **sample("failed-outbound"),
        "sipTrunkId": 7,
        "initiatedAt": "yesterday-ish",
        "agentName": "Ava\nSmith",
    }
    config = PagerDutySinkConfig(type="pagerduty", routing_key="KEY")
    document = build_event(config, DeliveryRequest("d", event["id"], "oncall", "r", event))
    payload = document["payload"]
    assert payload["component"] == "7"
    assert payload["source"] == "Ava Smith"
    assert "timestamp" not in payload
