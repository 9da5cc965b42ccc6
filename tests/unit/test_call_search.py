"""Finding calls as a person asks (router/core/call_search.py, `e164` in
router/core/phones.py and router/store/search.py): a number in any common spelling is
the same E.164 number the store keeps, other text is words of the summary and
transcript."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.call_search import (
    MAX_SEARCH_CHARACTERS,
    CallSearch,
    SearchInvalid,
    call_filters,
    parse_search,
)
from router.core.phones import REGION_VARIABLE, e164
from router.store import MAX_SEARCH_TERMS, MAX_SEARCH_WORDS, CallFilters, searchable_text
from router.store.search import fts5_query, search_terms, searchable_text_of_body, tsquery


@pytest.fixture(autouse=True)
def _default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGION_VARIABLE, raising=False)


@pytest.mark.parametrize(
    "written",
    ["+14155550142", "+1 415-555-0142", "(415) 555-0142", "415.555.0142", " 4155550142 "],
)
def test_a_number_written_any_common_way_is_its_e164(written: str) -> None:
    assert e164(written) == "+14155550142"
    assert parse_search(written) == CallSearch(phone="+14155550142")


@pytest.mark.parametrize("value", ["", "anonymous", "503", "sip:ava@example.com", None, True])
def test_what_is_no_possible_number_has_no_e164(value: object) -> None:
    assert e164(value) is None


def test_a_number_without_country_code_is_read_in_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert e164("020 7183 8750") is None  # not a US number
    monkeypatch.setenv(REGION_VARIABLE, "GB")
    assert e164("020 7183 8750") == "+442071838750"
    assert e164("+1 415 555 0142") == "+14155550142", "a country code wins"


def test_other_text_is_words_in_any_case_each_once() -> None:
    assert parse_search("Friday  INVOICE friday") == CallSearch(words=("friday", "invoice"))
    assert parse_search("503") == CallSearch(words=("503",)), "digits that are no number"
    assert parse_search("call 415 555 0142") == CallSearch(words=("call", "415", "555", "0142"))
    assert parse_search("  ") == CallSearch()


def test_a_search_too_long_or_of_too_many_words_is_refused() -> None:
    with pytest.raises(SearchInvalid, match=f"at most {MAX_SEARCH_WORDS} words, got 9"):
        parse_search(" ".join(f"w{n}" for n in range(9)))
    with pytest.raises(SearchInvalid, match=f"at most {MAX_SEARCH_CHARACTERS} characters"):
        parse_search("x" * (MAX_SEARCH_CHARACTERS + 1))


def test_call_filters_of_a_search_and_a_status() -> None:
    assert call_filters("(415) 555-0142", "failed") == CallFilters(
        status="FAILED", phone="+14155550142"
    )
    assert call_filters("Friday") == CallFilters(words=("friday",))
    assert call_filters() == CallFilters()


def test_the_searchable_text_is_the_summary_and_the_transcript_in_lower_case() -> None:
    call = {
        "summary": "Caller moved a Cleaning.",
        "transcript": [
            {"role": "agent", "content": "Hello ÉTÉ"},
            {"speaker": "user", "text": "Bye", "extra": {"note": ["Deep"]}},
            "Plain",
            7,
        ],
        "agentName": "Ava",
    }
    assert searchable_text(call) == "caller moved a cleaning.\nhello été\nbye\ndeep\nplain"
    assert searchable_text({"summary": None, "transcript": "Just text"}) == "just text"
    assert searchable_text([1, 2]) == ""


def test_a_stored_body_in_any_form_a_store_gives_it() -> None:
    body = '{"summary": "Hi", "transcript": ["There"]}'
    for stored in (body, body.encode(), memoryview(body.encode())):
        assert searchable_text_of_body(stored) == "hi\nthere"
    assert searchable_text_of_body(b"not json") == ""
    assert searchable_text_of_body(b"[" * 100_000 + b"]" * 100_000) == ""


def test_the_terms_of_a_search_are_its_runs_of_letters_and_digits() -> None:
    assert search_terms(["Auto-renewal,", "FRIDAY", "friday"]) == ("auto", "renewal", "friday")
    assert search_terms(["paid_already", "100%", "Été", "日本"]) == (
        "paid",
        "already",
        "100",
        "été",
        "日本",
    )
    assert search_terms(['"', "*", "NEAR(", ":*", "&|!"]) == ("near",)
    assert search_terms([]) == ()


def test_terms_are_quoted_in_each_databases_query_syntax() -> None:
    assert fts5_query(("refund", "friday")) == '"refund"* AND "friday"*'
    assert tsquery(("refund", "friday")) == "'refund':* & 'friday':*"
    # Never produced by `search_terms`, quoted all the same.
    # Shorter than three characters: the whole word only.
    assert fts5_query(("to", "my", "fri")) == '"to" AND "my" AND "fri"*'
    assert tsquery(("to", "fri")) == "'to' & 'fri':*"
    # PostgreSQL keeps the sign of `+14155550123` and of the `-0142` in `555-0142`.
    assert tsquery(("0142",)) == "('0142':* | '+0142':* | '-0142':*)"
    assert fts5_query(['a"b']) == '"a""b"*'
    assert tsquery(["a'b\\"]) == "'a''b\\\\':*"


def test_a_search_of_too_many_terms_is_refused() -> None:
    with pytest.raises(SearchInvalid, match=f"at most {MAX_SEARCH_TERMS} words and parts"):
        parse_search("-".join(f"w{n}" for n in range(MAX_SEARCH_TERMS + 1)))


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """An FTS5 table like the store's (SQLite in memory)."""
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE VIRTUAL TABLE calls USING fts5(search_text,"
        " tokenize='unicode61 remove_diacritics 0')"
    )
    connection.execute("INSERT INTO calls VALUES ('caller moved a cleaning to friday')")
    yield connection
    connection.close()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=MAX_SEARCH_CHARACTERS + 20))
def test_any_text_is_a_search_or_a_clear_refusal_never_an_error(
    fts5: sqlite3.Connection, text: str
) -> None:
    try:
        search = parse_search(text)
    except SearchInvalid as refused:
        assert str(refused).startswith("at most ")
        return
    terms = search_terms(search.words)
    if terms:  # the store runs no query for words of punctuation alone
        fts5.execute("SELECT rowid FROM calls WHERE calls MATCH ?", (fts5_query(terms),))
        written = tsquery(terms)
        assert all(f"'{term}'" in written for term in terms)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4))
def test_words_beginning_the_calls_words_find_it(
    fts5: sqlite3.Connection, words: list[str]
) -> None:
    terms = search_terms(words)
    if not terms:
        return
    found = fts5.execute(
        "SELECT rowid FROM calls WHERE calls MATCH ?", (fts5_query(terms),)
    ).fetchall()
    said = ["caller", "moved", "a", "cleaning", "to", "friday"]
    expected = all(
        any(word.startswith(term) if len(term) >= 3 else word == term for word in said)
        for term in terms
    )
    assert bool(found) == expected
