"""How fast the web console's pages answer with 1,000,000 deliveries in the store.

Fills a SQLite store (schema made by the router itself) with 300,000 calls and
1,000,000 deliveries written straight through `executemany` in large transactions, starts
`python -m router serve` on it with `ROUTER_ADMIN_TOKEN` set and every sink unconfigured
(nothing is sent, nothing changes while measuring), signs in, and times each page: the
median, p90 and max of `--requests` sequential GETs after one warm-up. `--explain` prints
SQLite's query plan of the calls and deliveries queries; `--drop-index NAME` measures
without one of the indexes (to show which query needs it). Run from the repository root:

    python bench/console_pages.py [--db /tmp/console-bench.db] [--requests 15] [--explain]
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from procs import PYTHON, ROOT, Proc, free_port, wait_http

sys.path.insert(0, str(ROOT))

from router.store import CallFilters, open_store
from router.store import queries as q

TOKEN = "bench-console-token-0123456789"
EVENTS = 300_000
DELIVERIES = 1_000_000
SINKS = ("ops-slack", "crm", "support-email", "archive")
AGENTS = [f"agent-{n:03d}" for n in range(200)]
ORGANIZATIONS = [f"org-{n:02d}" for n in range(20)]
HANGUP_CAUSES = ["USER_ENDED"] * 60 + ["END_CALL_TOOL"] * 25 + ["SILENCE_TIMEOUT"] * 10
HANGUP_CAUSES += ["VOICEMAIL_DETECTED"] * 5
STATUSES = ["COMPLETED"] * 80 + ["FAILED"] * 12 + ["TRANSFERRED"] * 6 + ["CANCELED"] * 2
DAYS = 14
BATCH = 50_000

RULES = (
    """
version: 1
sinks:
"""
    + "".join(
        f"""  {name}:
    type: http
    url: ${{BENCH_UNSET_URL:-}}
"""
        for name in SINKS
    )
    + """rules:
  - name: failed-calls
    when: {status: FAILED}
    to: [ops-slack]
  - name: everything
    to: [crm, support-email, archive]
"""
)


def make_schema(db: Path) -> None:
    async def create() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.open()
        await store.close()

    asyncio.run(create())


def fill(db: Path, seed: int = 7) -> dict[str, object]:
    """Write the calls and deliveries; answer what the pages should look up."""
    rng = random.Random(seed)
    now = time.time()
    start = now - DAYS * 86400
    step = (now - start) / EVENTS
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA journal_mode=WAL")
    events, deliveries, attempts = [], [], []
    delivery_count = 0
    picks: dict[str, object] = {}
    for number in range(EVENTS):
        received_at = start + number * step
        call_id = f"{int(received_at * 1e6):016x}-{number:08d}"
        status = rng.choice(STATUSES)
        direction = "INBOUND" if rng.random() < 0.6 else "OUTBOUND"
        agent, organization = rng.choice(AGENTS), rng.choice(ORGANIZATIONS)
        # One call in a thousand ran out of time: a rare value, the index's worst case.
        hangup = "MAX_DURATION" if rng.random() < 0.001 else rng.choice(HANGUP_CAUSES)
        body = {
            "id": call_id,
            "direction": direction,
            "status": status,
            "fromNumber": f"+1415555{number % 10000:04d}",
            "toNumber": "+14155550199",
            "organizationId": organization,
            "agentId": agent,
            "hangupCause": hangup,
            "summary": "Caller asked about an appointment and was helped.",
            "durationSeconds": rng.randrange(5, 600),
            "transcript": [{"role": "agent", "content": "Hello, this is Ava."}],
        }
        events.append(
            (
                call_id,
                json.dumps(body).encode(),
                received_at,
                status,
                direction,
                agent,
                organization,
                hangup,
            )
        )
        sinks = SINKS if number < DELIVERIES - 3 * EVENTS else SINKS[1:]
        for sink in sinks:
            delivery_count += 1
            rule = "failed-calls" if sink == "ops-slack" else "everything"
            if delivery_count % 100_000 == 0:
                rule = "rare-rule"  # ten deliveries in a million
            roll = rng.random()
            delivery_id = f"{int(received_at * 1e9):016x}{delivery_count:016x}"
            if roll < 0.97:
                state, tried, next_at, delivered_at, error = (
                    "delivered",
                    1,
                    None,
                    received_at + 0.3,
                    None,
                )
            elif roll < 0.99:
                state, tried, next_at, delivered_at, error = ("dead", 5, None, None, "HTTP 503")
            else:
                tried = rng.choice((0, 1, 2))
                state, next_at, delivered_at = "pending", now + 3600, None
                error = "HTTP 503" if tried else None
            deliveries.append(
                (
                    delivery_id,
                    call_id,
                    sink,
                    rule,
                    state,
                    tried,
                    tried,
                    received_at,
                    next_at,
                    error,
                    received_at,
                    received_at + 0.3,
                    delivered_at,
                )
            )
            if (tried and delivery_count % 10 == 0) or state == "dead":
                outcome = {"delivered": "delivered", "dead": "dead"}.get(state, "retry")
                attempts.append(
                    (delivery_id, 1, received_at, 0.3, outcome, 200 if tried else 503, error)
                )
            if state == "dead":
                picks["dead_delivery"] = delivery_id
        if number == EVENTS // 2:
            picks["middle"] = (received_at, call_id)
            picks["call"] = call_id
        if len(deliveries) >= BATCH:
            _write(connection, events, deliveries, attempts)
            events, deliveries, attempts = [], [], []
    _write(connection, events, deliveries, attempts)
    # No ANALYZE: the router never runs it, so the planner works without statistics here too.
    connection.commit()
    (total,) = connection.execute("SELECT COUNT(*) FROM deliveries").fetchone()
    connection.close()
    picks["deliveries"] = total
    picks["day"] = start + 7 * 86400
    return picks


def _write(connection: sqlite3.Connection, events: list, deliveries: list, attempts: list) -> None:
    with connection:
        connection.executemany(
            "INSERT INTO events (id, payload, received_at, status, direction, agent_id,"
            " organization_id, hangup_cause) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        connection.executemany(
            "INSERT INTO deliveries (id, event_id, sink, rule, status, attempts,"
            " retry_attempts, retry_started_at, next_attempt_at, last_error, created_at,"
            " updated_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            deliveries,
        )
        connection.executemany(
            "INSERT INTO attempts (delivery_id, number, started_at, duration, outcome,"
            " status_code, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            attempts,
        )


def pages(picks: dict[str, object]) -> list[tuple[str, str]]:
    day = float(picks["day"])  # type: ignore[arg-type]
    at, call_id = picks["middle"]  # type: ignore[misc]

    def iso(moment: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))

    cursor = urllib.parse.urlencode({"before_at": repr(at), "before_id": call_id})
    return [
        ("overview", "/ui/"),
        ("calls", "/ui/calls"),
        ("calls, status=FAILED", "/ui/calls?status=FAILED"),
        ("calls, status=CANCELED & OUTBOUND", "/ui/calls?status=CANCELED&direction=OUTBOUND"),
        ("calls, agent", "/ui/calls?agent=agent-007"),
        ("calls, organization", "/ui/calls?organization=org-03"),
        ("calls, rare hang-up cause", "/ui/calls?hangup=MAX_DURATION"),
        ("calls, one day", f"/ui/calls?from={iso(day)}&to={iso(day + 86400)}"),
        ("calls, call id", f"/ui/calls?call={picks['call']}"),
        ("calls, page in the middle", f"/ui/calls?{cursor}"),
        ("calls, agent matching none", "/ui/calls?agent=nobody"),
        ("calls, status matching none", "/ui/calls?status=NO_SUCH"),
        ("one call", f"/ui/calls/{picks['call']}"),
        ("deliveries", "/ui/deliveries"),
        ("deliveries, dead", "/ui/deliveries?status=dead"),
        ("deliveries, sink", "/ui/deliveries?sink=crm"),
        ("deliveries, rare rule", "/ui/deliveries?rule=rare-rule"),
        ("deliveries, dead of a rule", "/ui/deliveries?status=dead&rule=everything"),
        ("deliveries, page 100", "/ui/deliveries?page=100"),
        ("one delivery", f"/ui/deliveries/{picks['dead_delivery']}"),
        ("rules", "/ui/rules"),
    ]


def explain(db: Path) -> None:
    """SQLite's plan for the console's calls and deliveries queries."""
    connection = sqlite3.connect(db)
    shown = {
        "list_events (newest)": q.list_events(()),
        "list_events agent": q.list_events(tuple(CallFilters(agent_id="a").given())),
        "list_events status": q.list_events(tuple(CallFilters(status="a").given())),
        "list_events hangup": q.list_events(tuple(CallFilters(hangup_cause="a").given())),
        "list_events + before": q.list_events(("before",)),
        "deliveries rule": q.LIST_DELIVERIES[("rule",)],
        "delivered_since": q.DELIVERED_SINCE,
        "sink_counts": q.SINK_COUNTS,
        "deliveries_of_event": q.DELIVERIES_OF_EVENT,
    }
    for name, query in shown.items():
        compiled = query.compiled("sqlite")
        parameters = dict.fromkeys(compiled.parameter_names, 0)
        plan = connection.execute("EXPLAIN QUERY PLAN " + compiled.text, parameters).fetchall()
        print(f"{name}: " + " | ".join(row[-1] for row in plan))
    connection.close()


def measure(base: str, paths: list[tuple[str, str]], requests: int) -> list[tuple[str, ...]]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    sign_in = urllib.parse.urlencode({"token": TOKEN, "next": "/ui/"}).encode()
    opener.open(f"{base}/ui/login", sign_in, timeout=60).read()
    rows = []
    for name, path in paths:
        times = []
        for attempt in range(requests + 1):
            began = time.perf_counter()
            with opener.open(base + path, timeout=60) as answer:
                answer.read()
                status = answer.status
            if attempt:  # the first request warms the caches
                times.append((time.perf_counter() - began) * 1000)
        times.sort()
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        rows.append(
            (name, str(status), f"{statistics.median(times):.1f}", f"{p90:.1f}", f"{times[-1]:.1f}")
        )
        print(f"{name:40} {status} median {rows[-1][2]:>7} ms  p90 {rows[-1][3]:>7}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temp dir)")
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--drop-index", action="append", default=[])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    db = args.db or folder / "router.db"
    picks_file = db.with_suffix(".picks.json")
    if not db.exists():
        began = time.monotonic()
        make_schema(db)
        picks = fill(db)
        picks_file.write_text(json.dumps(picks))
        print(f"filled {db} in {time.monotonic() - began:.0f} s", flush=True)
    picks = json.loads(picks_file.read_text())
    for index in args.drop_index:
        with sqlite3.connect(db) as connection:
            connection.execute(f"DROP INDEX IF EXISTS {index}")
    if args.explain:
        explain(db)
    rules = folder / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    argv = [PYTHON, "-m", "router", "serve", "--config", str(rules), "--port", str(port)]
    argv += ["--store", f"sqlite:///{db}", "--retention-days", "0", "--log-format", "text"]
    env = {"ROUTER_ADMIN_TOKEN": TOKEN, "ROUTER_API_KEYS": "bench-key"}
    with Proc("router", argv, folder / "router.log", env=env) as router:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", router, timeout=120)
        print(f"{picks['deliveries']:,} deliveries, {EVENTS:,} calls", flush=True)
        rows = measure(base, pages(picks), args.requests)
    print("\n| page | status | median ms | p90 ms | max ms |\n| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
