"""Finding calls in the store: by phone number (`CallFilters.phone`, the calls from or
to it), by words of their summary and transcript (`CallFilters.words`), with the other
filters and the keyset; and one call's deliveries (`list_deliveries(call=…)`). On every
store kind in `conftest.STORE_KINDS`; times are fixed numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.store import (
    MAX_SEARCH_WORDS,
    CallFilters,
    DeliveryView,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    Store,
    searchable_text,
)

NOW = 1_700_000_000.0
CALLER = "+14155550123"
AGENT_LINE = "+14155550199"


def call(
    event_id: str,
    at: float,
    *,
    from_number: str = CALLER,
    to_number: str = AGENT_LINE,
    status: str = "COMPLETED",
    summary: str | None = None,
    transcript: Any = None,
    deliveries: tuple[NewDelivery, ...] = (),
) -> IngestRecord:
    body = {
        "id": event_id,
        "fromNumber": from_number,
        "toNumber": to_number,
        "summary": summary,
        "transcript": transcript,
    }
    return IngestRecord(
        event_id,
        json.dumps(body).encode(),
        at,
        deliveries,
        status=status,
        from_number=from_number,
        to_number=to_number,
        search_text=searchable_text(body),
    )


async def ids(store: Store, filters: CallFilters, **keyset: Any) -> list[str]:
    return [event.id for event in await store.list_events(filters, **keyset)]


async def test_calls_from_or_to_a_number_newest_first(store: Store) -> None:
    await store.ingest(call("in-1", NOW + 1))
    await store.ingest(call("other", NOW + 2, from_number="+442071838750"))
    await store.ingest(call("back", NOW + 3, from_number=AGENT_LINE, to_number=CALLER))
    await store.ingest(call("in-2", NOW + 4, status="FAILED"))

    assert await ids(store, CallFilters(phone=CALLER)) == ["in-2", "back", "in-1"]
    assert await ids(store, CallFilters(phone="+442071838750")) == ["other"]
    assert await ids(store, CallFilters(phone="+15555550000")) == []
    both = CallFilters(phone=CALLER, status="FAILED")
    assert await ids(store, both) == ["in-2"]
    page = await store.list_events(CallFilters(phone=AGENT_LINE), limit=2)
    assert [event.id for event in page] == ["in-2", "back"]
    cursor = (page[-1].received_at, page[-1].id)
    assert await ids(store, CallFilters(phone=AGENT_LINE), before=cursor) == ["other", "in-1"]
    [shown] = await store.list_events(CallFilters(call_id="back"))
    assert (shown.from_number, shown.to_number) == (AGENT_LINE, CALLER)


async def test_a_number_on_every_call_lists_a_page_of_them(store: Store) -> None:
    for n in range(30):
        await store.ingest(call(f"c{n:02d}", NOW + n, from_number=f"+1415555{n:04d}"))
    listed = await ids(store, CallFilters(phone=AGENT_LINE), limit=5)
    assert listed == ["c29", "c28", "c27", "c26", "c25"]


async def test_calls_holding_every_word_of_their_summary_or_transcript(store: Store) -> None:
    await store.ingest(call("dental", NOW + 1, summary="Caller moved a Cleaning to Friday."))
    await store.ingest(
        call(
            "invoice",
            NOW + 2,
            transcript=[
                {"role": "agent", "content": "Your invoice is due Friday."},
                {"speaker": "user", "text": "100% paid_already"},
                "a plain entry",
            ],
        )
    )
    await store.ingest(call("silent", NOW + 3))

    assert await ids(store, CallFilters(words=("friday",))) == ["invoice", "dental"]
    assert await ids(store, CallFilters(words=("friday", "cleaning"))) == ["dental"]
    assert await ids(store, CallFilters(words=("plain",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("agent",))) == [], "who speaks is not text"
    assert await ids(store, CallFilters(words=("100%",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("0%",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("%",))) == ["invoice"], "% is a character"
    assert await ids(store, CallFilters(words=("d_a",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("d_y",))) == [], "_ is a character"
    assert await ids(store, CallFilters(words=("friday",), status="FAILED")) == []


async def test_more_words_than_the_store_takes_are_refused(store: Store) -> None:
    words = tuple(f"w{n}" for n in range(MAX_SEARCH_WORDS + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_SEARCH_WORDS} words"):
        await store.list_events(CallFilters(words=words))
    assert await ids(store, CallFilters(words=words[:MAX_SEARCH_WORDS])) == []


def digest(event_id: str) -> NewDelivery:
    return NewDelivery(f"{event_id}:ops", "ops", "trunk", GroupJoin('{"t":1}', 600.0))


async def test_one_calls_deliveries_with_the_other_filters(store: Store) -> None:
    await store.ingest(
        call(
            "a",
            NOW + 1,
            deliveries=(
                NewDelivery("a:slack", "slack", "failed"),
                NewDelivery("a:crm", "crm", "all", muted_reason="silence:s1"),
                digest("a"),
            ),
        )
    )
    await store.ingest(
        call("b", NOW + 2, deliveries=(NewDelivery("b:slack", "slack", "failed"), digest("b")))
    )

    def named(views: list[DeliveryView]) -> set[str]:
        return {view.id for view in views}

    assert named(await store.list_deliveries(call="a")) == {"a:slack", "a:crm", "a:ops"}
    assert named(await store.list_deliveries(call="b")) == {"b:slack", "a:ops"}, "joined"
    assert named(await store.list_deliveries(call="b", sink="ops")) == {"a:ops"}
    assert named(await store.list_deliveries(call="a", status="muted")) == {"a:crm"}
    assert named(await store.list_deliveries(call="a", rule="failed")) == {"a:slack"}
    assert await store.list_deliveries(call="nope") == []
