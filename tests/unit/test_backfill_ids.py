"""Reading call ids for a backfill, and picking the calls out of a batch-get answer."""

from __future__ import annotations

import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.revring.api import RevRingApi, RevRingApiError, batches, calls_of
from router.revring.backfill import IdsError, admin_ids, read_ids, unique_ids


def test_one_id_a_line_with_blanks_comments_and_repeats():
    text = "# exported after the outage\nb\n\n  a  \nb\n# c\nc\n"
    assert read_ids(text) == ["b", "a", "c"]


def test_a_csv_export_uses_its_id_column():
    text = "createdAt,id,status\n2026-11-20,call-2,FAILED\n2026-11-20,call-1,COMPLETED\n"
    assert read_ids(text) == ["call-2", "call-1"]


def test_a_csv_with_quoted_cells_and_an_id_header_alone():
    assert read_ids('"summary, long",ID\n"a, b",x1\n') == ["x1"]
    assert read_ids("id\nx1\nx2\n") == ["x1", "x2"]


def test_a_csv_row_without_the_id_column_is_named():
    with pytest.raises(IdsError, match="row 3"):
        read_ids("status,id\nFAILED,x1\nFAILED\n")


def test_an_empty_file_has_no_ids():
    assert read_ids("\n# nothing\n") == []


@given(st.lists(st.text(alphabet="abc-0123456789", min_size=1, max_size=8)))
def test_unique_ids_keeps_first_places(ids):
    result = unique_ids(ids)
    assert len(result) == len(set(result))
    assert result == [i for n, i in enumerate(ids) if i not in ids[:n]]


def test_batches_of_100():
    ids = [str(n) for n in range(250)]
    assert [len(b) for b in batches(ids)] == [100, 100, 50]
    assert [i for batch in batches(ids) for i in batch] == ids


def test_unknown_ids_are_those_asked_for_but_absent():
    answer = {"data": [{"id": "b", "status": "FAILED"}, {"id": "zz"}]}
    fetched = calls_of(answer, ["a", "b", "c"])
    assert list(fetched.calls) == ["b"]
    assert orjson.loads(fetched.calls["b"]) == {"id": "b", "status": "FAILED"}
    assert fetched.unknown == ["a", "c"]


@pytest.mark.parametrize("answer", [[], {"data": None}, {"calls": []}, "x"])
def test_an_answer_without_data_is_an_error(answer):
    with pytest.raises(RevRingApiError, match="data"):
        calls_of(answer, ["a"])


def test_the_key_is_not_in_the_repr():
    api = RevRingApi("very-secret-key", "http://127.0.0.1:1/v1")
    assert "very-secret-key" not in repr(api)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "JSON object"),
        ({"ids": "a"}, "JSON object"),
        ({"ids": []}, "empty"),
        ({"ids": ["a", 3]}, "strings"),
        ({"ids": [str(n) for n in range(10_001)]}, "at most"),
    ],
)
def test_admin_bodies_are_checked(body, problem):
    with pytest.raises(ValueError, match=problem):
        admin_ids(body)


def test_verify_retry_delay_doubles_up_to_the_cap():
    from router.revring.verify import VerifySettings, retry_delay

    settings = VerifySettings(initial_backoff=2.0, max_backoff=60.0)
    assert [retry_delay(settings, n) for n in (1, 2, 3, 5, 6, 100)] == [2, 4, 8, 32, 60, 60]


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_shows_on_a_terminal_only():
    from router.revring.backfill import Progress

    terminal, pipe = _Terminal(True), _Terminal(False)
    for stream in (terminal, pipe):
        progress = Progress(250, stream)
        progress.update(100)
        progress.update(250)
        progress.finish()
    assert terminal.getvalue() == "\rbackfill: 100/250 ids\rbackfill: 250/250 ids\n"
    assert pipe.getvalue() == ""
