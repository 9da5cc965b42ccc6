"""An attempt's request and response as kept (`sinks.exchange`): bodies cut at 4 KiB on a
character boundary with the cut marked, secrets and phone numbers masked before the cut
so no part of one is left, credential headers masked, header counts and sizes capped;
and the four text columns they are stored in (`router.store.exchanges`)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from router.store import BODY_LIMIT, MAX_HEADER_VALUE, MAX_HEADERS, Exchange
from router.store.exchanges import exchange_columns, exchange_of
from router.web.ui.exchange_text import request_text, response_text, status_line
from sinks.exchange import (
    kept_body,
    masked_headers,
    masked_url,
    request_seen,
    response_seen,
)

SECRET = "sk_live_9f8e7d6c5b4a39281706"
# Text with no digit (no phone number) and no character of a secret: multi-byte too.
FILLER = st.text(alphabet="aé€𝄞 \nbü", max_size=6000)


@st.composite
def around_the_cut(draw: st.DrawFn, alphabet: str = "aé€𝄞 ") -> str:
    """About 4 KiB of multi-byte text: a short pattern repeated to a drawn length, so that
    what straddles the cut varies without drawing thousands of characters."""
    pattern = draw(st.text(alphabet=alphabet, min_size=1, max_size=12))
    length = draw(st.integers(1000, 4200))
    return (pattern * (4200 // len(pattern) + 1))[:length]


@settings(max_examples=200, deadline=None)
@given(FILLER)
def test_a_body_is_cut_at_4_kib_never_inside_a_character(text: str) -> None:
    kept, truncated = kept_body(text.encode())
    assert len(kept.encode()) <= BODY_LIMIT
    assert text.startswith(kept)  # a prefix, each character whole
    assert truncated == (kept != text)
    if truncated:  # as much as fits: the next character would not
        assert len(text[: len(kept) + 1].encode()) > BODY_LIMIT


def cut_at(text: str) -> int:
    """The index of the first character of `text` past the first 4 KiB of its UTF-8."""
    size = 0
    for index, character in enumerate(text):
        size += len(character.encode())
        if size > BODY_LIMIT:
            return index
    return len(text)


@settings(max_examples=200, deadline=None)
@given(around_the_cut(), st.integers(0, len(SECRET) + 2))
def test_a_secret_never_lands_in_the_body_even_where_the_cut_falls(filler: str, back: int) -> None:
    where = max(cut_at(filler) - back, 0)  # the secret straddles the cut (or ends at it)
    body = filler[:where] + SECRET + filler[where:]
    kept, _ = kept_body(body.encode(), [SECRET])
    for start in range(len(SECRET) - 5):
        assert SECRET[start : start + 6] not in kept


@settings(max_examples=150, deadline=None)
@given(
    around_the_cut("aé€ "),
    st.integers(0, 20),
    st.sampled_from(["+14155550142", "+1 (415) 555-0142", "(415) 555-0142"]),
)
def test_a_phone_number_never_lands_in_the_body_whole_or_in_part(
    filler: str, back: int, number: str
) -> None:
    where = max(cut_at(filler) - back, 0)
    body = filler[:where] + " " + number + " " + filler[where:]
    kept, _ = kept_body(body.encode())
    digits = re.sub(r"\D", "", kept)
    assert "5550142" not in digits and "555014" not in digits
    assert not re.search(r"\d{7}", kept)


def test_a_short_body_is_kept_whole_and_a_nul_is_not_stored() -> None:
    assert kept_body(b'{"ok":true}') == ('{"ok":true}', False)
    kept, truncated = kept_body(b"a\x00b\xff")
    assert (kept, truncated) == ("a\ufffdb\ufffd", False)


def test_a_large_body_costs_what_its_start_does() -> None:
    # A 2 MiB body with a number near its end: only the start is read, cut, marked.
    body = b"x" * (2 * 1024 * 1024) + b" +14155550142"
    kept, truncated = kept_body(body)
    assert truncated and kept == "x" * BODY_LIMIT
    sent = request_seen("POST", "https://crm.example/hook", (), body)
    assert (sent.size, sent.truncated) == (len(body), True)


def test_credential_headers_are_masked_and_others_kept() -> None:
    headers = [
        ("Authorization", "Bearer tok-123456789"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("Cookie", "session=abc123"),
        ("Set-Cookie", "sid=xyz; HttpOnly"),
        ("X-Api-Key", "k-0123456789"),
        ("webhook-signature", "v1,abcdef=="),
        ("X-Slack-Signature", "v0=deadbeef"),
        ("X-Auth-Token", "t0k3n"),
        ("X-Custom", f"prefix {SECRET}"),
        ("X-Configured", "plain-looking"),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "call-1:crm"),
        ("X-Caller", "+14155550142"),
    ]
    kept, omitted = masked_headers(headers, [SECRET], secret_names={"x-configured"})
    assert omitted == 0
    assert dict(kept) == {
        "Authorization": "Bearer ***",
        "Proxy-Authorization": "Basic ***",
        "Cookie": "***",
        "Set-Cookie": "***",
        "X-Api-Key": "***",
        "webhook-signature": "***",
        "X-Slack-Signature": "***",
        "X-Auth-Token": "***",
        "X-Custom": "prefix ***",  # a scheme-like word before it stays
        "X-Configured": "***",
        "Content-Type": "application/json",
        "Idempotency-Key": "call-1:crm",
        "X-Caller": "+1415•••0142",
    }


def test_headers_are_capped_in_number_and_size() -> None:
    many = [(f"X-H{n}", "v" * 5000) for n in range(MAX_HEADERS + 7)]
    kept, omitted = masked_headers(many)
    assert (len(kept), omitted) == (MAX_HEADERS, 7)
    assert all(len(value) == MAX_HEADER_VALUE and value.endswith("…") for _, value in kept)


def test_a_url_keeps_its_host_and_words_and_loses_its_secret_parts() -> None:
    assert (
        masked_url("https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx")
        == "https://hooks.slack.com/services/***/***/***"
    )
    assert (
        masked_url("https://user:pw@crm.example:8443/api/calls?api_key=abc&page=2#frag")
        == "https://***@crm.example:8443/api/calls?api_key=***&page=2"
    )
    assert masked_url("https://crm.example/calls/+14155550142") == "https://crm.example/calls/***"
    assert masked_url("https://hooks.example/v2/enqueue/SECRETPATH/ab12") == (
        "https://hooks.example/v2/enqueue/***/***"
    )
    # The sink's secrets, except the URL as a whole (what is left of it is shown).
    url = "https://crm.example/in/tenant-x"
    assert masked_url(url, [url, "tenant-x"]) == "https://crm.example/in/***"


def test_a_request_and_its_response_as_kept() -> None:
    sent = request_seen(
        "POST",
        f"https://crm.example/hook?token={SECRET}",
        [("Authorization", f"Bearer {SECRET}")],
        f'{{"from": "+14155550142", "key": "{SECRET}"}}'.encode(),
        secrets=[SECRET],
    )
    got = response_seen(
        500, [("Content-Type", "text/plain")], f"echo {SECRET} for +14155550142", secrets=[SECRET]
    )
    stored = str(exchange_columns(Exchange(sent, got)))
    assert SECRET not in stored and "5550142" not in stored
    assert sent.target == "https://crm.example/hook?token=***"
    assert sent.body == '{"from": "+1415•••0142", "key": "***"}'
    assert got.body == "echo *** for +1415•••0142"
    assert not got.truncated and got.size == len(f"echo {SECRET} for +14155550142")


def test_a_response_read_only_in_part_says_so() -> None:
    got = response_seen(200, (), b"y" * (BODY_LIMIT + 1), complete=False)
    assert got.truncated and got.size is None and len(got.body) == BODY_LIMIT


def test_the_columns_give_back_what_was_stored_and_null_means_not_recorded() -> None:
    sent = request_seen("POST", "https://crm.example/h", [("A", "b")], b"body")
    for exchange in (
        Exchange(sent),
        Exchange(sent, response_seen(429, [("Retry-After", "3")], "")),
    ):
        assert exchange_of(exchange_columns(exchange)) == exchange
    assert exchange_columns(None) == dict.fromkeys(
        ("request_head", "request_body", "response_head", "response_body")
    )
    assert exchange_of(exchange_columns(None)) is None
    assert exchange_of({"request_head": "not json"}) is None


def test_the_page_shows_an_exchange_as_http_messages() -> None:
    sent = request_seen(
        "POST", "https://crm.example/h", [("Content-Type", "application/json")], b'{"a":1}'
    )
    assert request_text(sent) == (
        'POST https://crm.example/h\nContent-Type: application/json\n\n{\n  "a": 1\n}'
    )
    got = response_seen(500, [("Content-Type", "text/plain")], b"z" * 5000, complete=True)
    assert status_line(got, "POST") == "HTTP 500 Internal Server Error"
    assert response_text(got).endswith("… cut: the first 4 KiB of 5,000 bytes are kept")
    assert status_line(response_seen(250, (), "250 OK"), "SMTP") == "SMTP 250"
    assert status_line(None, "POST") == "no answer"


def test_without_its_body_a_request_keeps_its_heads_and_size() -> None:
    """A success's request (`keep_body=False`): nothing of the body, masked or not."""
    body = b'{"fromNumber": "+14155550142", "token": "s3cr3t-token-value"}'
    sent = request_seen(
        "POST", "https://crm.example/hook", [("Authorization", "Bearer x")], body,
        secrets=["s3cr3t-token-value"], keep_body=False,
    )  # fmt: skip
    assert (sent.body, sent.size, sent.truncated) == ("", len(body), True)
    assert sent.headers == (("Authorization", "Bearer ***"),)
    empty = request_seen("POST", "https://crm.example/hook", [], b"", keep_body=False)
    assert (empty.size, empty.truncated) == (0, False)


def test_without_its_body_a_response_keeps_its_status_and_size() -> None:
    got = response_seen(200, [("Content-Type", "text/plain")], b"x" * 9000, keep_body=False)
    assert (got.status, got.body, got.size, got.truncated) == (200, "", 9000, True)


def test_a_body_not_kept_says_so_with_its_size() -> None:
    body = b'{"fromNumber": "+14155550142"}'
    sent = request_seen("POST", "https://crm.example/hook", [], body, keep_body=False)
    assert request_text(sent).endswith(f"(body of {len(body):,} bytes not kept)")
    unread = response_seen(200, [], b"", complete=False, keep_body=False)
    assert response_text(unread).endswith("(body not kept)")


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=4),
    st.integers(min_value=100, max_value=599),
)
def test_the_heads_are_stored_as_the_standard_library_writes_them(
    headers: list[tuple[str, str]], status: int
) -> None:
    """orjson writes the heads (faster); text it refuses, such as a lone surrogate from a
    header byte that was not UTF-8, goes through the standard library: same JSON, and
    every head reads back."""
    import json

    headers.append(("X-Raw", "caf\udce9"))  # b"caf\xe9" decoded with surrogateescape
    from router.store.records import ReceivedResponse, SentRequest

    sent = SentRequest("POST", "https://crm.example/h", tuple(headers), "", 3, True)
    plain = SentRequest("POST", "https://crm.example/h", tuple(headers[:-1]), "", 3, True)
    got = ReceivedResponse(status, tuple(headers[:-1]), "ok", 2)
    for exchange in (Exchange(sent, got), Exchange(plain, got)):
        columns = exchange_columns(exchange)
        for column in ("request_head", "response_head"):
            text = columns[column]
            assert text is not None
            value = json.loads(text)
            assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        assert exchange_of(columns) == exchange
