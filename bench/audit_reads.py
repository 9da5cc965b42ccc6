"""How fast the audit reads back (`GET /admin/audit`, `/ui/audit`, `revring-router audit`)
with many records in the store, and how long migration 10 takes to move a schema 7
store's Slack clicks into the audit.

Fills a store (SQLite by default; `--store postgresql://…` for PostgreSQL, in a schema
of its own, dropped afterwards) with `--records` audit records spread over 30 days
(20 actors, 15 actions), written straight through `executemany`, then times each read
the console and the API make: the median and max of `--repeat` calls after one warm-up.
Then (SQLite) makes a schema 7 database holding `--clicks` Slack clicks and times its
upgrade. Run from the repository root:

    python bench/audit_reads.py [--records 200000] [--clicks 20000] [--store URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.operators import ACTIONS as AUDIT_ACTIONS  # noqa: E402
from router.store import AuditFilters, open_store  # noqa: E402
from router.store.migrations import MIGRATIONS, SCHEMA_VERSION_DDL, statements_for  # noqa: E402
from router.store.sqlite import SQLiteStore  # noqa: E402

ACTORS = ["token", *(f"user-{n}" for n in range(12)), *(f"slack:U{n:04d}" for n in range(7))]
ACTIONS = list(AUDIT_ACTIONS)  # every action the router records


def rows(count: int, now: float) -> list[tuple[object, ...]]:
    pick = random.Random(7)
    return [
        (
            uuid.uuid4().hex[:16],
            now - pick.random() * 30 * 86400,
            pick.choice(ACTORS),
            pick.choice(ACTIONS),
            f"delivery:{uuid.uuid4()}",
            '{"status": "dead", "sink": "crm", "count": 3}',
        )
        for _ in range(count)
    ]


async def fill(url: str, count: int, now: float) -> None:
    store = open_store(url)
    await store.open()
    await store.close()
    found = rows(count, now)
    insert = "INSERT INTO audit (id, at, actor, action, target, details) VALUES "
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executemany(insert + "(?, ?, ?, ?, ?, ?)", found)
        db.close()
        return
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.executemany(insert + "($1, $2, $3, $4, $5, $6)", found)
        await connection.execute("ANALYZE audit")
    finally:
        await connection.close()


async def timed(name: str, read: Callable[[], Awaitable[object]], repeat: int) -> None:
    """The median and max of `repeat` reads after one warm-up, in milliseconds."""
    times = []
    for n in range(repeat + 1):
        started = time.perf_counter()
        await read()
        if n:
            times.append((time.perf_counter() - started) * 1000)
    median, most = statistics.median(times), max(times)
    print(f"  {name:18} median {median:6.2f} ms  max {most:6.2f} ms")


async def measure(url: str, repeat: int, now: float) -> None:
    store = open_store(url)
    await store.open()
    reads = {
        "newest 100": (AuditFilters(), 100),
        "since 2h": (AuditFilters(since=now - 7200), 100),
        "one actor": (AuditFilters(actor="user-3"), 100),
        "one action": (AuditFilters(action="sink.pause"), 100),
        "actor and action": (AuditFilters(actor="user-3", action="signin.failed"), 100),
        "page 2 (keyset)": (AuditFilters(before=(now - 86400, "f")), 51),
    }
    try:
        for name, (filters, limit) in reads.items():
            await timed(name, lambda f=filters, n=limit: store.list_audit(f, n), repeat)
        await timed("filter choices", store.audit_choices, repeat)
    finally:
        await store.close()


async def upgrade(folder: Path, clicks: int) -> None:
    database = folder / "v7.db"
    with sqlite3.connect(database) as old:
        old.execute(SCHEMA_VERSION_DDL)
        for migration in MIGRATIONS:
            if migration.version > 7:
                break
            for statement in statements_for(migration, "sqlite"):
                old.execute(statement)
            old.execute("INSERT INTO schema_version VALUES (?, 'old', 0)", (migration.version,))
        old.executemany(
            "INSERT INTO slack_actions_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"{n:016x}",
                    1.7e9 + n,
                    f"U{n % 50}",
                    "alice",
                    "#ops (C1)",
                    "acknowledge",
                    f"call:{n}",
                    "acknowledged",
                    "",
                )
                for n in range(clicks)
            ],
        )
    old.close()
    store = SQLiteStore(database)
    started = time.perf_counter()
    await store.open()
    took = time.perf_counter() - started
    await store.close()
    print(f"upgrade of a schema 7 store with {clicks} Slack clicks: {took:.2f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--clicks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--store", help="postgresql://… (default: a temporary SQLite file)")
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        if args.store:
            import asyncpg

            schema = f"audit_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(args.store)
            await admin.execute(f"CREATE SCHEMA {schema}")
            separator = "&" if "?" in args.store else "?"
            url = f"{args.store}{separator}options={quote(f'-csearch_path={schema}')}"
        else:
            url = f"sqlite:///{folder / 'audit.db'}"
        try:
            started = time.perf_counter()
            await fill(url, args.records, now)
            print(
                f"{url.split(':')[0]}: {args.records} audit records written in"
                f" {time.perf_counter() - started:.1f} s"
            )
            await measure(url, args.repeat, now)
        finally:
            if args.store:
                await admin.execute(f"DROP SCHEMA {schema} CASCADE")
                await admin.close()
        if not args.store:
            await upgrade(folder, args.clicks)


if __name__ == "__main__":
    asyncio.run(main())
