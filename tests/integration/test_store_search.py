"""Finding calls in the store: by phone number (`CallFilters.phone`, the calls from or
to it), by words of their summary and transcript (`CallFilters.words`), with the other
filters and the keyset; and one call's deliveries (`list_deliveries(call=…)`). On every
store kind in `conftest.STORE_KINDS`; times are fixed numbers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.store import (
    MAX_SEARCH_WORDS,
    AttemptRecord,
    CallFilters,
    DeliveryView,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    Store,
    searchable_text,
)
from router.store.queries import Query
from router.store.queue import single
from router.store.search import search_terms, tsquery
from tests.integration.conftest import _postgres_url

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
                {"speaker": "user", "text": "100% paid_already, auto-renewal"},
                "a plain entry",
            ],
        )
    )
    await store.ingest(call("silent", NOW + 3))

    assert await ids(store, CallFilters(words=("friday",))) == ["invoice", "dental"]
    assert await ids(store, CallFilters(words=("FRIDAY",))) == ["invoice", "dental"]
    assert await ids(store, CallFilters(words=("friday", "cleaning"))) == ["dental"]
    assert await ids(store, CallFilters(words=("plain",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("agent",))) == [], "who speaks is not text"
    assert await ids(store, CallFilters(words=("100%",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("paid_already",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("renewal",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("auto-renewal",))) == ["invoice"]
    assert await ids(store, CallFilters(words=("clean",))) == ["dental"], "a word's beginning"
    assert await ids(store, CallFilters(words=("leaning",))) == [], "not a word's middle"
    assert await ids(store, CallFilters(words=("%",))) == [], "punctuation alone finds none"
    assert await ids(store, CallFilters(words=("friday",), status="FAILED")) == []


async def test_words_of_other_fields_are_not_found(store: Store) -> None:
    body = {
        "id": "c1",
        "agentName": "Ava",
        "organizationId": "acme",
        "hangupCause": "USER_ENDED",
        "summary": "Booked a visit.",
        "transcript": [{"role": "agent", "content": "Hello"}],
    }
    record = IngestRecord(
        "c1",
        json.dumps(body).encode(),
        NOW,
        (),
        hangup_cause="USER_ENDED",
        search_text=searchable_text(body),
    )
    await store.ingest(record)
    assert await ids(store, CallFilters(words=("visit",))) == ["c1"]
    for other in ("ava", "acme", "user_ended", "c1", "agent"):
        assert await ids(store, CallFilters(words=(other,))) == [], other


# Full-text syntax of FTS5 and of PostgreSQL's tsquery, and plain punctuation: each is
# a plain character of the words searched, never an error.
SYNTAX = [
    '"',
    '""',
    '"friday',
    'friday"',
    "*",
    "friday*",
    "NEAR(",
    "NEAR(friday cleaning)",
    "AND",
    "OR",
    "NOT",
    "friday OR",
    "-friday",
    "+friday",
    "^friday",
    "search_text:friday",
    "{search_text}: friday",
    "'",
    "''",
    "\\",
    "&",
    "|",
    "!",
    "!friday",
    "(",
    ")",
    ":*",
    "friday:*",
    "friday:A",
    "<->",
    "friday <-> cleaning",
    "%",
    "_",
    "\x00",
    "é",
    "日本",
]


# Those whose words (letters and digits) all begin words of "Caller moved a Cleaning to
# Friday.": `friday:A` is "friday" and "a".
FINDING_THE_CALL = {
    '"friday',
    'friday"',
    "friday*",
    "-friday",
    "+friday",
    "^friday",
    "!friday",
    "friday:*",
    "friday:A",
    "friday <-> cleaning",
}


@pytest.mark.parametrize("text", SYNTAX)
async def test_full_text_syntax_typed_in_a_search_is_harmless(store: Store, text: str) -> None:
    await store.ingest(call("dental", NOW + 1, summary="Caller moved a Cleaning to Friday."))
    found = await ids(store, CallFilters(words=tuple(text.split())))
    assert found == (["dental"] if text in FINDING_THE_CALL else [])


async def test_purged_and_deleted_calls_are_not_found(store: Store) -> None:
    old = call(
        "old",
        NOW,
        summary="Refund for the broken kettle.",
        deliveries=(NewDelivery("old:slack", "slack", "all"),),
    )
    await store.ingest(old)
    await store.ingest(call("gone", NOW + 1, summary="Refund requested twice."))
    await store.ingest(call("kept", NOW + 2, summary="Refund refused."))
    [leased] = await store.claim("slack", 1, "w", 30.0, NOW + 3)
    await store.finish(leased.id, "w", AttemptRecord(1, NOW + 3, 0.1, "delivered", 200))
    assert await ids(store, CallFilters(words=("refund",))) == ["kept", "gone", "old"]

    assert await store.purge(NOW + 0.5) == 1  # retention
    # Any other deletion of a call (erasing a caller), as its own statement.
    await store.connector.write(  # type: ignore[attr-defined]
        lambda: single(Query("delete_call", "DELETE FROM events WHERE id = :id"), id="gone")
    )
    assert await ids(store, CallFilters(words=("refund",))) == ["kept"]
    assert await ids(store, CallFilters(words=("kettle",))) == []
    assert await ids(store, CallFilters(words=("twice",))) == []

    # A call's text rewritten in place (as erasing a number from it does) is found by its
    # new words alone.
    rewrite = Query("rewrite", "UPDATE events SET search_text = :text WHERE id = :id")
    await store.connector.write(  # type: ignore[attr-defined]
        lambda: single(rewrite, text="refund refused [erased]", id="kept")
    )
    assert await ids(store, CallFilters(words=("erased",))) == ["kept"]
    await store.ingest(call("new", NOW + 4, summary="Another refund."))
    assert await ids(store, CallFilters(words=("refund",))) == ["new", "kept"]
    if store.connector.dialect == "sqlite":  # type: ignore[attr-defined]
        check = Query(
            "fts_check",
            "INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)",
        )
        await store.connector.write(lambda: single(check))  # type: ignore[attr-defined]


async def test_a_very_long_transcript_is_stored_and_found_by_its_words(store: Store) -> None:
    # Over a megabyte of distinct words: more than a PostgreSQL tsvector may hold.
    words = [f"w{n:07d}" for n in range(150_000)]
    await store.ingest(call("long", NOW, summary="Opening words.", transcript=words))
    assert await ids(store, CallFilters(words=("opening",))) == ["long"]
    assert await ids(store, CallFilters(words=("w0000042",))) == ["long"]


async def test_status_and_hang_up_cause_match_in_any_case(store: Store) -> None:
    body = b'{"id": "odd"}'
    await store.ingest(
        IngestRecord("odd", body, NOW, (), status="failed", hangup_cause="Silence_Timeout")
    )
    await store.ingest(IngestRecord("ok", body, NOW + 1, (), status="COMPLETED"))
    assert await ids(store, CallFilters(status="FAILED")) == ["odd"]
    assert await ids(store, CallFilters(status="Failed")) == ["odd"]
    assert await ids(store, CallFilters(hangup_cause="silence_timeout")) == ["odd"]
    assert await ids(store, CallFilters(hangup_cause="SILENCE_TIMEOUT", status="failed")) == ["odd"]
    assert await store.call_column_values("status") == ["COMPLETED", "FAILED"]
    assert await store.call_column_values("hangup_cause") == ["SILENCE_TIMEOUT"]


async def test_the_choices_are_the_distinct_values_present(store: Store) -> None:
    assert await store.call_column_values("status") == []
    for n, (status, cause) in enumerate(
        [("COMPLETED", "USER_ENDED"), ("FAILED", ""), ("COMPLETED", "MAX_DURATION")] * 3
    ):
        await store.ingest(
            IngestRecord(f"c{n}", b"{}", NOW + n, (), status=status, hangup_cause=cause)
        )
    assert await store.call_column_values("status") == ["COMPLETED", "FAILED"]
    assert await store.call_column_values("hangup_cause") == ["MAX_DURATION", "USER_ENDED"]


async def test_each_calls_worst_delivery_state_in_one_query(store: Store) -> None:
    await store.ingest(
        call(
            "a",
            NOW + 1,
            deliveries=(
                NewDelivery("a:slack", "slack", "r"),
                NewDelivery("a:crm", "crm", "r", muted_reason="silence:s1"),
                digest("a"),
            ),
        )
    )
    await store.ingest(call("b", NOW + 2, deliveries=(digest("b"),)))  # joins a's digest
    await store.ingest(
        call("c", NOW + 3, deliveries=(NewDelivery("c:crm", "crm", "r", muted_reason="x"),))
    )
    await store.ingest(call("d", NOW + 4, deliveries=(NewDelivery("d:slack", "slack", "r"),)))
    await store.ingest(call("none", NOW + 5))
    for leased in await store.claim("slack", 10, "w", 30.0, NOW + 6):
        outcome = "dead" if leased.id == "a:slack" else "delivered"
        await store.finish(leased.id, "w", AttemptRecord(1, NOW + 6, 0.1, outcome, 500))

    states = await store.worst_delivery_states(["a", "b", "c", "d", "none", "unknown"])
    assert states == {"a": "dead", "b": "pending", "c": "muted", "d": "delivered"}
    assert await store.worst_delivery_states([]) == {}


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


@pytest.mark.postgres
@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=MAX_SEARCH_WORDS))
def test_postgresql_takes_the_query_of_any_words(words: list[str]) -> None:
    import asyncpg

    terms = search_terms(words)
    if not terms:
        return

    async def run() -> None:
        connection = await asyncpg.connect(_postgres_url())
        try:
            await connection.fetchval(
                "SELECT to_tsvector('simple', 'x') @@ to_tsquery('simple', $1)", tsquery(terms)
            )
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.mark.parametrize("common", [False, True])
async def test_common_and_rare_words_list_the_same_newest_first_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch, common: bool
) -> None:
    # Few matches are found through the index and sorted; many by walking the newest
    # calls: a page is the same either way.
    import router.store.queue

    if common:  # 8 matches count as many
        monkeypatch.setattr(router.store.queue, "FEW_MATCHES", 3)
        monkeypatch.setattr(router.store.queue, "COMMON_IN_SAMPLE", 1)
    for n in range(8):  # received out of insertion order
        at = NOW + (n * 5) % 8
        await store.ingest(call(f"r{n}", at, summary=f"Refund number {n}.", status="FAILED"))
    await store.ingest(call("other", NOW + 9, summary="Nothing to see."))
    newest = ["r3", "r6", "r1", "r4", "r7", "r2", "r5", "r0"]
    assert await ids(store, CallFilters(words=("refund",))) == newest
    page = await store.list_events(CallFilters(words=("refund",)), limit=3)
    assert [event.id for event in page] == newest[:3]
    cursor = (page[-1].received_at, page[-1].id)
    assert await ids(store, CallFilters(words=("refund",)), before=cursor) == newest[3:]
    assert await ids(store, CallFilters(words=("refund", "number"), status="failed")) == newest
    both = CallFilters(words=("refund",), phone=CALLER)
    assert await ids(store, both, limit=2) == newest[:2]
    assert await ids(store, CallFilters(words=("nothing",))) == ["other"]


async def test_a_vacuumed_sqlite_store_still_finds_calls_by_words(tmp_path) -> None:
    # The FTS5 index names calls by the events' rowid: VACUUM must keep them.
    import sqlite3

    from router.store.sqlite import SQLiteStore

    database = tmp_path / "router.db"
    store = SQLiteStore(database)
    await store.open()
    for n in range(30):
        await store.ingest(call(f"c{n:02d}", NOW + n, summary=f"Visit number{n}"))
    delete = Query("delete_call", "DELETE FROM events WHERE id = :id")
    for n in range(0, 30, 3):
        await store.connector.write(lambda n=n: single(delete, id=f"c{n:02d}"))
    await store.close()
    with sqlite3.connect(database) as connection:
        connection.execute("VACUUM")
    connection.close()

    store = SQLiteStore(database)
    await store.open()
    try:
        assert await ids(store, CallFilters(words=("number29",))) == ["c29"]
        assert await ids(store, CallFilters(words=("number27",))) == []
        assert len(await ids(store, CallFilters(words=("visit",)))) == 20
    finally:
        await store.close()
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)"
        )
    connection.close()


async def test_a_forgotten_callers_calls_and_number_leave_the_word_index(store: Store) -> None:
    from router.operators import ForgetRequest
    from router.operators.forget import erasure_of

    await store.ingest(call("mine", NOW + 1, summary="Kettle refund for the caller."))
    other = call(
        "other", NOW + 2, from_number="+442071838750", summary=f"Call back {CALLER} re kettle."
    )
    await store.ingest(other)
    assert await ids(store, CallFilters(words=("kettle",))) == ["other", "mine"]
    assert await ids(store, CallFilters(words=(CALLER,))) == ["other"]

    await store.forget(erasure_of(ForgetRequest(CALLER)))

    assert await ids(store, CallFilters(words=("kettle",))) == ["other"]
    assert await ids(store, CallFilters(words=("refund",))) == []
    assert await ids(store, CallFilters(words=(CALLER,))) == [], "the number left the index"
    assert await ids(store, CallFilters(words=("erased",))) == ["other"]


async def test_digits_in_the_text_are_found_signed_or_not(store: Store) -> None:
    said = "Call me on +1 415-555-0142, ref -77"
    await store.ingest(call("c", NOW, summary=said))
    for words in (("0142",), ("555", "415"), ("77",), ("-77",), ("+1",)):
        assert await ids(store, CallFilters(words=words)) == ["c"], words
