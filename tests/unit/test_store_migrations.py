"""Schema migrations as data: ordered versions, portable SQL, one type per dialect."""

from __future__ import annotations

import re

import pytest

from router.store.migrations import LATEST_VERSION, MIGRATIONS, pending, statements_for

SQLITE_ONLY = re.compile(r"AUTOINCREMENT|WITHOUT ROWID|STRICT|\bBLOB\b|\bINTEGER PRIMARY KEY\b")


def test_versions_count_up_from_one() -> None:
    # Strictly up from 1; a gap is allowed (versions are handed out to branches made apart).
    versions = [m.version for m in MIGRATIONS]
    assert versions[0] == 1
    assert versions == sorted(set(versions))
    assert versions[-1] == LATEST_VERSION


def test_pending_lists_what_a_database_lacks() -> None:
    assert pending(0) == list(MIGRATIONS)
    assert pending(LATEST_VERSION) == []


def test_a_database_newer_than_the_code_is_refused() -> None:
    with pytest.raises(RuntimeError, match="newer"):
        pending(LATEST_VERSION + 1)


@pytest.mark.parametrize(("dialect", "binary"), [("sqlite", "BLOB"), ("postgresql", "BYTEA")])
def test_the_payload_type_follows_the_dialect(dialect: str, binary: str) -> None:
    statements = statements_for(MIGRATIONS[0], dialect)  # type: ignore[arg-type]
    events = next(s for s in statements if s.startswith("CREATE TABLE events"))
    assert f"payload {binary} NOT NULL" in events
    assert all("{" not in s for s in statements)


def test_postgresql_statements_use_no_sqlite_only_syntax() -> None:
    for migration in MIGRATIONS:
        for statement in statements_for(migration, "postgresql"):
            assert not SQLITE_ONLY.search(statement), statement


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migration_2_keeps_one_open_digest_per_rule_sink_and_key(dialect: str) -> None:
    statements = statements_for(MIGRATIONS[1], dialect)  # type: ignore[arg-type]
    [unique] = [s for s in statements if s.startswith("CREATE UNIQUE INDEX")]
    assert "(rule, sink, open_group)" in unique
    assert unique.endswith("WHERE open_group IS NOT NULL")
    members = next(s for s in statements if s.startswith("CREATE TABLE digest_members"))
    assert "REFERENCES deliveries (id) ON DELETE CASCADE" in members
    assert "REFERENCES events (id) ON DELETE CASCADE" in members
    added = [s for s in statements if s.startswith("ALTER TABLE deliveries ADD COLUMN")]
    columns = {s.split()[5] for s in added}
    assert columns == {
        "kind",
        "group_key",
        "open_group",
        "window_start",
        "closes_at",
        "member_count",
    }
