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

`--low-rate` measures instead what a trickle of calls does to the WAL, through the
router's own store (`SQLiteStore`: its writer thread, group commit and checkpoints):
calls paced at each of `--rates` calls a second for `--seconds`, one at a time, each
an ingest with its delivery written leased and then its delivery finished (the fast
path's two commits). Once with SQLite's checkpoint by size only (what the router did
before: `router.store.checkpoints.NEVER`), once with the router's checkpoints (idle,
by time, low space). Per rate and policy: WAL KB written per call (from the first
policy, whose WAL is never cut below 40 MB), the WAL file's peak size while the calls
come, its size 2 s after the last call, the p50/p99 of a call's two writes, and the
writer's checkpoints by reason:

    python bench/store_writes.py --low-rate [--rates 1,10,30] [--seconds 10]

`--burst` is the hot path's side of the same change: `--calls` calls through the
router's store from 32 concurrent tasks (as many webhooks in flight), each policy in
turn, `--repeats` times interleaved: calls per second, the process's CPU µs per call
and the p99 of a call's two writes.

    python bench/store_writes.py --burst [--calls 20000] [--repeats 5]

`--instructions` counts instead of timing: what each secondary index of `events` and
`deliveries` costs the writer, in CPU instructions, which do not vary with the load of
the machine (thread CPU time did by ±50 % from run to run on the 2-core VM). A store
made by the router's migrations is filled with `--prefill` calls (20,000: trees a few
levels deep, as in a store that keeps calls) at full speed, with the index migration
22 dropped made again; then, for each variant (schema 21; without each secondary index
alone; without every index the console's filters use; as migrated today; two indexes
made partial, not done; schema 21 again, to show how far a count strays), a copy of it
loses (or changes) the variant's indexes and a child process writes `--calls` calls
(2,000) into it, the same
statements in the same transactions as above, under
`valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sqlite3_step`: the
instructions SQLite executes inside `sqlite3_step` (every statement, the FTS5 row and
the commits included; Python's own work, the same whatever the indexes, is not
counted). Ids come from a seeded generator and times from a fixed clock, and the WAL is
never checkpointed, so a variant counts the same instructions to a few in a million
each time. A variant's cost is its instructions per call; an index's, what dropping
it saves.

    python bench/store_writes.py --instructions [--calls 2000] [--prefill 20000] [--only a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from procs import PYTHON, ROOT

sys.path.insert(0, str(ROOT))

from router.store import AttemptRecord, IngestRecord, NewDelivery, open_store, searchable_text
from router.store import queries as q
from router.store.checkpoints import NEVER, CheckpointPolicy
from router.store.sqlite import WAL_CHECKPOINT_PAGES, SQLiteStore

SAMPLE = (ROOT / "samples" / "failed-outbound.json").read_bytes()
SEARCH_TEXT = searchable_text(json.loads(SAMPLE))
AGENT_LINE = "+14155550199"
# An attempt's exchange as the HTTP sink keeps it for a success (heads, a short body).
EXCHANGE = {
    "request_head": '{"method":"POST","url":"http://127.0.0.1:9/deliveries",'
    '"headers":{"Content-Type":"application/json","User-Agent":"revring-router"}}',
    "request_body": None,
    "response_head": '{"status":200,"reason":"OK","headers":{"Content-Type":"text/plain"}}',
    "response_body": b"ok",
    "attempt_steps": None,
}
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
SEARCH_INDEXES = ("events_from_newest", "events_to_newest")
# Every secondary index of the two tables a routed call writes (not the primary keys,
# not deliveries' UNIQUE (event_id, sink), which ON CONFLICT needs), as migrated.
SECONDARY_INDEXES = (
    "events_received_at",
    "events_newest",
    "events_status_newest",
    "events_agent_newest",
    "events_organization_newest",
    "events_hangup_newest",
    "events_from_newest",
    "events_to_newest",
    "events_verification",
    "deliveries_claim",
    "deliveries_newest",
    "deliveries_status_newest",
    "deliveries_sink_newest",
    "deliveries_rule_newest",
    "deliveries_delivered",
    "deliveries_unsettled",
    "deliveries_open_group",
    "deliveries_escalated_from",
    "deliveries_notice_of",
)
# What the console's filters and the overview read (calls and deliveries pages).
CONSOLE_FILTER_INDEXES = (
    *CONSOLE_CALL_INDEXES,
    *SEARCH_INDEXES,
    "deliveries_status_newest",
    "deliveries_sink_newest",
    *CONSOLE_DELIVERY_INDEXES,
)
# What migration 22 dropped, as migration 1 made it: made again in the store measured,
# so that the first row is the schema before it (21).
DROPPED_BY_22 = {
    "events_received_at": "CREATE INDEX events_received_at ON events (received_at)",
}
# Not done, measured: two indexes made partial, keeping only the rows their readers
# read (each reader's WHERE implies the index's, so SQLite and PostgreSQL may use it):
# what a routed call would save. (dropped, made instead)
RESHAPED: dict[str, tuple[str, str]] = {
    "deliveries_delivered partial (WHERE delivered_at IS NOT NULL)": (
        "deliveries_delivered",
        "CREATE INDEX deliveries_delivered ON deliveries (delivered_at, sink)"
        " WHERE delivered_at IS NOT NULL",
    ),
    "deliveries_claim partial (WHERE status = 'pending')": (
        "deliveries_claim",
        "CREATE INDEX deliveries_claim ON deliveries (sink, next_attempt_at, created_at, id)"
        " WHERE status = 'pending'",
    ),
}
VARIANTS: dict[str, tuple[str, ...]] = {
    "as migrated": (),
    "without the console's call indexes": CONSOLE_CALL_INDEXES,
    "without the console's delivery indexes": CONSOLE_DELIVERY_INDEXES,
    "without both": CONSOLE_CALL_INDEXES + CONSOLE_DELIVERY_INDEXES,
    "without the phone search indexes": SEARCH_INDEXES,
}


def caller(number: int) -> str:
    """A caller's number, one of 100,000 (in E.164, as the store keeps it)."""
    return f"+1415{(number * 7919) % 10_000_000:07d}"


async def migrated_store(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.close()


# The fixed clock of a seeded run (`--instructions`): a call every 50 ms from here.
SEEDED_START = 1_790_000_000.0


def write_calls(
    path: Path, calls: int, batch: int, checkpoint_pages: int, seed: int | None = None
) -> dict[str, float]:
    """Write `calls` routed calls: writer CPU and wall µs per call, WAL KB per call, and
    the p50/p99/max milliseconds of one transaction (what a webhook answer waits for).
    With a `seed`, the ids and times are the same from run to run (`--instructions`);
    the seed also places the calls in time, after those of smaller seeds."""
    rng = random.Random(seed)
    clock = time.time
    if seed is not None:
        ticks = iter(range(10**9))
        start = SEEDED_START + seed * 1e6
        clock = lambda: start + 0.05 * next(ticks)  # noqa: E731
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages}")
    insert_event = q.INSERT_EVENT.compiled("sqlite").text
    insert_delivery = q.INSERT_DELIVERY.compiled("sqlite").text
    finish = q.FINISH.compiled("sqlite").text
    record_attempt = q.RECORD_ATTEMPT.compiled("sqlite").text
    index_words = q.INDEX_EVENT_WORDS.compiled("sqlite").text
    cpu_started, wall_started = time.thread_time(), time.perf_counter()
    transactions: list[float] = []
    for first in range(0, calls, batch):
        delivery_ids = []
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for number in range(first, min(first + batch, calls)):
            now = clock()
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            delivery_id = f"{int(now * 1e9):016x}{number:016x}"
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
                    "from_number": AGENT_LINE,
                    "to_number": caller(number),
                    "search_text": SEARCH_TEXT,
                },
            )
            connection.execute(index_words, {"id": event_id})
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
                    "trace_parent": None,
                },
            )
            delivery_ids.append(delivery_id)
        connection.execute("COMMIT")
        transactions.append(time.perf_counter() - began)
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for delivery_id in delivery_ids:
            now = clock()
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
                    "steps": None,
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
                    **EXCHANGE,
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
    return write_calls(store_variant(template, work, drop), calls, batch, pages)


def store_variant(
    template: Path, work: Path, drop: tuple[str, ...], create: tuple[str, ...] = ()
) -> Path:
    """A fresh copy of `template` without the indexes `drop`, with `create` run."""
    path = work / "store.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, path)
    connection = sqlite3.connect(path)
    with connection:
        for index in drop:
            connection.execute(f"DROP INDEX {index}")
        for statement in create:
            connection.execute(statement)
    connection.close()
    return path


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def wal_bytes(path: Path) -> int:
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


async def trickle(
    path: Path, policy: CheckpointPolicy, rate: float, seconds: float
) -> dict[str, object]:
    """Calls at `rate` a second for `seconds` through the router's SQLite store."""
    store = SQLiteStore(path, checkpoints=policy)
    await store.open()
    await asyncio.sleep(1.0)  # the migrations' writes settle (an idle checkpoint, if any)
    started_wal = wal_bytes(path)
    peak = 0
    latencies: list[float] = []
    calls = int(rate * seconds)
    began = time.monotonic()
    for number in range(calls):
        await asyncio.sleep(max(began + number / rate - time.monotonic(), 0.0))
        latencies.append(await _write_call(store, number))
        peak = max(peak, wal_bytes(path))
    await asyncio.sleep(2.0)
    after = wal_bytes(path)
    done = store.connector.checkpoints_done
    await store.close()
    latencies.sort()
    return {
        "wal_kb_per_call": (peak - started_wal) / 1e3 / calls,
        "peak_mb": peak / 1e6,
        "after_mb": after / 1e3 / 1e3,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
        "checkpoints": ", ".join(f"{why} {n}" for why, n in done.items() if n) or "-",
    }


def _call(number: int) -> tuple[IngestRecord, NewDelivery]:
    now = time.time()
    delivery = NewDelivery(
        f"{time.time_ns():016x}{number:016x}", "crm", "every-call", None, "bench", now + 30
    )
    call = IngestRecord(
        str(uuid.uuid4()),
        SAMPLE,
        now,
        [delivery],
        "FAILED",
        "OUTBOUND",
        agent_id=f"agent-{number % 200}",
        organization_id=f"org-{number % 20}",
        hangup_cause="VOICEMAIL_DETECTED",
        from_number=AGENT_LINE,
        to_number=caller(number),
        search_text=SEARCH_TEXT,
    )
    return call, delivery


async def _write_call(store: SQLiteStore, number: int) -> float:
    """One routed call's two writes (ingest, finish); seconds they took."""
    call, delivery = _call(number)
    sent = time.perf_counter()
    await store.ingest(call)
    attempt = AttemptRecord(1, time.time(), 0.002, "delivered", 200)
    await store.finish(delivery.id, "bench", attempt)
    return time.perf_counter() - sent


async def burst(path: Path, policy: CheckpointPolicy, calls: int) -> dict[str, float]:
    store = SQLiteStore(path, checkpoints=policy)
    await store.open()
    numbers = iter(range(calls))
    latencies: list[float] = []

    async def sender() -> None:
        for number in numbers:
            latencies.append(await _write_call(store, number))

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(32)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await store.close()
    latencies.sort()
    return {
        "calls_per_s": calls / wall,
        "cpu_us": 1e6 * cpu / calls,
        "p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
    }


def bursts(calls: int, repeats: int) -> None:
    policies = {"by size only (before)": NEVER, "router's": CheckpointPolicy()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in policies}
    for _ in range(repeats):
        for name, policy in policies.items():
            with tempfile.TemporaryDirectory(prefix="store-burst-") as directory:
                runs[name].append(asyncio.run(burst(Path(directory) / "r.db", policy, calls)))
    print(f"{calls:,} routed calls, 32 in flight, median of {repeats} interleaved runs")
    print()
    print("| checkpoints | calls/s | process CPU µs per call | p99 of a call's writes, ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, measured in runs.items():
        figures = " | ".join(
            f"{median_of(measured, key):{spec}}"
            for key, spec in (("calls_per_s", ",.0f"), ("cpu_us", ".0f"), ("p99_ms", ".1f"))
        )
        print(f"| {name} | {figures} |")


def low_rate(rates: list[float], seconds: float) -> None:
    print(f"calls one at a time for {seconds:g} s at each rate; WAL sizes in MB")
    print()
    print(
        "| calls/s | checkpoints | WAL KB per call | WAL peak | WAL 2 s after"
        " | p50 ms | p99 ms | writer's checkpoints |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for rate in rates:
        per_call = None
        for name, policy in (("by size only (before)", NEVER), ("router's", CheckpointPolicy())):
            with tempfile.TemporaryDirectory(prefix="store-trickle-") as directory:
                figures = asyncio.run(trickle(Path(directory) / "r.db", policy, rate, seconds))
            if per_call is None:  # nothing cut the WAL: its growth is what was written
                per_call = f"{figures['wal_kb_per_call']:.1f}"
            print(
                f"| {rate:g} | {name} | {per_call if policy is NEVER else '-'}"
                f" | {figures['peak_mb']:.2f} | {figures['after_mb']:.2f}"
                f" | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f}"
                f" | {figures['checkpoints']} |",
                flush=True,
            )


def callgrind_instructions(path: Path, calls: int, batch: int, out: Path) -> int:
    """The instructions SQLite executes (inside `sqlite3_step`) while a child process
    writes `calls` seeded calls into the store at `path`."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=sqlite3_step",
        f"--callgrind-out-file={out}",
        PYTHON,
        str(Path(__file__).resolve()),
        "--write-seeded",
        str(path),
        "--calls",
        str(calls),
        "--batch",
        str(batch),
    ]
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    for line in out.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def instructions(calls: int, prefill: int, batch: int, only: str = "") -> None:
    # Per variant: the indexes dropped, and the statements run after.
    variants: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "schema 21 (before migration 22)": ((), ())
    }
    variants.update({f"without {index}": ((index,), ()) for index in SECONDARY_INDEXES})
    variants["without the console's filter indexes"] = (CONSOLE_FILTER_INDEXES, ())
    variants["as migrated (migration 22: without events_received_at)"] = (tuple(DROPPED_BY_22), ())
    for name, (index, create) in RESHAPED.items():
        variants[name] = ((index,), (create,))
    variants["schema 21 again (how far a count strays)"] = ((), ())
    if only:  # the first (the baseline) and those whose name holds one of the words
        first, *_ = variants
        words = only.split(",")
        variants = {
            name: v
            for name, v in variants.items()
            if name == first or any(word in name for word in words)
        }
    with tempfile.TemporaryDirectory(prefix="store-instructions-") as directory:
        work = Path(directory)
        template = work / "template.db"
        asyncio.run(migrated_store(template))
        with sqlite3.connect(template) as connection:
            made = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            for index, create in DROPPED_BY_22.items():
                if index not in made:
                    connection.execute(create)
        connection.close()
        write_calls(template, prefill, batch, 1000, seed=0)
        with sqlite3.connect(template) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        print(
            f"{calls:,} routed calls into a store of {prefill:,}, {batch} per commit:"
            " SQLite's instructions (callgrind, inside sqlite3_step)"
        )
        print()
        print("| indexes | instructions per call | saved per call | saved |")
        print("| --- | ---: | ---: | ---: |")
        base = None
        for name, (drop, create) in variants.items():
            path = store_variant(template, work, drop, create)
            per_call = callgrind_instructions(path, calls, batch, work / "callgrind.out") / calls
            if base is None:
                base = per_call
            saved = base - per_call
            print(
                f"| {name} | {per_call:,.0f} | {saved:,.0f} | {100 * saved / base:.1f} % |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="20,000; 2,000 with --instructions")
    parser.add_argument("--batch", type=int, default=16, help="calls per commit")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    parser.add_argument("--low-rate", action="store_true", help="a trickle of calls instead")
    parser.add_argument("--rates", default="1,10,30", help="calls a second (--low-rate)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate (--low-rate)")
    parser.add_argument("--burst", action="store_true", help="32 calls in flight instead")
    parser.add_argument("--instructions", action="store_true", help="callgrind's counts")
    parser.add_argument("--prefill", type=int, default=20_000, help="calls (--instructions)")
    parser.add_argument(
        "--only",
        default="",
        help="--instructions: the variants named with these words (comma-separated)",
    )
    parser.add_argument("--write-seeded", type=Path, help=argparse.SUPPRESS)  # its child
    args = parser.parse_args()
    if args.write_seeded:
        write_calls(args.write_seeded, args.calls, args.batch, 0, seed=1)
        return
    if args.instructions:
        instructions(args.calls or 2_000, args.prefill, args.batch, args.only)
        return
    args.calls = args.calls or 20_000
    if args.burst:
        bursts(args.calls, args.repeats)
        return
    if args.low_rate:
        low_rate([float(rate) for rate in args.rates.split(",")], args.seconds)
        return
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
