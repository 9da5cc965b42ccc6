"""What one routed call costs the SQLite writer: WAL bytes and writer CPU, by index set.

Counts are steadier than rates on a shared machine: the WAL grows by the pages each
commit dirtied, whatever else runs. The script makes a store with the router's own
migrations, then writes calls the way the router does, with the router's own statements
(`router.store.queries`): per batch of `--batch` calls one transaction of INSERT_EVENT +
INSERT_DELIVERY (written leased, as the fast path does), then one of FINISH +
RECORD_ATTEMPT. Agent and organization ids cycle through 200 and 20 values, received_at
increases, call ids are random UUIDs (as RevRing's are).

First table: the schema as migrated; without the console's call indexes of migration 6;
without its delivery indexes; without both; each with checkpoints off, so the WAL's size
is the bytes written. Second table: the schema as migrated with SQLite's default
checkpoint (every 1,000 pages) against the router's
(`router.store.sqlite.WAL_CHECKPOINT_PAGES`): a checkpoint runs inside the commit that
crosses the mark, so it shows in the transaction times. Run from the repository root:

    python bench/store_writes.py [--calls 20000] [--batch 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from procs import ROOT

sys.path.insert(0, str(ROOT))

from router.store import open_store
from router.store import queries as q
from router.store.sqlite import WAL_CHECKPOINT_PAGES

SAMPLE = (ROOT / "samples" / "failed-outbound.json").read_bytes()
CONSOLE_CALL_INDEXES = (
    "events_status_newest",
    "events_agent_newest",
    "events_organization_newest",
    "events_hangup_newest",
)
CONSOLE_DELIVERY_INDEXES = (
    "deliveries_rule_newest",
    "deliveries_delivered",
    "deliveries_unsettled",
)
VARIANTS: dict[str, tuple[str, ...]] = {
    "as migrated": (),
    "without the console's call indexes": CONSOLE_CALL_INDEXES,
    "without the console's delivery indexes": CONSOLE_DELIVERY_INDEXES,
    "without both": CONSOLE_CALL_INDEXES + CONSOLE_DELIVERY_INDEXES,
}


async def migrated_store(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.close()


def write_calls(path: Path, calls: int, batch: int, checkpoint_pages: int) -> dict[str, float]:
    """Write `calls` routed calls: writer CPU and wall µs per call, WAL KB per call, and
    the p50/p99/max milliseconds of one transaction (what a webhook answer waits for)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages}")
    insert_event = q.INSERT_EVENT.compiled("sqlite").text
    insert_delivery = q.INSERT_DELIVERY.compiled("sqlite").text
    finish = q.FINISH.compiled("sqlite").text
    record_attempt = q.RECORD_ATTEMPT.compiled("sqlite").text
    cpu_started, wall_started = time.thread_time(), time.perf_counter()
    transactions: list[float] = []
    for first in range(0, calls, batch):
        delivery_ids = []
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for number in range(first, min(first + batch, calls)):
            now = time.time()
            event_id = str(uuid.uuid4())
            delivery_id = f"{time.time_ns():016x}{number:016x}"
            connection.execute(
                insert_event,
                {
                    "id": event_id,
                    "payload": SAMPLE,
                    "received_at": now,
                    "status": "FAILED",
                    "direction": "OUTBOUND",
                    "agent_id": f"agent-{number % 200}",
                    "organization_id": f"org-{number % 20}",
                    "hangup_cause": "VOICEMAIL_DETECTED",
                },
            )
            connection.execute(
                insert_delivery,
                {
                    "id": delivery_id,
                    "event_id": event_id,
                    "sink": "crm",
                    "rule": "every-call",
                    "now": now,
                    "lease_owner": "bench",
                    "lease_until": now + 30,
                },
            )
            delivery_ids.append(delivery_id)
        connection.execute("COMMIT")
        transactions.append(time.perf_counter() - began)
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for delivery_id in delivery_ids:
            now = time.time()
            (number,) = connection.execute(
                finish,
                {
                    "id": delivery_id,
                    "owner": "bench",
                    "status": "delivered",
                    "next_attempt_at": None,
                    "last_error": None,
                    "delivered_at": now,
                    "updated_at": now,
                },
            ).fetchone()
            connection.execute(
                record_attempt,
                {
                    "delivery_id": delivery_id,
                    "number": number,
                    "started_at": now,
                    "duration": 0.002,
                    "outcome": "delivered",
                    "status_code": 200,
                    "error": None,
                    "detail": "HTTP 200 OK",
                },
            )
        connection.execute("COMMIT")
        transactions.append(time.perf_counter() - began)
    cpu = time.thread_time() - cpu_started
    wall = time.perf_counter() - wall_started
    wal = Path(f"{path}-wal").stat().st_size
    connection.close()
    transactions.sort()
    return {
        "cpu_us": 1e6 * cpu / calls,
        "wall_us": 1e6 * wall / calls,
        "wal_kb": wal / 1e3 / calls,
        "p50_ms": 1e3 * transactions[len(transactions) // 2],
        "p99_ms": 1e3 * transactions[int(len(transactions) * 0.99)],
        "max_ms": 1e3 * transactions[-1],
    }


def run_variant(
    template: Path, work: Path, drop: tuple[str, ...], calls: int, batch: int, pages: int
) -> dict[str, float]:
    path = work / "store.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, path)
    with sqlite3.connect(path) as connection:
        for index in drop:
            connection.execute(f"DROP INDEX {index}")
    return write_calls(path, calls, batch, pages)


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16, help="calls per commit")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-writes-") as directory:
        work = Path(directory)
        template = work / "template.db"
        asyncio.run(migrated_store(template))

        def measured(drop: tuple[str, ...], pages: int) -> list[dict[str, float]]:
            return [
                run_variant(template, work, drop, args.calls, args.batch, pages)
                for _ in range(args.repeats)
            ]

        print(f"{args.calls:,} routed calls, {args.batch} per commit, median of {args.repeats}")
        print()
        print("| indexes | WAL KB per call (no checkpoint) | writer CPU µs per call |")
        print("| --- | ---: | ---: |")
        for name, drop in VARIANTS.items():
            runs = measured(drop, 0)
            wal, cpu = median_of(runs, "wal_kb"), median_of(runs, "cpu_us")
            print(f"| {name} | {wal:.1f} | {cpu:.0f} |", flush=True)
        print()
        print(
            "| checkpoint every | writer CPU µs per call | wall µs per call"
            " | transaction p50 ms | p99 ms | max ms |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for pages in (1000, WAL_CHECKPOINT_PAGES):
            runs = measured((), pages)
            figures = " | ".join(
                f"{median_of(runs, key):{spec}}"
                for key, spec in (
                    ("cpu_us", ".0f"),
                    ("wall_us", ".0f"),
                    ("p50_ms", ".2f"),
                    ("p99_ms", ".2f"),
                    ("max_ms", ".1f"),
                )
            )
            print(f"| {pages:,} pages | {figures} |", flush=True)


if __name__ == "__main__":
    main()
