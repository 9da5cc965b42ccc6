"""Closed-loop ingest load with wrk (C, one thread), each request a fresh call id.

wrk is used for the throughput comparison because on a 2-core machine a Python load
generator saturates its own core before a bare aiohttp server does, which would
flatter the router/baseline ratio. The Lua script builds each body from
samples/failed-outbound.json with a unique id (a per-run random prefix and a counter)
and prints one JSON line with wrk's counts and latency percentiles.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import orjson

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "failed-outbound.json"

LUA = r"""
local before = [==[%(before)s]==]
local after = [==[%(after)s]==]
local prefix = "%(prefix)s"
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local id = prefix .. string.format("%%012x", counter)
  return wrk.format(nil, nil, nil, before .. id .. after)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def write_script(path: Path) -> Path:
    sample = json.loads(SAMPLE.read_text())
    before, after = orjson.dumps({**sample, "id": "@@ID@@"}).decode().split("@@ID@@")
    token = secrets.token_hex(10)
    prefix = f"{token[:8]}-{token[8:12]}-4{token[12:15]}-8{token[15:18]}-"
    path.write_text(LUA % {"before": before, "after": after, "prefix": prefix})
    return path


def run(url: str, script: Path, connections: int, seconds: float) -> dict:
    """Run wrk for `seconds`; return requests answered 2xx per second and latencies."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")),
        None,
    )
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]}{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    failed = raw["status_errors"] + raw["connect_errors"] + raw["read_errors"]
    failed += raw["write_errors"] + raw["timeouts"]
    ok = raw["requests"] - raw["status_errors"]
    seconds_taken = raw["duration_us"] / 1e6
    return {
        "mode": f"wrk closed loop x{connections}",
        "sent": raw["requests"],
        "ok": ok,
        "failed": failed,
        "seconds": round(seconds_taken, 3),
        "ok_per_second": round(ok / seconds_taken, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "raw": raw,
    }
