"""The post-call event model and `parse_event` (router/core/events.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.core.events import EventRejected, PostCallEvent, parse_event

SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # the same as /work/shared/samples
REQUIRED = ("id", "direction", "status", "fromNumber", "toNumber", "organizationId", "agentId")


def minimal(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "call-1",
        "direction": "INBOUND",
        "status": "COMPLETED",
        "fromNumber": "+14155550123",
        "toNumber": "+14155550199",
        "organizationId": "org_1",
        "agentId": "agent_1",
    }
    event.update(changes)
    return event


def rejection(payload: Any) -> EventRejected:
    with pytest.raises(EventRejected) as caught:
        parse_event(payload)
    return caught.value


def sample_payloads() -> list[Any]:
    return [
        pytest.param(json.loads(path.read_text()), id=path.stem)
        for path in sorted(SAMPLES.glob("*.json"))
    ]


@pytest.mark.parametrize("payload", sample_payloads())
def test_every_shared_sample_parses_and_dumps_back_its_fields(payload: dict[str, Any]) -> None:
    event = parse_event(payload)
    assert event.id == payload["id"]
    assert event.unknown_values() == {}
    dumped = event.model_dump()
    assert set(payload) <= set(dumped)


def test_samples_exist() -> None:
    assert len(sample_payloads()) >= 4


def test_unknown_fields_are_kept_and_dumped() -> None:
    event = parse_event(minimal(sentiment={"score": 0.8}, callTags=["vip"]))
    assert event.model_dump()["sentiment"] == {"score": 0.8}
    assert event.model_dump(mode="json")["callTags"] == ["vip"]


def test_unknown_status_and_direction_are_accepted_and_reported() -> None:
    event = parse_event(minimal(status="NO_ANSWER", direction="INTERNAL"))
    assert event.status == "NO_ANSWER"
    assert event.unknown_values() == {"status": "NO_ANSWER", "direction": "INTERNAL"}


@pytest.mark.parametrize(
    "value",
    ["2026-11-20T15:02:11Z", "2026-11-20T15:02:11+00:00", 1795186931, 1795186931.0, "1795186931"],
)
def test_timestamps_as_iso_strings_or_unix_seconds(value: Any) -> None:
    event = parse_event(minimal(startedAt=value))
    assert event.startedAt == datetime(2026, 11, 20, 15, 2, 11, tzinfo=UTC)


def test_optional_fields_may_be_null_or_absent() -> None:
    event = parse_event(minimal(summary=None, transcript=None, durationSeconds=None))
    assert event.summary is None
    assert parse_event(minimal()).endedAt is None


def test_every_missing_required_field_is_named_in_one_rejection() -> None:
    problems = rejection({"id": "x", "somethingElse": 1}).problems
    missing = {problem.split(":")[0] for problem in problems}
    assert missing == set(REQUIRED) - {"id"}
    assert all("required" in problem.lower() for problem in problems)


def test_an_empty_object_names_all_required_fields() -> None:
    message = str(rejection({}))
    for name in REQUIRED:
        assert name in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 12345),
        ("id", ""),
        ("status", None),
        ("durationSeconds", "5"),
        ("durationSeconds", True),
        ("durationSeconds", 5.5),
        ("durationSeconds", -1),
        ("transcript", "hello"),
        ("transcript", {"role": "agent"}),
        ("startedAt", "yesterday"),
        ("fromNumber", ["+1"]),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(field: str, value: Any) -> None:
    problems = rejection(minimal(**{field: value})).problems
    assert problems
    assert all(problem.startswith(field) for problem in problems), problems


def test_several_wrong_fields_are_all_named() -> None:
    problems = rejection(minimal(id=1, durationSeconds="5")).problems
    assert {problem.split(":")[0] for problem in problems} == {"id", "durationSeconds"}


def test_transcript_entries_may_be_objects_or_strings() -> None:
    event = parse_event(minimal(transcript=[{"speaker": "agent", "text": "hi"}, "caller: hello"]))
    assert event.transcript == [{"speaker": "agent", "text": "hi"}, "caller: hello"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transcript", ["caller: hi", 5]),
        ("transcript", [{"speaker": "agent"}, None, [1, 2], True]),
        ("metrics", 5),
        ("metrics", [1, 2]),
        ("metrics", "fast"),
        ("variables", [{"tier": "gold"}]),
        ("variables", False),
    ],
)
def test_what_is_never_routed_on_by_shape_is_kept_whatever_its_shape(
    field: str, value: Any
) -> None:
    event = parse_event(minimal(**{field: value}))
    assert getattr(event, field) == value


@pytest.mark.parametrize("seconds", [-6.1e16, 1e300, 10**30, -62135596801, 253402300800, -(10**20)])
def test_a_numeric_timestamp_outside_the_years_1_to_9999_reads_as_null(seconds: Any) -> None:
    event = parse_event(minimal(endedAt=seconds, startedAt=1795186931))
    assert event.endedAt is None
    assert event.startedAt == datetime(2026, 11, 20, 15, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "moment"),
    [
        (-62135596800, datetime(1, 1, 1, tzinfo=UTC)),
        (253402300799, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (32503680000, datetime(3000, 1, 1, tzinfo=UTC)),  # seconds, never milliseconds
    ],
)
def test_numeric_timestamps_are_unix_seconds_to_the_ends_of_the_range(
    seconds: int, moment: datetime
) -> None:
    assert parse_event(minimal(createdAt=seconds)).createdAt == moment


@pytest.mark.parametrize("payload", [[minimal()], "call", 42, None, True])
def test_a_body_that_is_not_an_object_is_rejected(payload: Any) -> None:
    problems = rejection(payload).problems
    assert len(problems) == 1
    assert problems[0].startswith("body: expected a JSON object")


def test_the_model_is_the_one_parse_event_returns() -> None:
    assert isinstance(parse_event(minimal()), PostCallEvent)


@pytest.mark.parametrize("field", ["id", "status", "direction"])
def test_a_nul_character_in_a_stored_text_field_is_rejected(field):
    body = json.loads((SAMPLES / "failed-outbound.json").read_text())
    body[field] = "A\x00B"
    with pytest.raises(EventRejected) as caught:
        parse_event(body)
    assert any(p.startswith(f"{field}:") and "NUL" in p for p in caught.value.problems)


@pytest.mark.parametrize("field", [name for name in REQUIRED if name != "id"])
def test_a_required_string_other_than_id_may_be_empty(field: str) -> None:
    event = parse_event(minimal(**{field: ""}))
    assert getattr(event, field) == ""


def test_an_empty_status_and_direction_are_reported_as_unknown_values() -> None:
    event = parse_event(minimal(status="", direction=""))
    assert event.unknown_values() == {"status": "", "direction": ""}


@pytest.mark.parametrize("field", REQUIRED)
def test_a_required_string_with_a_nul_is_refused(field: str) -> None:
    (problem,) = rejection(minimal(**{field: "a\x00b"})).problems
    assert problem.startswith(field)
    assert "NUL" in problem
