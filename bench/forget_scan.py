"""What forgetting a caller costs on a big store (DESIGN.md section 15): the scan of
every stored body for other calls that mention the number (`CALLS_MENTIONING`, a LIKE
on each body with the separators taken out), with 100,000 calls on SQLite and, given
ROUTER_TEST_POSTGRES_URL, on PostgreSQL. Prints the time of a dry run (best of three),
and of the erasure's two parts: the scan (a read) and its transaction (what holds the
one writer of a SQLite store).

    python bench/forget_scan.py [--calls 100000]

Each call is the packaged sample `completed-inbound` (about 1.5 KB) with its own id and
caller; one call in a thousand mentions the forgotten number in its summary, and the
caller has 5 calls of their own, each with two deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from router.core.samples import sample_call
from router.operators import ForgetRequest
from router.operators.forget import erasure_of
from router.store import open_store, searchable_text
from router.store.erasure import RECHECK_SECONDS, Scan, forget, mentioning

CALLER = "+14155550142"


def rows(calls: int, seed: int = 7) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    base = sample_call("completed-inbound")
    events, deliveries = [], []
    now = time.time() - calls
    for number in range(calls):
        body = dict(base)
        body["id"] = f"call-{number:07d}"
        mine = number % (calls // 5) == 0
        caller = CALLER if mine else f"+1415{rng.randrange(10**7):07d}"
        body["fromNumber"] = caller
        body["variables"] = dict(base["variables"], user_number=caller)
        if number % 1000 == 7:
            body["summary"] = "Asked us to call her husband on (415) 555-0142 instead."
        else:
            body["summary"] = f"Caller {number} rescheduled; ticket {rng.randrange(10**9)}."
        payload = json.dumps(body).encode()
        events.append(
            (body["id"], payload, now + number, "COMPLETED", "INBOUND", caller,
             "+14155550199", searchable_text(body))
        )  # fmt: skip
        for sink in ("crm", "ops-slack"):
            deliveries.append(
                (f"{body['id']}:{sink}", body["id"], sink, "all", "delivered", now + number)
            )
    return events, deliveries


EVENT_INSERT = (
    "INSERT INTO events (id, payload, received_at, status, direction, from_number,"
    " to_number, search_text) VALUES ({})"
)
DELIVERY_INSERT = (
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at, created_at,"
    " updated_at) VALUES ({0}, {5}, {5}, {5})"
)


async def measure(url: str, fill) -> dict[str, float]:  # type: ignore[no-untyped-def]
    store = open_store(url)
    await store.open()
    await store.close()
    await fill()
    store = open_store(url)
    await store.open()
    try:
        dry = []
        for _ in range(3):
            started = time.perf_counter()
            counts = await store.forget(erasure_of(ForgetRequest(CALLER, dry_run=True)))
            dry.append(time.perf_counter() - started)
        # The erasure as `QueueStore.forget` runs it, each part timed: the scan (a read)
        # and the transaction (the one writer of a SQLite store is busy this long).
        erasure = erasure_of(ForgetRequest(CALLER))
        started = time.perf_counter()
        found = await store.connector.read(lambda: mentioning(erasure))
        scanned = time.perf_counter()
        scan = Scan(found, time.time() - RECHECK_SECONDS)
        done = await store.connector.write(lambda: forget(erasure, scan))
        written = time.perf_counter()
        assert done == counts, (done, counts)
        return {
            "dry_run_s": min(dry),
            "scan_s": scanned - started,
            "transaction_s": written - scanned,
            **vars(done),
        }
    finally:
        await store.close()


async def sqlite_figures(calls: int) -> dict[str, float]:
    events, deliveries = rows(calls)
    folder = Path(tempfile.mkdtemp(prefix="forget-bench-"))
    database = folder / "router.db"

    async def fill() -> None:
        connection = sqlite3.connect(database)
        connection.executemany(EVENT_INSERT.format(", ".join("?" * 8)), events)
        connection.executemany(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*d, d[5], d[5]) for d in deliveries],
        )
        connection.commit()
        connection.close()

    figures = await measure(f"sqlite:///{database}", fill)
    figures["database_mb"] = database.stat().st_size / 1e6
    return figures


async def postgres_figures(calls: int, base_url: str) -> dict[str, float]:
    import asyncpg

    events, deliveries = rows(calls)
    schema = f"forget_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"

    async def fill() -> None:
        connection = await asyncpg.connect(url)
        await connection.copy_records_to_table(
            "events",
            records=events,
            columns=["id", "payload", "received_at", "status", "direction", "from_number",
                     "to_number", "search_text"],
        )  # fmt: skip
        await connection.copy_records_to_table(
            "deliveries",
            records=[(*d, d[5], d[5]) for d in deliveries],
            columns=["id", "event_id", "sink", "rule", "status", "retry_started_at",
                     "created_at", "updated_at"],
        )  # fmt: skip
        await connection.execute("ANALYZE")
        await connection.close()

    try:
        return await measure(url, fill)
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{args.calls} calls")
    print("sqlite", json.dumps(asyncio.run(sqlite_figures(args.calls))))
    postgres = os.environ.get("ROUTER_TEST_POSTGRES_URL")
    if postgres:
        print("postgresql", json.dumps(asyncio.run(postgres_figures(args.calls, postgres))))


if __name__ == "__main__":
    main()
