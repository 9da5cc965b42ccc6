"""How fast the web console's pages answer with 300,000 calls and 1,000,000 deliveries,
search included, on SQLite and on PostgreSQL.

Fills a store (schema made by the router itself) with 300,000 calls shaped like the
samples in ../shared/samples (their fields, varied: 20,000 callers with US and UK
numbers, summaries and transcripts drawn from a vocabulary of 3,000 words with a Zipf
spread, a rare word in one call in 10,000) and 1,000,000 deliveries, written in large
transactions (SQLite `executemany`; PostgreSQL `COPY`, the GIN index built after the
load, then `ANALYZE`, as autovacuum would within a minute). It then starts `python -m
router serve` on it with `ROUTER_ADMIN_TOKEN` set and every sink unconfigured (nothing
is sent, nothing changes while measuring), signs in, and times each page: the median
and p95 of `--requests` sequential GETs after one warm-up. Then, on the database
directly and in the same run, the words query through the full-text index against the
LIKE scan it replaced (migration 8's `search_text LIKE '%word%'`), same words.
`--explain` prints SQLite's query plans; `--drop-index NAME` measures without an index.
Run from the repository root:

    python bench/console_pages.py [--db /tmp/console-bench.db] [--requests 20]
    python bench/console_pages.py --store postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import itertools
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

from router.store import CallFilters, open_store, searchable_text
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
SAMPLES = ROOT / "samples"  # the same as ../shared/samples
CALLERS = 20_000
RARE_WORD = "zephyrine"  # in one call in 10,000
PG_SCHEMA = "bench_console"
# Words people say on these calls, most common first; then 3,000 made-up ones.
SAID = (
    "the to you and a i is for my it on can that this your at we have be with "
    "appointment thanks call friday monday tuesday cleaning refund invoice order "
    "delivery payment account booking reschedule cancel confirm insurance address "
    "card balance"
)
COMMON_WORDS = SAID.split()
SYLLABLE_TEXT = "ka lo mi ne ru sa ti vo ze ba de fi go hu ja ke li mo nu pa qui ro su ta"
SYLLABLES = SYLLABLE_TEXT.split()

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


def make_schema(url: str) -> None:
    async def create() -> None:
        store = open_store(url)
        await store.open()
        await store.close()

    asyncio.run(create())


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    made = {"".join(rng.choice(SYLLABLES) for _ in range(rng.randrange(2, 5))) for _ in range(4000)}
    words = COMMON_WORDS + sorted(made - set(COMMON_WORDS))[:3000]
    return words, list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))


def sentence(rng: random.Random, words: list[str], cumulative: list[float]) -> str:
    said = rng.choices(words, cum_weights=cumulative, k=rng.randrange(5, 14))
    return " ".join(said).capitalize() + "."


def caller_number(n: int) -> str:
    if n % 5 == 4:
        return f"+44207183{n % 10000:04d}"
    return f"+1{('415', '212', '646')[n % 3]}555{n % 10000:04d}"


def generate(seed: int = 7):
    """Each call's events row and its deliveries and attempts, in order, and what the
    pages look up."""
    rng = random.Random(seed)
    words, weights = vocabulary(rng)
    samples = [json.loads(path.read_text()) for path in sorted(SAMPLES.glob("*.json"))]
    now = time.time()
    start = now - DAYS * 86400
    step = (now - start) / EVENTS
    delivery_count = 0
    picks: dict[str, object] = {"rare": 0}
    for number in range(EVENTS):
        received_at = start + number * step
        call_id = f"{int(received_at * 1e6):016x}-{number:08d}"
        status = rng.choice(STATUSES)
        direction = "INBOUND" if rng.random() < 0.6 else "OUTBOUND"
        agent, organization = rng.choice(AGENTS), rng.choice(ORGANIZATIONS)
        # One call in a thousand ran out of time: a rare value, the index's worst case.
        hangup = "MAX_DURATION" if rng.random() < 0.001 else rng.choice(HANGUP_CAUSES)
        caller = caller_number(rng.randrange(CALLERS))
        line = "+14155550199"
        from_number, to_number = (caller, line) if direction == "INBOUND" else (line, caller)
        transcript = [
            {"role": ("agent", "user")[n % 2], "content": sentence(rng, words, weights)}
            for n in range(rng.randrange(2, 9))
        ]
        summary = sentence(rng, words, weights)
        if number % 10_000 == 5_000:
            summary += f" Mentioned {RARE_WORD}."
            picks["rare"] = int(picks["rare"]) + 1  # type: ignore[call-overload]
        body = {
            **rng.choice(samples),
            "id": call_id,
            "direction": direction,
            "status": status,
            "fromNumber": from_number,
            "toNumber": to_number,
            "organizationId": organization,
            "agentId": agent,
            "hangupCause": hangup,
            "summary": summary,
            "durationSeconds": rng.randrange(5, 600),
            "transcript": transcript,
        }
        event = (
            call_id,
            json.dumps(body).encode(),
            received_at,
            status,
            direction,
            agent,
            organization,
            hangup,
            from_number,
            to_number,
            searchable_text(body),
        )
        deliveries, attempts = [], []
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
            picks["caller"] = caller
        yield event, deliveries, attempts
    picks["day"] = start + 7 * 86400
    picks["deliveries"] = delivery_count
    yield picks


EVENT_COLUMNS = (
    "id, payload, received_at, status, direction, agent_id, organization_id, hangup_cause,"
    " from_number, to_number, search_text"
)
DELIVERY_COLUMNS = (
    "id, event_id, sink, rule, status, attempts, retry_attempts, retry_started_at,"
    " next_attempt_at, last_error, created_at, updated_at, delivered_at"
)
ATTEMPT_COLUMNS = "delivery_id, number, started_at, duration, outcome, status_code, error"


def batches(seed: int = 7):
    """The rows in batches of about BATCH deliveries; the picks last."""
    events, deliveries, attempts = [], [], []
    for item in generate(seed):
        if isinstance(item, dict):
            yield events, deliveries, attempts
            yield item
            return
        event, its_deliveries, its_attempts = item
        events.append(event)
        deliveries += its_deliveries
        attempts += its_attempts
        if len(deliveries) >= BATCH:
            yield events, deliveries, attempts
            events, deliveries, attempts = [], [], []


def fill_sqlite(db: Path) -> dict[str, object]:
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA journal_mode=WAL")
    picks: dict[str, object] = {}
    for batch in batches():
        if isinstance(batch, dict):
            picks = batch
            break
        events, deliveries, attempts = batch
        with connection:
            for table, columns, rows in (
                ("events", EVENT_COLUMNS, events),
                ("deliveries", DELIVERY_COLUMNS, deliveries),
                ("attempts", ATTEMPT_COLUMNS, attempts),
            ):
                marks = ", ".join("?" * len(columns.split(",")))
                connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    # The words of every call, in one pass: since migration 21 no trigger indexes a call
    # on insert (the store writes each call's FTS5 row itself), so the rows loaded here
    # are not in the index until it is rebuilt.
    with connection:
        connection.execute("INSERT INTO events_fts (events_fts) VALUES ('rebuild')")
    # No ANALYZE: the router never runs it, so the planner works without statistics here too.
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return picks


async def fill_postgres(url: str) -> dict[str, object]:
    import asyncpg

    connection = await asyncpg.connect(url)
    picks: dict[str, object] = {}
    try:
        await connection.execute("DROP INDEX events_search")  # built once, after the load
        for batch in batches():
            if isinstance(batch, dict):
                picks = batch
                break
            async with connection.transaction():
                for table, columns, rows in zip(
                    ("events", "deliveries", "attempts"),
                    (EVENT_COLUMNS, DELIVERY_COLUMNS, ATTEMPT_COLUMNS),
                    batch,
                    strict=True,
                ):
                    names = [name.strip() for name in columns.split(",")]
                    await connection.copy_records_to_table(table, records=rows, columns=names)
        await connection.execute("CREATE INDEX events_search ON events USING GIN (search_vector)")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return picks


def phone_written_otherwise(number: str) -> str:
    """`+14155550142` -> `(415) 555-0142`; `+442071830142` -> `+44 20 7183 0142`."""
    if number.startswith("+1"):
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return f"+44 {number[3:5]} {number[5:9]} {number[9:]}"


def pages(picks: dict[str, object]) -> list[tuple[str, str]]:
    day = float(picks["day"])  # type: ignore[arg-type]
    at, call_id = picks["middle"]  # type: ignore[misc]

    def iso(moment: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))

    def search(text: str) -> str:
        return "/ui/calls?" + urllib.parse.urlencode({"q": text})

    cursor = urllib.parse.urlencode({"before_at": repr(at), "before_id": call_id})
    return [
        ("overview", "/ui/"),
        ("calls", "/ui/calls"),
        ("calls, status=failed", "/ui/calls?status=failed"),
        ("calls, status=CANCELED & OUTBOUND", "/ui/calls?status=CANCELED&direction=OUTBOUND"),
        ("calls, agent", "/ui/calls?agent=agent-007"),
        ("calls, rare hang-up cause", "/ui/calls?hangup=max_duration"),
        ("calls, common hang-up cause", "/ui/calls?hangup=USER_ENDED"),
        ("calls, one day", f"/ui/calls?from={iso(day)}&to={iso(day + 86400)}"),
        ("calls, page in the middle", f"/ui/calls?{cursor}"),
        ("calls, status matching none", "/ui/calls?status=NO_SUCH"),
        ("search, a caller's number", search(phone_written_otherwise(str(picks["caller"])))),
        ("search, the agent's line (every call)", search("415.555.0199")),
        ("search, a common word", search("appointment")),
        ("search, two common words", search("friday refund")),
        ("search, a rare word", search(RARE_WORD)),
        ("search, a word no call has", search("xylophone")),
        ("search, a word + status", search("invoice") + "&status=FAILED"),
        ("one call", f"/ui/calls/{picks['call']}"),
        ("deliveries", "/ui/deliveries"),
        ("dead letters", "/ui/deliveries?status=dead"),
        ("deliveries, rare rule", "/ui/deliveries?rule=rare-rule"),
        ("deliveries, one sink", "/ui/deliveries?sink=crm"),
        ("dead letters of one sink", "/ui/deliveries?status=dead&sink=ops-slack"),
        ("one delivery", f"/ui/deliveries/{picks['dead_delivery']}"),
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
        "list_events words": q.list_events(("words",)),
        "list_events phone": q.list_events(("phone",)),
        "worst_delivery_ranks": q.WORST_DELIVERY_RANKS,
        "status values": q.CALL_COLUMN_VALUES["status"],
    }
    for name, query in shown.items():
        compiled = query.compiled("sqlite")
        parameters = dict.fromkeys(compiled.parameter_names, 0)
        parameters.update(words='"x"*', ids="[]", limit=51)
        plan = connection.execute("EXPLAIN QUERY PLAN " + compiled.text, parameters).fetchall()
        print(f"{name}: " + " | ".join(row[-1] for row in plan))
    connection.close()


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


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
            with opener.open(base + path, timeout=120) as answer:
                body = answer.read()
                status = answer.status
            if attempt:  # the first request warms the caches
                times.append((time.perf_counter() - began) * 1000)
        listed = body.count(b'<a class="id" href="/ui/calls/')
        rows.append(
            (
                name,
                str(status),
                f"{statistics.median(times):.1f}",
                f"{percentile(times, 0.95):.1f}",
                str(listed) if path.startswith("/ui/calls?") or path == "/ui/calls" else "",
            )
        )
        print(f"{name:40} {status} median {rows[-1][2]:>7} ms  p95 {rows[-1][3]:>7}", flush=True)
    return rows


# The words query of migration 8, kept here as the baseline: a scan of the newest calls
# until 51 hold every word as a substring.
LIKE_QUERY = "SELECT id FROM events WHERE {likes} ORDER BY received_at DESC, id DESC LIMIT 51"


def like_query(words: list[str], dialect: str) -> tuple[str, list[str]]:
    marks = ["?" if dialect == "sqlite" else f"${n + 1}" for n in range(len(words))]
    likes = " AND ".join(f"search_text LIKE {mark}" for mark in marks)
    return LIKE_QUERY.format(likes=likes), [f"%{word}%" for word in words]


WORD_SEARCHES = (["appointment"], ["friday", "refund"], [RARE_WORD], ["xylophone"])


def compare_like(url: str, dialect: str, requests: int) -> list[tuple[str, ...]]:
    """Median ms of the store's words search (`list_events`, a page of 51) and of the
    LIKE scan, same words, same database, one after the other."""
    rows = []
    for words in WORD_SEARCHES:
        searched = statistics.median(store_times(url, list(words), requests))
        text, parameters = like_query(list(words), dialect)
        scanned = statistics.median(timed(url, dialect, text, parameters, requests))
        rows.append(
            (
                " ".join(words),
                f"{searched:.2f}",
                f"{scanned:.2f}",
                f"{scanned / searched:.2g}x",
            )
        )
        print(f"{' '.join(words):20} store {rows[-1][1]} ms  like {rows[-1][2]} ms", flush=True)
    return rows


def store_times(url: str, words: list[str], requests: int) -> list[float]:
    async def run() -> list[float]:
        store = open_store(url, serving=False)
        await store.open(create=False)
        try:
            times = []
            for attempt in range(requests + 1):
                began = time.perf_counter()
                await store.list_events(CallFilters(words=tuple(words)), None, 51)
                if attempt:
                    times.append((time.perf_counter() - began) * 1000)
            return times
        finally:
            await store.close()

    return asyncio.run(run())


def timed(url: str, dialect: str, text: str, parameters: list[str], requests: int) -> list[float]:
    if dialect == "sqlite":
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            times = []
            for attempt in range(requests + 1):
                began = time.perf_counter()
                connection.execute(text, parameters).fetchall()
                if attempt:
                    times.append((time.perf_counter() - began) * 1000)
            return times
        finally:
            connection.close()

    async def run() -> list[float]:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            times = []
            for attempt in range(requests + 1):
                began = time.perf_counter()
                await connection.fetch(text, *parameters)
                if attempt:
                    times.append((time.perf_counter() - began) * 1000)
            return times
        finally:
            await connection.close()

    return asyncio.run(run())


def index_sizes(url: str, dialect: str) -> dict[str, str]:
    """What the full-text search costs on disk, against the calls' own text."""
    if dialect == "sqlite":
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            (page,) = connection.execute("PRAGMA page_size").fetchone()
            found = dict(
                connection.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'events_fts%'"
                    " OR name = 'events' GROUP BY name"
                ).fetchall()
            )
            (text,) = connection.execute("SELECT SUM(length(search_text)) FROM events").fetchone()
            (pages,) = connection.execute("PRAGMA page_count").fetchone()
        finally:
            connection.close()
        fts = sum(size for name, size in found.items() if name.startswith("events_fts"))
        return {
            "search text (characters)": f"{text / 1e6:.0f} MB",
            "FTS5 index (events_fts_*)": f"{fts / 1e6:.0f} MB",
            "database": f"{pages * page / 1e6:.0f} MB",
        }

    async def run() -> dict[str, str]:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            gin = await connection.fetchval("SELECT pg_relation_size('events_search')")
            vectors = await connection.fetchval(
                "SELECT SUM(pg_column_size(search_vector)) FROM events"
            )
            text = await connection.fetchval("SELECT SUM(octet_length(search_text)) FROM events")
            table = await connection.fetchval("SELECT pg_total_relation_size('events')")
        finally:
            await connection.close()
        return {
            "search text": f"{text / 1e6:.0f} MB",
            "search_vector column": f"{vectors / 1e6:.0f} MB",
            "GIN index events_search": f"{gin / 1e6:.0f} MB",
            "events with indexes and TOAST": f"{table / 1e6:.0f} MB",
        }

    return asyncio.run(run())


def postgres_url(base: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={urllib.parse.quote(f'-csearch_path={PG_SCHEMA}')}"


def prepare_postgres(base: str, fresh: bool) -> bool:
    """The bench's own schema; True when it must be filled."""

    async def run() -> bool:
        import asyncpg

        connection = await asyncpg.connect(base)
        try:
            if fresh:
                await connection.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", PG_SCHEMA
            )
            if not exists:
                await connection.execute(f"CREATE SCHEMA {PG_SCHEMA}")
            return not exists
        finally:
            await connection.close()

    return asyncio.run(run())


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="SQLite: keep the store here (default: temp)")
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    parser.add_argument("--fresh", action="store_true", help="PostgreSQL: fill again")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--drop-index", action="append", default=[])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    if args.store == "sqlite":
        dialect = "sqlite"
        db = args.db or folder / "router.db"
        url = f"sqlite:///{db}"
        picks_file = db.with_suffix(".picks.json")
        if not db.exists():
            began = time.monotonic()
            make_schema(url)
            picks_file.write_text(json.dumps(fill_sqlite(db)))
            print(f"filled {db} in {time.monotonic() - began:.0f} s", flush=True)
    else:
        dialect = "postgresql"
        url = postgres_url(args.store)
        picks_file = Path(tempfile.gettempdir()) / f"{PG_SCHEMA}.picks.json"
        if prepare_postgres(args.store, args.fresh) or not picks_file.exists():
            began = time.monotonic()
            make_schema(url)
            picks_file.write_text(json.dumps(asyncio.run(fill_postgres(url))))
            print(f"filled {PG_SCHEMA} in {time.monotonic() - began:.0f} s", flush=True)
    picks = json.loads(picks_file.read_text())
    if dialect == "sqlite":
        for index in args.drop_index:
            with sqlite3.connect(db) as connection:
                connection.execute(f"DROP INDEX IF EXISTS {index}")
        if args.explain:
            explain(db)
    rules = folder / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    argv = [PYTHON, "-m", "router", "serve", "--config", str(rules), "--port", str(port)]
    argv += ["--store", url, "--retention-days", "0", "--log-format", "text"]
    env = {"ROUTER_ADMIN_TOKEN": TOKEN, "ROUTER_API_KEYS": "bench-key"}
    with Proc("router", argv, folder / "router.log", env=env) as router:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", router, timeout=180)
        print(f"{dialect}: {picks['deliveries']:,} deliveries, {EVENTS:,} calls", flush=True)
        rows = measure(base, pages(picks), args.requests)
    compared = compare_like(url, dialect, args.requests)
    sizes = index_sizes(url, dialect)
    print()
    print(table(("page", "status", "median ms", "p95 ms", "calls listed"), rows))
    print()
    print(table(("words", "store search ms", "LIKE scan ms", "LIKE / store"), compared))
    print()
    print(table(("what", "size"), list(sizes.items())))


if __name__ == "__main__":
    main()
