"""How long large bodies hold the router's event loop: /healthz latency while 1 MiB
bodies with large `transcript` arrays are posted.

    python bench/loop_stall.py                       # this checkout
    python bench/loop_stall.py --source /path/to/other/checkout --label before
    python bench/loop_stall.py --deliver   # each call also delivered to a local sink

A probe, in its own process (so the posting client's event loop cannot delay it), sends
GET /healthz on one kept-alive connection every 10 ms (the next one when the last answer
came, if that was later) and records each latency; `--posters` connections post 1 MiB
bodies back to back for `--seconds`. The probe's latency is what any small request waits
for while a large body is decoded, validated and routed. The same probe runs first with
no load (the floor). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from procs import ROOT, Proc, free_port, rss_kib, wait_http

MiB = 1024 * 1024
SAMPLE = json.loads((ROOT / "samples" / "completed-inbound.json").read_text())
RULES = """
version: 1
sinks:
  crm:
    type: http
    url: "${BENCH_SINK_URL:-}"
rules:
  - name: everything
    to: [crm]
"""
SHAPES: dict[str, Any] = {
    "turns": {"role": "assistant", "content": "Thanks for calling, goodbye.", "at": 12.5},
    "empty-objects": {},
}


def large_body(shape: str, size: int = MiB - 512) -> bytes:
    event = {**SAMPLE, "id": str(uuid.uuid4())}
    turn = SHAPES[shape]
    room = size - len(orjson.dumps(event)) - len(',"transcript":[]')
    event["transcript"] = [turn] * (room // (len(orjson.dumps(turn)) + 1))
    return orjson.dumps(event)


def probe(url: str, seconds: float) -> list[float]:
    """GET `url` every 10 ms for `seconds` in this process; the latencies in ms."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    latencies = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        started = time.monotonic()
        connection.request("GET", parts.path)
        connection.getresponse().read()
        latencies.append((time.monotonic() - started) * 1000)
        time.sleep(max(0.010 - (time.monotonic() - started), 0))
    connection.close()
    return latencies


async def probe_elsewhere(url: str, seconds: float) -> list[float]:
    """`probe` in a child process."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--probe",
        url,
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await child.communicate()
    return list(json.loads(output))


async def post_forever(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], stop_at: float
) -> list[int]:
    statuses = []
    index = 0
    while time.monotonic() < stop_at:
        async with session.post(
            url, data=bodies[index % len(bodies)], headers={"Content-Type": "application/json"}
        ) as answer:
            await answer.read()
            statuses.append(answer.status)
        index += 1
    return statuses


def descendants(pid: int) -> list[int]:
    """The processes under `pid`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "probes": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
        "max_ms": round(ordered[-1], 2),
        "over_10ms": sum(1 for value in ordered if value > 10),
    }


async def measure(port: int, shape: str, posters: int, seconds: float) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    # distinct ids: a repeated id is a cheap duplicate answer, not the work measured here
    bodies = [large_body(shape) for _ in range(64)]
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=posters)
    ) as post_session:
        idle = await probe_elsewhere(f"{base}/healthz", 2)
        stop_at = time.monotonic() + seconds
        loaded, *posted = await asyncio.gather(
            probe_elsewhere(f"{base}/healthz", seconds),
            *(
                post_forever(post_session, f"{base}/webhooks/revring", bodies[i::posters], stop_at)
                for i in range(posters)
            ),
        )
    statuses = [status for per_poster in posted for status in per_poster]
    return {
        "shape": shape,
        "body_bytes": len(bodies[0]),
        "transcript_items": len(orjson.loads(bodies[0])["transcript"]),
        "posters": posters,
        "seconds": seconds,
        "posts": len(statuses),
        "posts_not_200": sum(1 for status in statuses if status != 200),
        "healthz_idle": summary(idle),
        "healthz_under_load": summary(loaded),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to run")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--posters", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append")
    parser.add_argument(
        "--deliver",
        action="store_true",
        help="route every call to bench/sink_server.py: each large call is also delivered",
    )
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.seconds)))
        return 0
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="loop-stall-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        work = Path(scratch)
        sink_env = {}
        if args.deliver:
            sink_port = free_port()
            sink_argv = [sys.executable, str(ROOT / "bench" / "sink_server.py")]
            sink = Proc("sink", [*sink_argv, "--port", str(sink_port)], work / "sink.log")
            stack.enter_context(sink)
            wait_http(f"http://127.0.0.1:{sink_port}/_stats", sink)
            sink_env["BENCH_SINK_URL"] = f"http://127.0.0.1:{sink_port}/calls"
        rules = work / "rules.yaml"
        rules.write_text(RULES)
        for shape in args.shape or sorted(SHAPES):
            port = free_port()
            argv = [sys.executable, "-m", "router", "serve", "--no-auth", "--config", str(rules)]
            argv += ["--store", f"sqlite:///{work / f'{shape}.db'}", "--port", str(port)]
            env = {"PYTHONPATH": str(args.source.resolve()), **sink_env}
            with Proc("router", argv, work / f"{shape}.log", env=env, cwd=args.source) as proc:
                wait_http(f"http://127.0.0.1:{port}/healthz", proc)
                result = asyncio.run(measure(port, shape, args.posters, args.seconds))
                result["router_rss_mib"] = round((rss_kib(proc.pid) or 0) / 1024, 1)
                # parse workers, their fork server, multiprocessing's resource tracker
                children = [rss_kib(pid) or 0 for pid in descendants(proc.pid)]
                result["children_rss_mib"] = [round(kib / 1024, 1) for kib in children]
                if sink_env:  # deliveries made by then (the sink counts distinct calls)
                    stats_url = sink_env["BENCH_SINK_URL"].replace("/calls", "/_stats")
                    with urllib.request.urlopen(stats_url, timeout=5) as answer:
                        result["delivered"] = json.loads(answer.read())["unique"]
                results.append(result)
    summary = {"label": args.label, "deliver": args.deliver, "results": results}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
