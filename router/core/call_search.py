"""A search for stored calls as a person types it (`calls --q`, `GET /admin/calls?q=`):
a phone number in any common format (the calls from or to it), or words that the call's
summary or transcript must all hold, in any case (each word also finds the longer words
it begins: `refund` finds "refunds"). Pure: it makes the store's `CallFilters` and never
reads the store, which matches the words through its full-text index
(`router.store.search`). Any text gives a search or a `SearchInvalid` naming the
problem: punctuation and full-text syntax (`"`, `*`, `NEAR(`) are plain characters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.core.phones import e164
from router.store import MAX_SEARCH_TERMS, MAX_SEARCH_WORDS, CallFilters, search_terms

MAX_SEARCH_CHARACTERS = 200
# What a phone number is written with; text with anything else is words.
_PHONE_WRITING = re.compile(r"[\d\s+().\-/]+")


class SearchInvalid(ValueError):
    """A search the store cannot run; the message names the problem."""


@dataclass(frozen=True)
class CallSearch:
    phone: str | None = None  # E.164
    words: tuple[str, ...] = ()  # case-folded, each once


def parse_search(text: str) -> CallSearch:
    """`+1 (415) 555-0142` -> the calls of +14155550142; `Friday invoice` -> the calls
    whose summary or transcript holds both words. Digits that are no possible number
    (`503`) are a word."""
    text = text.strip()
    if len(text) > MAX_SEARCH_CHARACTERS:
        raise SearchInvalid(f"at most {MAX_SEARCH_CHARACTERS} characters, got {len(text)}")
    if _PHONE_WRITING.fullmatch(text):
        number = e164(text)
        if number is not None:
            return CallSearch(phone=number)
    words = tuple(dict.fromkeys(text.casefold().split()))
    if len(words) > MAX_SEARCH_WORDS:
        raise SearchInvalid(f"at most {MAX_SEARCH_WORDS} words, got {len(words)}")
    terms = search_terms(words)
    if len(terms) > MAX_SEARCH_TERMS:
        raise SearchInvalid(
            f"at most {MAX_SEARCH_TERMS} words and parts of words, got {len(terms)}"
        )
    return CallSearch(words=words)


def call_filters(query: str = "", status: str = "") -> CallFilters:
    """The filters of a search and a call status (`failed` is `FAILED`); empty: none."""
    search = parse_search(query)
    return CallFilters(
        status=status.strip().upper() or None, phone=search.phone, words=search.words
    )
