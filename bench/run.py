"""The benchmark, in one command: ingest, end-to-end, memory under backlog, rule cost.

    python bench/run.py            # full run (about 10 minutes on 2 cores)
    python bench/run.py --quick    # a fast pass for development (20,000-event backlog, 1 run)
    python bench/run.py --steps ingest,rules --runs 1
    python bench/run.py --profile  # also py-spy the router under ingest and drain

Writes bench/results/latest.json and bench/results/latest.md; process logs, databases
and profiles go to bench/results/raw/ (not committed). Every server runs as its own
process on 127.0.0.1 and is stopped when its step ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import alertmanager
import wrk_load
from procs import (
    BENCH_DIR,
    PYTHON,
    ROOT,
    cpu_seconds,
    free_port,
    rss_kib,
    run_json_tool,
    wait_http,
)
from report import render_markdown
from scenarios import Baseline, Ceiling, FullCeiling, OtlpSink, Router, Sink, router_rules

RESULTS = BENCH_DIR / "results"
RAW = RESULTS / "raw"
STEPS = ("ingest", "latency", "e2e", "memory", "rules", "tracing")
# Not in a default run (needs a PostgreSQL server): `--steps e2e_postgres`.
EXTRA_STEPS = ("e2e_postgres",)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def median_of(runs: list[dict], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import aiohttp

    wrk_version = "not installed"
    if wrk_load.available():
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = (done.stdout or done.stderr).splitlines()[0].strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "wrk": wrk_version,
        "alertmanager": alertmanager.version(),
        "loadavg_at_start": os.getloadavg(),
    }


def fsync_probe(directory: Path, seconds: float = 5.0) -> dict:
    """fdatasync latency of the disk the stores live on: 8 KiB written, then synced,
    every 5 ms. A durable ingest cannot answer faster than this disk."""
    path = directory / "fsync-probe.tmp"
    latencies = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            os.write(fd, b"x" * 8192)
            began = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - began)
            time.sleep(0.005)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    latencies.sort()
    return {
        "syncs": len(latencies),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(0.99 * len(latencies))], 2),
        "max_ms": round(1000 * latencies[-1], 1),
        "over_100ms": sum(1 for value in latencies if value > 0.1),
    }


def loadgen(url: str, *extra: str, timeout: float = 900) -> dict:
    return run_json_tool([PYTHON, "bench/loadgen.py", "--url", url, *extra], timeout=timeout)


def closed_loop(url: str, seconds: float, script: Path | None, pid: int | None = None) -> dict:
    """Closed-loop throughput: wrk when installed, else the Python load generator; with
    `pid`, also the server's CPU time per request answered 200 (all its threads)."""
    before = cpu_seconds(pid) if pid else None
    if script is not None:
        result = wrk_load.run(url, script, connections=32, seconds=seconds)
    else:
        result = loadgen(url, "--concurrency", "32", "--duration", str(seconds))
    after = cpu_seconds(pid) if pid else None
    if before is not None and after is not None and result["ok"]:
        result["server_cpu_seconds"] = round(after - before, 2)
        result["server_cpu_ms_per_request"] = round(1000 * (after - before) / result["ok"], 3)
    return result


# --- step 1: ingest ------------------------------------------------------------------


# name: (does every call match a rule, event loop of the router)
ROUTER_INGEST_VARIANTS = {
    "router": (True, "auto"),
    "router_no_match": (False, "auto"),
    "router_asyncio": (True, "asyncio"),
}


def router_rules_for(work: Path, match: bool):
    return lambda sink_url: router_rules(sink_url, match=match)


def step_ingest(args: argparse.Namespace, work: Path) -> dict:
    script = wrk_load.write_script(work / "ingest.lua") if wrk_load.available() else None
    variants: dict[str, list[dict]] = {
        name: []
        for name in (
            "baseline",
            "baseline_uvloop",
            "ceiling",
            "ceiling_full",
            *ROUTER_INGEST_VARIANTS,
        )
    }
    for run in range(args.runs):
        for name, loop in (("baseline", "asyncio"), ("baseline_uvloop", "uvloop")):
            log(f"ingest run {run + 1}/{args.runs}: {name}")
            with Baseline(work, loop) as baseline:
                closed_loop(baseline.url, 1, script)  # warm-up
                variants[name].append(
                    closed_loop(baseline.url, args.seconds, script, baseline.proc.pid)
                )
        log(f"ingest run {run + 1}/{args.runs}: ceiling")
        with Ceiling(work) as ceiling:
            closed_loop(ceiling.url, 1, script)  # warm-up
            variants["ceiling"].append(
                closed_loop(ceiling.url, args.seconds, script, ceiling.proc.pid)
            )
        log(f"ingest run {run + 1}/{args.runs}: ceiling_full")
        with Sink(work) as sink, FullCeiling(work, sink.url) as full:
            closed_loop(full.url, 1, script)  # warm-up
            variants["ceiling_full"].append(
                closed_loop(full.url, args.seconds, script, full.proc.pid)
            )
        for name, (match, loop) in ROUTER_INGEST_VARIANTS.items():
            log(f"ingest run {run + 1}/{args.runs}: {name}")
            rules = router_rules_for(work, match)
            with Sink(work) as sink, Router(work, rules(sink.url), loop=loop) as router:
                result = closed_loop(router.url, args.seconds, script, router.proc.pid)
                result["accepted_by_metrics"] = router.metric_sum(
                    "events_received_total", outcome="accepted"
                )
                variants[name].append(result)
    summary = {
        name: {
            "ok_per_second": median_of(runs, "ok_per_second"),
            "p50_ms": median_of(runs, "p50_ms"),
            "p99_ms": median_of(runs, "p99_ms"),
            "server_cpu_ms_per_request": median_of(runs, "server_cpu_ms_per_request"),
            "runs": runs,
        }
        for name, runs in variants.items()
    }
    base = summary["baseline"]["ok_per_second"]
    base_uvloop = summary["baseline_uvloop"]["ok_per_second"]
    ceiling = summary["ceiling"]["ok_per_second"]
    full = summary["ceiling_full"]["ok_per_second"]
    for name in ("ceiling", "ceiling_full", *ROUTER_INGEST_VARIANTS):
        # Issue #31: a routed call against the full ceiling, any call against ingest alone.
        summary[name]["ratio_to_full_ceiling"] = round(summary[name]["ok_per_second"] / full, 3)
    for name in ("baseline_uvloop", "ceiling", "ceiling_full", *ROUTER_INGEST_VARIANTS):
        summary[name]["ratio_to_baseline"] = round(summary[name]["ok_per_second"] / base, 3)
        summary[name]["ratio_to_ceiling"] = round(summary[name]["ok_per_second"] / ceiling, 3)
        summary[name]["ratio_to_uvloop_baseline"] = round(
            summary[name]["ok_per_second"] / base_uvloop, 3
        )
    summary["load_generator"] = "wrk -t1 -c32" if script else "bench/loadgen.py x32"
    summary["seconds_per_run"] = args.seconds
    summary["durability"] = durability_settings()
    return summary


# --- step: tracing ---------------------------------------------------------------------

# The router's ingest (every call routed to the HTTP sink) three ways: the code given by
# `--before` (a checkout from before traces) and this code, both with tracing off, and
# this code exporting every span to bench/otlp_sink.py, which discards them.
TRACING_VARIANTS = ("before_off", "off", "on")


def step_tracing(args: argparse.Namespace, work: Path) -> dict:
    script = wrk_load.write_script(work / "ingest.lua") if wrk_load.available() else None
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]  # "off" is off: none of OpenTelemetry's variables
    names = [n for n in TRACING_VARIANTS if n != "before_off" or args.before]
    variants: dict[str, list[dict]] = {name: [] for name in names}
    for run in range(args.runs):
        shift = run % len(names)  # each variant goes first in turn
        for name in names[shift:] + names[:shift]:
            log(f"tracing run {run + 1}/{args.runs}: {name}")
            code = Path(args.before).resolve() if name == "before_off" else None
            with Sink(work) as sink, OtlpSink(work) as otlp:
                env = {}
                if name == "on":
                    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.base}
                rules = router_rules(sink.url)
                with Router(work, rules, name=f"tracing-{name}", code=code, env=env) as router:
                    result = closed_loop(router.url, args.seconds, script, router.proc.pid)
                    result["otlp_exports"] = otlp.stats()  # during the load
                variants[name].append(result)
    summary: dict = {
        name: {
            "ok_per_second": median_of(runs, "ok_per_second"),
            "p50_ms": median_of(runs, "p50_ms"),
            "p99_ms": median_of(runs, "p99_ms"),
            "server_cpu_ms_per_request": median_of(runs, "server_cpu_ms_per_request"),
            "runs": runs,
        }
        for name, runs in variants.items()
    }
    summary["before"] = args.before
    summary["load_generator"] = "wrk -t1 -c32" if script else "bench/loadgen.py x32"
    summary["seconds_per_run"] = args.seconds
    return summary


def durability_settings() -> dict:
    """What the SQLite store sets (from its source) for the table's durability column."""
    source = ROOT / "router" / "store" / "sqlite.py"
    if not source.exists():
        return {"store_source": "router/store/sqlite.py missing"}
    text = source.read_text()
    found = {}
    for pragma in ("synchronous", "journal_mode"):
        for line in text.splitlines():
            if pragma in line.lower() and "pragma" in line.lower():
                found[pragma] = line.strip()
                break
    return found


# --- step 1b: latency at a fixed, moderate rate ----------------------------------------


def step_latency(args: argparse.Namespace, work: Path) -> dict:
    rate, seconds = str(args.rate), str(args.latency_seconds)
    fixed = ("--rate", rate, "--duration", seconds, "--concurrency", "64")
    log(f"latency at {rate}/s: baseline")
    with Baseline(work) as baseline:
        base = loadgen(baseline.url, *fixed)
    log(f"latency at {rate}/s: router")
    trace = work / "latency-trace-router.json"
    with Sink(work) as sink, Router(work, router_rules(sink.url)) as router:
        ours = loadgen(router.url, *fixed, "--trace", str(trace))
    ours["slow_requests"] = slow_spans(json.loads(trace.read_text()))
    return {"rate": args.rate, "seconds": args.latency_seconds, "baseline": base, "router": ours}


def slow_spans(trace: list[list[float]], over: float = 0.05) -> list[dict]:
    """When the slow requests (latency over `over` s) were due, as runs of due times."""
    spans: list[dict] = []
    for due, latency in trace:
        if latency <= over:
            continue
        if spans and due - spans[-1]["to_s"] < 0.1:
            spans[-1]["to_s"] = due
            spans[-1]["requests"] += 1
            spans[-1]["worst_ms"] = max(spans[-1]["worst_ms"], round(latency * 1000, 1))
        else:
            spans.append(
                {"from_s": due, "to_s": due, "requests": 1, "worst_ms": round(latency * 1000, 1)}
            )
    return spans


# --- step 2: end to end ----------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(CPU seconds all cores spent busy so far, monotonic seconds): /proc/stat's first
    line, everything but idle and iowait."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def end_to_end(
    sink: Sink,
    post_url: str | list[str],
    body_format: str,
    count: int,
    work: Path,
    pid: int | list[int] | None = None,
    side_cpu: Callable[[], dict[int, float]] | None = None,
) -> dict:
    """`count` posts, until the last arrives; with `pid`, the server's CPU time per
    delivery over that span (all its threads): steadier than rates on a shared machine.
    Several URLs: the posts alternate between them; several pids: their CPU is summed.
    `side_cpu`: {pid: CPU seconds} of other processes (PostgreSQL's backends), whose
    growth over the span is reported per delivery too (a pid new at the end counts whole)."""
    times_file = work / f"post-times-{body_format}.json"
    urls = [post_url] if isinstance(post_url, str) else post_url
    pids = [] if pid is None else [pid] if isinstance(pid, int) else pid

    def cpu_now() -> float | None:
        samples = [cpu_seconds(p) for p in pids]
        return sum(samples) if pids and None not in samples else None  # type: ignore[arg-type]

    cpu_before = cpu_now()
    side_before = side_cpu() if side_cpu else {}
    sink_before, busy_before = cpu_seconds(sink.proc.pid), machine_busy()
    posted = loadgen(
        urls[0],
        *(arg for url in urls[1:] for arg in ("--url", url)),
        "--format",
        body_format,
        "--count",
        str(count),
        "--concurrency",
        "32",
        "--duration",
        "300",
        "--post-times",
        str(times_file),
    )
    finished = sink.wait_for(count, limit=300)
    cpu_after = cpu_now()
    sink_after, busy_after = cpu_seconds(sink.proc.pid), machine_busy()
    side_after = side_cpu() if side_cpu else {}
    side_seconds = sum(cpu - side_before.get(p, 0.0) for p, cpu in side_after.items())
    arrivals = sink.arrivals()
    post_times = json.loads(times_file.read_text())
    latencies = sorted(arrivals[i] - t for i, t in post_times.items() if i in arrivals)
    first_post = min(post_times.values())
    last_arrival = max(arrivals.values()) if arrivals else None
    span = (last_arrival - first_post) if last_arrival else None
    return {
        "posted_ok": posted["ok"],
        "post_seconds": posted["seconds"],
        "delivered": len(arrivals),
        "complete": finished is not None,
        "seconds_to_last_delivery": round(span, 3) if span else None,
        "deliveries_per_second": round(len(arrivals) / span, 1) if span else None,
        "p50_latency_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_latency_ms": (
            round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
            if latencies
            else None
        ),
        "sink_posts": sink.stats()["posts"],
        "server_cpu_ms_per_delivery": (
            round(1000 * (cpu_after - cpu_before) / len(arrivals), 3)
            if cpu_before is not None and cpu_after is not None and arrivals
            else None
        ),
        "sink_cpu_ms_per_delivery": (
            round(1000 * (sink_after - sink_before) / len(arrivals), 3)
            if sink_before is not None and sink_after is not None and arrivals
            else None
        ),
        # every process on the machine (the client, other users too), over the whole span
        # from the first post until the last arrival was counted
        "machine_busy_cores": round(
            (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]), 2
        ),
        **(
            {
                "side_processes": len(side_after),
                "side_cpu_ms_per_delivery": (
                    round(1000 * side_seconds / len(arrivals), 3) if arrivals else None
                ),
            }
            if side_cpu
            else {}
        ),
    }


def step_e2e(args: argparse.Namespace, work: Path) -> dict:
    count = args.events
    ours, theirs = [], []
    for run in range(args.runs):
        log(f"end-to-end run {run + 1}/{args.runs}: router, {count} events")
        with Sink(work) as sink, Router(work, router_rules(sink.url)) as router:
            ours.append(end_to_end(sink, router.url, "revring", count, work, router.proc.pid))
        if alertmanager.binary() is None:
            continue
        log(f"end-to-end run {run + 1}/{args.runs}: alertmanager, {count} alerts")
        with Sink(work) as sink:
            port = free_port()
            with alertmanager.process(work / f"am-{run}", port, sink.port) as manager:
                wait_http(f"http://127.0.0.1:{port}/-/ready", manager)
                url = f"http://127.0.0.1:{port}/api/v2/alerts"
                theirs.append(end_to_end(sink, url, "alertmanager", count, work, manager.pid))

    def summary(runs: list[dict]) -> dict | None:
        if not runs:
            return None
        keys = (
            "seconds_to_last_delivery",
            "deliveries_per_second",
            "p99_latency_ms",
            "server_cpu_ms_per_delivery",
        )
        return {
            **{key: median_of(runs, key) for key in keys if all(r[key] for r in runs)},
            "complete": all(r["complete"] for r in runs),
            "runs": runs,
        }

    return {
        "events": count,
        "router": summary(ours),
        "alertmanager": summary(theirs),
        "sink_concurrency": 32,
    }


# --- end to end on PostgreSQL: one and two replicas ------------------------------------

POSTGRES_URL = os.environ.get(
    "ROUTER_BENCH_POSTGRES_URL",
    os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)


def postgres(sql: str) -> list:
    """Run one statement on the bench's PostgreSQL (asyncpg, a fresh connection)."""
    import asyncio

    import asyncpg

    async def go() -> list:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return asyncio.run(go())


def transactions() -> int:
    """Transactions committed in the bench's database so far (every schema, every client:
    other users of the server count too)."""
    rows = postgres("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0]["xact_commit"])


def backend_cpu(application_name: str) -> Callable[[], dict[int, float]]:
    """{pid: CPU seconds} of the PostgreSQL backends serving `application_name` (the
    routers' pools; their LISTEN connection has its own name and is left out). Reads
    /proc, so the server must run on this machine."""

    def sample() -> dict[int, float]:
        rows = postgres(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{application_name}'"
        )
        found = {row["pid"]: cpu_seconds(row["pid"]) for row in rows}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    return sample


def step_e2e_postgres(args: argparse.Namespace, work: Path) -> dict:
    """The end-to-end scenario (same calls, sink, rules) on one router with SQLite, one
    router with PostgreSQL and two routers sharing one PostgreSQL schema, the client
    posting alternately to both; interleaved, `--runs` times."""
    count = args.events
    variants: dict[str, list[dict]] = {"sqlite_1": [], "postgres_1": [], "postgres_2": []}
    for run in range(args.runs):
        for name in variants:
            log(f"end-to-end on {name} run {run + 1}/{args.runs}: {count} events")
            replicas = int(name.rsplit("_", 1)[1])
            schema = f"bench_{os.getpid()}_{run}_{name}"
            store = None
            if name.startswith("postgres"):
                postgres(f"CREATE SCHEMA {schema}")
                separator = "&" if "?" in POSTGRES_URL else "?"
                store = (
                    f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
                    f"&application_name={schema}"
                )
            try:
                with Sink(work) as sink, contextlib.ExitStack() as stack:
                    routers = [
                        stack.enter_context(
                            Router(
                                work / f"{name}-{run}",
                                router_rules(sink.url),
                                name=f"router-{index}",
                                store=store,
                            )
                        )
                        for index in range(replicas)
                    ]
                    commits_before = transactions() if store else 0
                    variants[name].append(
                        end_to_end(
                            sink,
                            [router.url for router in routers],
                            "revring",
                            count,
                            work,
                            [router.proc.pid for router in routers],
                            side_cpu=backend_cpu(schema) if store else None,
                        )
                    )
                    if store:
                        done = variants[name][-1]
                        done["postgres_commits_per_delivery"] = round(
                            (transactions() - commits_before) / max(1, done["delivered"]), 2
                        )
            finally:
                if store:
                    postgres(f"DROP SCHEMA {schema} CASCADE")
            log(f"  {name}: {json.dumps(variants[name][-1])}")

    def summary(runs: list[dict]) -> dict:
        keys = (
            "deliveries_per_second",
            "p99_latency_ms",
            "server_cpu_ms_per_delivery",
            "side_cpu_ms_per_delivery",
            "sink_cpu_ms_per_delivery",
            "machine_busy_cores",
            "postgres_commits_per_delivery",
        )
        return {
            **{key: median_of(runs, key) for key in keys if all(r.get(key) for r in runs)},
            "complete": all(r["complete"] for r in runs),
            "runs": runs,
        }

    ratios = [
        {
            "postgres_1_vs_sqlite_1": round(
                variants["postgres_1"][i]["deliveries_per_second"]
                / variants["sqlite_1"][i]["deliveries_per_second"],
                2,
            ),
            "postgres_2_vs_postgres_1": round(
                variants["postgres_2"][i]["deliveries_per_second"]
                / variants["postgres_1"][i]["deliveries_per_second"],
                2,
            ),
        }
        for i in range(args.runs)
        if all(variants[v][i].get("deliveries_per_second") for v in variants)
    ]
    return {
        "events": count,
        "sink_concurrency": 32,
        **{name: summary(runs) for name, runs in variants.items()},
        "ratios_per_run": ratios,
    }


# --- step 3: memory under backlog ------------------------------------------------------


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds, tagged with the current phase."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.phase = "start"
        self.samples: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(self.interval):
            rss = rss_kib(self.pid)
            if rss is None:
                return
            self.samples.append((round(time.monotonic() - began, 2), self.phase, rss))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def of(self, phase: str) -> list[int]:
        return [rss for _, name, rss in self.samples if name == phase]


def step_memory(args: argparse.Namespace, work: Path, profile: Callable | None = None) -> dict:
    count = args.backlog
    with (
        Sink(work) as sink,
        Router(work, router_rules(""), name="backlog") as router,
        RssSampler(router.proc.pid) as rss,
    ):
        time.sleep(2)
        rss.phase = "ingest"
        log(f"memory: ingesting {count} events while the sink is not configured")
        ingest = loadgen(
            router.url, "--count", str(count), "--concurrency", "64", "--duration", "900"
        )
        rss.phase = "drain"
        router.rules.write_text(router_rules(sink.url))
        drain_started = time.time()
        router.proc.signal(signal.SIGHUP)
        log(f"memory: sink configured (SIGHUP); draining {ingest['ok']} deliveries")
        if profile is not None:
            profile(router.proc.pid, "drain")
        finished = sink.wait_for(ingest["ok"], limit=args.drain_limit, poll=0.25)
        drained = sink_count(sink)
        rss.phase = "end"
        time.sleep(2)
    drain = rss.of("drain")
    idle = rss.of("start")
    result = {
        "backlog": count,
        "ingested": ingest["ok"],
        "ingest_per_second": ingest["ok_per_second"],
        "drained": drained,
        "drain_complete": finished is not None,
        "drain_seconds": round(finished - drain_started, 1) if finished else None,
        "drain_per_second": (
            round(ingest["ok"] / (finished - drain_started), 1) if finished else None
        ),
        "rss_idle_mib": mib(max(idle)) if idle else None,
        "rss_ingest_peak_mib": mib(max(rss.of("ingest"))) if rss.of("ingest") else None,
        "rss_drain_start_mib": mib(drain[0]) if drain else None,
        "rss_drain_peak_mib": mib(max(drain)) if drain else None,
        "rss_drain_end_mib": mib(drain[-1]) if drain else None,
        "samples": rss.samples,
    }
    return result


def sink_count(sink: Sink) -> int | None:
    try:
        return int(sink.stats()["unique"])
    except OSError:
        return None


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


# --- step 4: rule evaluation -----------------------------------------------------------


def step_rules(args: argparse.Namespace, work: Path) -> dict:
    runs = []
    for run in range(args.runs):
        log(f"rules run {run + 1}/{args.runs}")
        done = subprocess.run(
            [PYTHON, "bench/rules_eval.py", "10", "100", "1000"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rules_eval failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    table: dict[str, dict[str, dict]] = {}
    for index, first in enumerate(runs[0]):
        values = [run[index]["us_per_event"] for run in runs]
        table.setdefault(first["mix"], {})[str(first["rules"])] = {
            "us_per_event": statistics.median(values),
            "matched": first["matched"],
            "runs": values,
        }
    result: dict = {"generated_yaml": table}
    from_rules_branch = BENCH_DIR / "bench_rules.py"
    if from_rules_branch.exists():
        log("rules: bench/bench_rules.py (from the rules branch)")
        done = subprocess.run(
            [PYTHON, str(from_rules_branch)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            check=False,
        )
        result["bench_rules_py"] = done.stdout if done.returncode == 0 else done.stderr[-2000:]
    return result


# --- profiling -------------------------------------------------------------------------


def py_spy() -> str | None:
    return shutil.which("py-spy") or (
        str(Path(PYTHON).with_name("py-spy")) if Path(PYTHON).with_name("py-spy").exists() else None
    )


class Profiler:
    """py-spy record (non-blocking) of a process for a while, in the background."""

    def __init__(self, work: Path, seconds: float) -> None:
        self.work, self.seconds = work, seconds
        self.running: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def __call__(self, pid: int, name: str) -> None:
        binary = py_spy()
        if binary is None:
            log("py-spy not found: no profile")
            return
        out = self.work / f"profile-{name}.txt"
        argv = [binary, "record", "--pid", str(pid), "--duration", str(int(self.seconds))]
        argv += ["--rate", "100", "--nonblocking", "--threads", "--format", "raw", "-o", str(out)]
        with (self.work / f"py-spy-{name}.log").open("wb") as log_file:
            popen = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
        self.running.append((name, popen, out))

    def collect(self) -> dict:
        from profile_summary import summarize

        found = {}
        for name, popen, out in self.running:
            try:
                popen.wait(self.seconds + 30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
            if out.exists():
                found[name] = summarize(out)
        self.running.clear()
        return found


def step_profile(args: argparse.Namespace, work: Path) -> dict:
    profiler = Profiler(work, seconds=args.seconds)
    script = wrk_load.write_script(work / "profile.lua") if wrk_load.available() else None
    log("profile: router under ingest load")
    with Sink(work) as sink, Router(work, router_rules(sink.url), name="profiled") as router:
        profiler(router.proc.pid, "ingest")
        closed_loop(router.url, args.seconds, script)
        found = profiler.collect()
    log("profile: router draining a backlog")
    drain_args = argparse.Namespace(**{**vars(args), "backlog": args.profile_backlog})
    step_memory(drain_args, work, profile=profiler)
    found.update(profiler.collect())
    return found


# --- main ------------------------------------------------------------------------------


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the run like Ctrl-C: every `with` block stops its processes."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated: {STEPS}")
    parser.add_argument(
        "--runs", type=int, default=None, help="repeats; the median is reported (3; --quick: 1)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per throughput run")
    parser.add_argument("--rate", type=float, default=200.0, help="fixed rate for latency")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=5000, help="end-to-end events")
    parser.add_argument("--backlog", type=int, default=100_000, help="memory step backlog")
    parser.add_argument("--drain-limit", type=float, default=900.0, help="seconds")
    parser.add_argument("--profile", action="store_true", help="also profile with py-spy")
    parser.add_argument("--profile-backlog", type=int, default=20_000)
    parser.add_argument("--output", default=str(RESULTS / "latest"), help="path without suffix")
    parser.add_argument("--keep-db", action="store_true", help="keep the SQLite files in raw/")
    parser.add_argument(
        "--before",
        default=None,
        help="tracing step: a checkout of the code before traces, run with tracing off too",
    )
    args = parser.parse_args()
    runs_given = args.runs
    if args.quick:
        args.runs, args.seconds, args.backlog = 1, 4.0, min(args.backlog, 20_000)
        args.latency_seconds, args.profile_backlog = 5.0, min(args.profile_backlog, 5_000)
    args.runs = runs_given or args.runs or 3
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS) - set(EXTRA_STEPS) - {"profile"}
    if unknown:
        parser.error(f"unknown steps: {sorted(unknown)}")
    if args.profile and "profile" not in steps:
        steps.append("profile")

    work = RAW / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "quick": args.quick,
        "runs": args.runs,
        "machine": {**machine(), "fsync": fsync_probe(work)},
        "steps": {},
        "errors": {},
    }
    handlers = {
        "ingest": step_ingest,
        "latency": step_latency,
        "e2e": step_e2e,
        "e2e_postgres": step_e2e_postgres,
        "memory": step_memory,
        "rules": step_rules,
        "tracing": step_tracing,
        "profile": step_profile,
    }
    began = time.monotonic()
    try:
        for step in steps:
            try:
                results["steps"][step] = handlers[step](args, work)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                log(f"step {step} failed: {exc}")
                results["errors"][step] = str(exc)[-3000:]
    finally:
        results["seconds"] = round(time.monotonic() - began, 1)
        results["raw_dir"] = str(work.relative_to(ROOT))
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        output.with_suffix(".md").write_text(render_markdown(results))
        if not args.keep_db:
            for path in work.glob("*.db*"):
                path.unlink(missing_ok=True)
        log(f"wrote {output.with_suffix('.md')} and .json ({results['seconds']} s)")


if __name__ == "__main__":
    main()
