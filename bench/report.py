"""bench/results/latest.md from the results of one run: the tables and the targets."""

from __future__ import annotations

from typing import Any

INGEST_TARGET = 0.4  # routed: router req/s at least 0.4x the bare aiohttp server's
INGEST_NO_MATCH_TARGET = 0.45  # no rule matching
P99_TARGET_MS = 100.0  # end to end, post to arrival
RULES_TARGET_US = 100.0  # 1,000 rules under 100 µs per event
FLAT_MEMORY = 1.10  # peak RSS while draining within 10% of the RSS when it started


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _verdict(met: bool, detail: str) -> str:
    return f"**met** ({detail})" if met else f"**missed** ({detail})"


def _tracing(steps: dict) -> list[str]:
    tracing = steps.get("tracing")
    if not tracing:
        return []
    labels = {
        "before_off": f"code before traces ({tracing.get('before')}), tracing off",
        "off": "this code, tracing off (no OTEL_* variable)",
        "on": "this code, tracing on (OTLP/HTTP to bench/otlp_sink.py, discarded)",
    }
    lines = [
        "## Tracing",
        "",
        f"Load: {tracing['load_generator']}, {tracing['seconds_per_run']:g} s per run, every "
        "call routed to the HTTP sink; variants interleaved, median of the runs.",
        "",
        "| router | req/s answered 200 | p50 ms | p99 ms | server CPU ms per request | runs |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, label in labels.items():
        row = tracing.get(name)
        if not row:
            continue
        each = " / ".join(_num(run.get("ok_per_second")) for run in row["runs"])
        lines.append(
            f"| {label} | {_num(row['ok_per_second'])} | {_num(row['p50_ms'], 2)} | "
            f"{_num(row['p99_ms'], 2)} | {_num(row.get('server_cpu_ms_per_request'), 3)} | "
            f"{each} |"
        )
    return [*lines, ""]


def _ingest(steps: dict) -> list[str]:
    ingest = steps.get("ingest")
    if not ingest:
        return []
    base = ingest["baseline"]
    lines = [
        "## Ingest",
        "",
        f"Load: {ingest['load_generator']}, {ingest['seconds_per_run']:g} s per run, "
        "each request a new call id; median of the runs. The router's rate counts only 200s, "
        "each one an event committed to SQLite before the answer.",
        "",
        "| server | durable | req/s answered 200 | ratio to baseline | ratio to uvloop baseline "
        "| ratio to ceiling | ratio to full ceiling | p50 ms | p99 ms "
        "| server CPU ms per request |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| baseline: bare aiohttp (asyncio loop), reads the body, answers 200 | no | "
        f"{_num(base['ok_per_second'])} | 1.00 | - | - | - | {_num(base['p50_ms'], 2)} | "
        f"{_num(base['p99_ms'], 2)} | {_num(base.get('server_cpu_ms_per_request'), 3)} |",
    ]
    labels = {
        "baseline_uvloop": ("baseline on uvloop", "no"),
        "ceiling": (
            "ceiling: bench/ceiling_server.py (uvloop, orjson, id check, 2 inserts,"
            " one group-committing writer)",
            "event + delivery row, fsync'd",
        ),
        "ceiling_full": (
            "full ceiling: bench/full_ceiling_server.py (the ceiling, then each call sent to"
            " the HTTP sink with one shared client session, its outcome recorded by the same"
            " writer)",
            "event + delivery + outcome + attempt, fsync'd",
        ),
        "router": (
            "router, every call routed to the HTTP sink (workers delivering meanwhile)",
            "event + delivery, fsync'd",
        ),
        "router_no_match": (
            "router, no rule matches (event stored, no delivery)",
            "event, fsync'd",
        ),
        "router_asyncio": (
            "router on asyncio's loop (--loop asyncio), every call routed",
            "event + delivery, fsync'd",
        ),
    }
    for name, (label, durable) in labels.items():
        row = ingest.get(name)
        if row is None:
            continue
        uvloop_ratio = row.get("ratio_to_uvloop_baseline")
        lines.append(
            f"| {label} | {durable} | {_num(row['ok_per_second'])} | "
            f"{row['ratio_to_baseline']:.2f} | "
            f"{'-' if uvloop_ratio is None else f'{uvloop_ratio:.2f}'} | "
            f"{_ratio(row.get('ratio_to_ceiling'))} | "
            f"{_ratio(row.get('ratio_to_full_ceiling'))} | "
            f"{_num(row['p50_ms'], 2)} | "
            f"{_num(row['p99_ms'], 2)} | {_num(row.get('server_cpu_ms_per_request'), 3)} |"
        )
    durability = ingest.get("durability") or {}
    if durability:
        lines += ["", "Store settings (from router/store/sqlite.py): "]
        lines += [f"`{text}`" for text in durability.values()]
    lines.append("")
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _latency(steps: dict) -> list[str]:
    latency = steps.get("latency")
    if not latency:
        return []
    lines = [
        f"## Latency at a fixed {latency['rate']:g} req/s ({latency['seconds']:g} s, open loop, "
        "measured from each request's due time)",
        "",
        "| server | answered 200 | p50 ms | p99 ms | max ms | stalls (requests > 50 ms) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name in ("baseline", "router"):
        row = latency[name]
        spans = row.get("slow_requests")
        stalls = (
            "-"
            if spans is None
            else f"{len(spans)} stalls, {sum(x['requests'] for x in spans)} requests"
        )
        lines.append(
            f"| {name} | {_num(row['ok'])}/{_num(row['sent'])} | {_num(row['p50_ms'], 2)} | "
            f"{_num(row['p99_ms'], 2)} | {_num(row['max_ms'], 2)} | {stalls} |"
        )
    return [*lines, ""]


def _e2e(steps: dict) -> list[str]:
    e2e = steps.get("e2e")
    if not e2e:
        return []
    lines = [
        f"## End to end: {e2e['events']:,} events posted, time until the last one reaches the sink",
        "",
        "| system | keeps events on disk | delivered | seconds to last delivery "
        "| deliveries/s | p99 post-to-arrival ms | server CPU ms per delivery |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = (
        ("router (SQLite, fsync per commit)", "yes", e2e.get("router")),
        ("Alertmanager (memory only)", "no", e2e.get("alertmanager")),
    )
    for label, disk, row in rows:
        if row is None:
            lines.append(f"| {label} | {disk} | not run | - | - | - | - |")
            continue
        delivered = ", ".join(str(run["delivered"]) for run in row["runs"])
        lines.append(
            f"| {label} | {disk} | {delivered} | {_num(row.get('seconds_to_last_delivery'), 2)} | "
            f"{_num(row.get('deliveries_per_second'))} | {_num(row.get('p99_latency_ms'))} | "
            f"{_num(row.get('server_cpu_ms_per_delivery'), 3)} |"
        )
    return [*lines, ""]


def _e2e_postgres(steps: dict) -> list[str]:
    e2e = steps.get("e2e_postgres")
    if not e2e:
        return []
    lines = [
        f"## End to end on PostgreSQL: {e2e['events']:,} events, one and two replicas",
        "",
        "Medians of interleaved runs; CPU ms per delivery: the routers (summed), "
        "PostgreSQL's backends serving them, the sink; busy cores: the whole machine.",
        "",
        "| store, routers | deliveries/s | p99 post-to-arrival ms | routers CPU ms "
        "| PostgreSQL CPU ms | sink CPU ms | machine busy cores | commits per delivery |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "sqlite_1": "SQLite, 1",
        "postgres_1": "PostgreSQL, 1",
        "postgres_2": "PostgreSQL, 2 (posts alternate)",
    }
    for key, label in labels.items():
        row = e2e.get(key) or {}
        lines.append(
            f"| {label} | {_num(row.get('deliveries_per_second'))} "
            f"| {_num(row.get('p99_latency_ms'))} "
            f"| {_num(row.get('server_cpu_ms_per_delivery'), 3)} "
            f"| {_num(row.get('side_cpu_ms_per_delivery'), 3)} "
            f"| {_num(row.get('sink_cpu_ms_per_delivery'), 3)} "
            f"| {_num(row.get('machine_busy_cores'), 2)} "
            f"| {_num(row.get('postgres_commits_per_delivery'), 2)} |"
        )
    ratios = e2e.get("ratios_per_run") or []
    if ratios:
        lines += [
            "",
            "Per run, deliveries/s: PostgreSQL 1 ÷ SQLite 1 "
            + ", ".join(str(r["postgres_1_vs_sqlite_1"]) for r in ratios)
            + "; PostgreSQL 2 ÷ PostgreSQL 1 "
            + ", ".join(str(r["postgres_2_vs_postgres_1"]) for r in ratios)
            + ".",
        ]
    return [*lines, ""]


def _memory(steps: dict) -> list[str]:
    memory = steps.get("memory")
    if not memory:
        return []
    return [
        f"## Memory while a backlog of {memory['ingested']:,} deliveries drains",
        "",
        "Ingested with the sink not configured (deliveries wait in the store), then the sink "
        "was configured by rewriting rules.yaml and sending SIGHUP. VmRSS every 0.5 s.",
        "",
        "| idle MiB | peak while ingesting MiB | drain start MiB | drain peak MiB "
        "| drain end MiB | ingest/s | drain s | drained/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {_num(memory['rss_idle_mib'])} | {_num(memory['rss_ingest_peak_mib'])} | "
        f"{_num(memory['rss_drain_start_mib'])} | {_num(memory['rss_drain_peak_mib'])} | "
        f"{_num(memory['rss_drain_end_mib'])} | {_num(memory['ingest_per_second'])} | "
        f"{_num(memory['drain_seconds'])} | {_num(memory['drain_per_second'])} |",
        "",
    ]


def _rules(steps: dict) -> list[str]:
    rules = steps.get("rules")
    if not rules:
        return []
    lines = [
        "## Rule evaluation (`router.rules.matching.route`, best of 7 timeit repeats,"
        " median of runs)",
        "",
        "Rules generated as rules.yaml text and compiled by `router.config.schema.parse_config`; "
        "the event is samples/failed-outbound.json. `global`: one rule in eight matches every "
        "call; `per-tenant`: 10 global rules, the rest scoped to one organisation or agent.",
        "",
        "| mix | rules | rules matched | µs per event |",
        "| --- | ---: | ---: | ---: |",
    ]
    for mix, table in rules["generated_yaml"].items():
        for count, row in table.items():
            lines.append(
                f"| {mix} | {int(count):,} | {row['matched']} | {_num(row['us_per_event'], 2)} |"
            )
    if rules.get("bench_rules_py"):
        lines += ["", "bench/bench_rules.py (the rules branch's own mixes, 4 events):", ""]
        lines += ["```", rules["bench_rules_py"].rstrip(), "```"]
    return [*lines, ""]


def targets(steps: dict) -> list[tuple[str, str]]:
    found = []
    ingest = steps.get("ingest")
    if ingest:
        for name, target, what in (
            ("router", INGEST_TARGET, "routed to an HTTP sink"),
            ("router_no_match", INGEST_NO_MATCH_TARGET, "no rule matching"),
        ):
            ratio = ingest[name]["ratio_to_baseline"]
            of_ceiling = ingest[name].get("ratio_to_ceiling")
            found.append(
                (
                    f"ingest, {what}: >= {target:.2f}x bare aiohttp, every accepted event fsync'd",
                    _verdict(
                        ratio >= target,
                        f"{ratio:.2f}x"
                        + ("" if of_ceiling is None else f" ({of_ceiling:.2f}x the ceiling)"),
                    ),
                )
            )
        # Issue #31: against the limits of our own stack, each path its own ceiling.
        for name, ratio_name, target, what in (
            ("router", "ratio_to_full_ceiling", 0.9, "routed, of the full one-process ceiling"),
            ("router_no_match", "ratio_to_ceiling", 0.8, "no rule matching, of the ceiling"),
        ):
            ratio = ingest[name].get(ratio_name)
            if ratio is not None:
                found.append(
                    (
                        f"ingest, {what}: >= {target:.2f}x",
                        _verdict(ratio >= target, f"{ratio:.2f}x"),
                    )
                )
    e2e = steps.get("e2e") or {}
    ours, theirs = e2e.get("router"), e2e.get("alertmanager")
    if (
        ours
        and theirs
        and ours.get("deliveries_per_second")
        and theirs.get("deliveries_per_second")
    ):
        ratio = ours["deliveries_per_second"] / theirs["deliveries_per_second"]
        found.append(
            (
                "end-to-end deliveries/s >= Alertmanager's",
                _verdict(ratio >= 1.0, f"{ratio:.2f}x Alertmanager"),
            )
        )
        p99 = ours.get("p99_latency_ms")
        if p99 is not None:
            found.append(
                (
                    f"p99 post-to-arrival <= {P99_TARGET_MS:.0f} ms",
                    _verdict(p99 <= P99_TARGET_MS, f"{p99:.0f} ms"),
                )
            )
    memory = steps.get("memory")
    if memory and memory.get("rss_drain_start_mib"):
        growth = memory["rss_drain_peak_mib"] / memory["rss_drain_start_mib"]
        found.append(
            (
                f"flat memory under a {memory['ingested']:,} backlog (drain peak <= 110% of start)",
                _verdict(
                    growth <= FLAT_MEMORY and memory["drain_complete"],
                    f"peak {growth:.0%} of start"
                    + ("" if memory["drain_complete"] else ", drain did not finish"),
                ),
            )
        )
    rules = (steps.get("rules") or {}).get("generated_yaml", {})
    for mix, table in rules.items():
        if "1000" in table:
            cost = table["1000"]["us_per_event"]
            found.append(
                (
                    f"1,000 rules < 100 µs per event ({mix} mix)",
                    _verdict(cost < RULES_TARGET_US, f"{cost:.1f} µs"),
                )
            )
    return found


def render_markdown(results: dict) -> str:
    machine = results["machine"]
    steps = results["steps"]
    lines = [
        "# Benchmark results",
        "",
        f"`{results['command']}` at {results['started_at']}, {results.get('seconds', '?')} s, "
        f"{results['runs']} run(s) per measurement{' (quick mode)' if results['quick'] else ''}.",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, SQLite {machine['sqlite']}, Linux {machine['kernel']}, "
        f"{machine['wrk']}, {machine['alertmanager']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine['loadavg_at_start'])}.",
        "",
    ]
    fsync = machine.get("fsync")
    if fsync:
        lines += [
            f"Disk under the stores: fdatasync of 8 KiB every 5 ms for 5 s: p50 "
            f"{fsync['p50_ms']} ms, p99 {fsync['p99_ms']} ms, max {fsync['max_ms']} ms, "
            f"{fsync['over_100ms']} over 100 ms.",
            "",
        ]
    found = targets(steps)
    if found:
        lines += ["## Targets", "", "| target | result |", "| --- | --- |"]
        lines += [f"| {name} | {verdict} |" for name, verdict in found]
        lines.append("")
    for section in (_ingest, _latency, _e2e, _e2e_postgres, _memory, _rules, _tracing):
        lines += section(steps)
    profile = steps.get("profile")
    if profile:
        lines += ["## Profile (py-spy, non-idle samples per thread, top self time)", ""]
        for name, threads in profile.items():
            for thread, summary in threads.items():
                if thread == "all":
                    continue
                lines.append(f"**{name}, {thread}** ({summary['samples']} samples):")
                lines.append("")
                lines += [f"- {row['percent']}% {row['frame']}" for row in summary["self"][:8]]
                lines.append("")
    for step, error in results.get("errors", {}).items():
        lines += [f"## Step {step} failed", "", "```", error.strip()[-1500:], "```", ""]
    return "\n".join(lines)
