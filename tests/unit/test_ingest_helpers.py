"""The pure helpers of the webhook handler (router/web/webhook.py): API keys and JSON decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.events import decode_json
from router.web.app import ServiceSettings
from router.web.webhook import ApiKeys


def test_several_keys_are_accepted() -> None:
    keys = ApiKeys.from_env("old-key, new-key")
    assert keys
    assert keys.accepts("old-key")
    assert keys.accepts("new-key")


@pytest.mark.parametrize(
    "presented", [None, "", "old", "old-key ", "OLD-KEY", "old-key,new-key", "ключ"]
)
def test_a_wrong_or_missing_key_is_rejected(presented: str | None) -> None:
    assert not ApiKeys.from_env("old-key,new-key").accepts(presented)


@given(st.binary(max_size=24))
def test_any_header_bytes_are_compared_as_bytes(raw: bytes) -> None:
    """aiohttp hands header bytes that are not UTF-8 over as surrogate escapes."""
    presented = raw.decode("utf-8", "surrogateescape")
    assert ApiKeys.from_env("old-key").accepts(presented) == (raw == b"old-key")


@pytest.mark.parametrize("value", [None, "", " ", ",", " , ,"])
def test_an_empty_setting_means_no_keys(value: str | None) -> None:
    keys = ApiKeys.from_env(value)
    assert not keys
    assert not keys.accepts("")
    assert not keys.accepts(None)


def test_keys_from_a_list() -> None:
    keys = ApiKeys(["k1", ""])
    assert keys.accepts("k1")
    assert not keys.accepts("")


def test_the_keys_do_not_show_in_repr() -> None:
    keys = ApiKeys.from_env("s3cret-one,s3cret-two")
    assert repr(keys) == "ApiKeys(2 keys)"
    assert repr(ApiKeys.from_env("s3cret")) == "ApiKeys(1 key)"
    settings = ServiceSettings(api_keys=keys, admin_token="adm1n-t0ken")
    shown = repr(settings)
    assert "ApiKeys(2 keys)" in shown
    assert "s3cret" not in shown
    assert "adm1n-t0ken" not in shown


def test_decode_json_reads_ordinary_json() -> None:
    assert decode_json(b'{"id": "c1", "n": 3, "x": 1.5, "ok": true}') == {
        "id": "c1",
        "n": 3,
        "x": 1.5,
        "ok": True,
    }


@pytest.mark.parametrize(
    "number",
    [
        2**64,
        2**64 - 1,
        -(2**63) - 1,
        123456789012345678901234567890,
        -987654321098765432109876543210,
    ],
)
def test_integers_beyond_64_bits_are_kept_exact(number: int) -> None:
    value = decode_json(b'{"variables": {"account": %d}, "tag": "x"}' % number)
    assert value == {"variables": {"account": number}, "tag": "x"}
    assert isinstance(value["variables"]["account"], int)


def test_long_digit_runs_inside_strings_change_nothing() -> None:
    body = b'{"ref": "12345678901234567890123", "n": 1.25}'
    assert decode_json(body) == {"ref": "12345678901234567890123", "n": 1.25}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'a': 1}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e400}',
        b'{"a": 123456789012345678901234567890, "b": NaN}',
        b'"\\ud800"',
        b'{"a": 1} trailing',
        b"\xff\xfe",
    ],
)
def test_what_is_not_strict_json_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(body)
