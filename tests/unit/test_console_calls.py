"""The calls pages' pure parts: filters from a query string, the keyset cursor, a
transcript excerpt and a stored body made ready to show."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.store import CallFilters, EventView
from router.web.ui.calls import (
    BadFilter,
    TranscriptLine,
    call_row,
    parse_call_filters,
    parse_cursor,
    parse_time,
    payload_of,
    transcript_excerpt,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_filters_from_a_query_string() -> None:
    query = {
        "status": "failed",
        "direction": " inbound ",
        "agent": "a-1",
        "organization": "org",
        "hangup": "MAX_DURATION",
        "call": "c-1",
        "from": "2026-11-20T15:00",
        "to": "2026-11-20T16:00:00+01:00",
        "ignored": "x",
    }
    assert parse_call_filters(query) == CallFilters(
        status="FAILED",
        direction="INBOUND",
        agent_id="a-1",
        organization_id="org",
        hangup_cause="MAX_DURATION",
        call_id="c-1",
        received_from=1_795_186_800.0,
        received_to=1_795_186_800.0,
    )
    assert parse_call_filters({"status": "", "agent": "  "}) == CallFilters()


def test_a_time_without_a_zone_is_utc_and_z_is_understood() -> None:
    assert parse_time("from", "2026-11-20T15:00Z") == parse_time("from", "2026-11-20 15:00")
    with pytest.raises(BadFilter, match="from must be a date and time"):
        parse_time("from", "yesterday")


@given(st.dictionaries(st.sampled_from(["status", "from", "to", "agent", "call"]), st.text()))
def test_any_query_string_gives_filters_or_a_bad_filter(query: dict[str, str]) -> None:
    try:
        parse_call_filters(query)
    except BadFilter as problem:
        assert str(problem)


def test_the_cursor_needs_both_halves_and_a_number() -> None:
    assert parse_cursor({}) is None
    assert parse_cursor({"before_at": "12.5", "before_id": "c"}) == (12.5, "c")
    halves = ({"before_at": "12.5"}, {"before_id": "c"}, {"before_at": "nan", "before_id": "c"})
    for query in halves:
        with pytest.raises(BadFilter):
            parse_cursor(query)


def test_a_transcript_excerpt_takes_either_shape_and_counts_every_entry() -> None:
    transcript = [
        {"role": "agent", "content": "Hi"},
        {"speaker": "user", "text": "<b>hello</b>"},
        {"other": 1},
        "plain",
    ]
    lines, total = transcript_excerpt(transcript * 5, limit=4)
    assert total == 20
    assert lines == [
        TranscriptLine("agent", "Hi"),
        TranscriptLine("user", "<b>hello</b>"),
        TranscriptLine("", '{"other": 1}'),
        TranscriptLine("", "plain"),
    ]
    assert transcript_excerpt(None) == ([], 0)
    assert transcript_excerpt({"not": "a list"}) == ([], 0)


@given(JSON)
def test_any_transcript_gives_lines_of_text(transcript: Any) -> None:
    lines, total = transcript_excerpt(transcript)
    assert len(lines) <= total
    assert all(isinstance(line.speaker, str) and isinstance(line.text, str) for line in lines)


def test_a_stored_body_that_is_not_an_object_shows_as_empty() -> None:
    for raw in (b"[1]", b"not json", b"\xff"):
        assert payload_of(EventView("c", raw, 0.0, "", "")) == {}
    row = call_row(EventView("c", b'{"fromNumber": 14155550123}', 1.0, "FAILED", "INBOUND"))
    assert (row.from_number, row.to_number, row.duration) == ("14155550123", "", None)
