"""The named queries: one text, translated mechanically per driver; rows read by name."""

from __future__ import annotations

from dataclasses import dataclass

from router.store import queries as q
from router.store.connector import Rows
from router.store.queries import Query


def all_queries() -> list[Query]:
    found = [value for value in vars(q).values() if isinstance(value, Query)]
    return found + list(q.LIST_DELIVERIES.values())


def test_each_statement_has_its_own_name() -> None:
    names = [query.name for query in all_queries()]
    assert len(names) == len(set(names))


def test_postgresql_numbers_parameters_by_first_use_and_reuses_a_number() -> None:
    query = Query("t", "UPDATE x SET a = :now WHERE id = :id AND b < :now")
    compiled = query.compiled("postgresql")
    assert compiled.text == "UPDATE x SET a = $1 WHERE id = $2 AND b < $1"
    assert compiled.positional({"id": "d1", "now": 5.0, "unused": 1}) == (5.0, "d1")


def test_sqlite_keeps_named_parameters_and_each_dialect_fills_its_fragments() -> None:
    assert q.JOIN_DIGEST.compiled("sqlite").text.count(":now") >= 2
    assert "MIN(next_attempt_at" in q.JOIN_DIGEST.compiled("sqlite").text
    assert "LEAST(next_attempt_at" in q.JOIN_DIGEST.compiled("postgresql").text
    assert "SKIP LOCKED" in q.CLAIM.compiled("postgresql").text
    assert "SKIP LOCKED" not in q.CLAIM.compiled("sqlite").text


def test_every_statement_compiles_for_both_dialects_without_leftovers() -> None:
    for query in all_queries():
        sqlite, postgresql = query.compiled("sqlite"), query.compiled("postgresql")
        assert "{" not in sqlite.text and "{" not in postgresql.text, query.name
        assert ":" not in postgresql.text.replace("::", ""), query.name
        assert sqlite.parameter_names == postgresql.parameter_names


@dataclass(frozen=True)
class Pair:
    first: str
    second: int
    third: str = "default"


def test_rows_become_dataclasses_by_column_name_in_any_order() -> None:
    rows = Rows(("second", "first"), [(1, "a"), (2, "b")])
    assert rows.to(Pair) == [Pair("a", 1), Pair("b", 2)]
    assert rows.column("first") == ["a", "b"]
    assert rows.dicts()[0] == {"second": 1, "first": "a"}
    assert Rows((), []).to(Pair) == [] and Rows((), []).column("first") == []
