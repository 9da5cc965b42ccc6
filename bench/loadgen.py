"""An aiohttp load generator: each request a fresh call id, results as one JSON line.

Two modes, both bounded in count and time:

- closed loop (default): `--concurrency` connections, each sending its next request as
  soon as the previous one is answered, until `--count` requests or `--duration` seconds;
- fixed rate (`--rate R`): request i is due at start + i/R whatever happened before
  (open loop), and its latency counts from that due time, so a slow server cannot hide
  its queueing (no coordinated omission).

Bodies: `revring` is samples/failed-outbound.json with a new `id`; `alertmanager` is a
one-alert list for Alertmanager's /api/v2/alerts with the id as label `call_id`.
`--post-times FILE` writes {call id: unix time the request was sent} for end-to-end
latency.

    python bench/loadgen.py --url http://127.0.0.1:8080/webhooks/revring --count 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "failed-outbound.json"

BodyMaker = Callable[[str], bytes]


def revring_body_maker() -> BodyMaker:
    sample = json.loads(SAMPLE.read_text())
    before, after = orjson.dumps({**sample, "id": "@@ID@@"}).split(b"@@ID@@")
    return lambda call_id: before + call_id.encode() + after


def alertmanager_body_maker() -> BodyMaker:
    def make(call_id: str) -> bytes:
        alert = {
            "labels": {"alertname": "CallFailed", "call_id": call_id, "status": "FAILED"},
            "annotations": {"summary": "SIP 503 Service Unavailable from carrier"},
        }
        return orjson.dumps([alert])

    return make


BODY_MAKERS = {"revring": revring_body_maker, "alertmanager": alertmanager_body_maker}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, answered 200 only
    ok: int = 0
    other_status: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    late: int = 0  # fixed rate: requests sent more than 10 ms after their due time
    post_times: dict[str, float] = field(default_factory=dict)
    trace: list[tuple[float, float]] = field(default_factory=list)  # (due offset, latency)

    def record(self, status: int | None, error: str | None, latency: float) -> None:
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
        elif status == 200:
            self.ok += 1
            self.latencies.append(latency)
        else:
            assert status is not None
            self.other_status[status] = self.other_status.get(status, 0) + 1


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def send_one(
    session: aiohttp.ClientSession, url: str, body: bytes, limit: float
) -> tuple[int | None, str | None]:
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=limit),
        ) as answer:
            await answer.read()
            return answer.status, None
    except TimeoutError:
        return None, "timeout"
    except aiohttp.ClientError as exc:
        return None, type(exc).__name__


async def closed_loop(
    args: argparse.Namespace, make: BodyMaker, session: aiohttp.ClientSession, tally: Tally
) -> None:
    deadline = time.monotonic() + args.duration
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while time.monotonic() < deadline and (args.count is None or sent < args.count):
            sent += 1
            call_id = str(uuid.uuid4())
            body = make(call_id)
            if args.post_times:
                tally.post_times[call_id] = time.time()
            began = time.perf_counter()
            url = args.url[sent % len(args.url)]
            status, error = await send_one(session, url, body, args.timeout)
            tally.record(status, error, time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))


async def fixed_rate(
    args: argparse.Namespace, make: BodyMaker, session: aiohttp.ClientSession, tally: Tally
) -> None:
    total = int(args.rate * args.duration)
    if args.count is not None:
        total = min(total, args.count)
    slots = asyncio.Semaphore(args.concurrency)
    start = time.perf_counter()

    async def one(due: float) -> None:
        async with slots:
            if time.perf_counter() - due > 0.010:
                tally.late += 1
            call_id = str(uuid.uuid4())
            body = make(call_id)
            if args.post_times:
                tally.post_times[call_id] = time.time()
            status, error = await send_one(session, args.url[0], body, args.timeout)
            tally.record(status, error, time.perf_counter() - due)
            tally.trace.append((round(due - start, 4), round(time.perf_counter() - due, 4)))

    tasks = []
    for index in range(total):
        due = start + index / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)


async def run(args: argparse.Namespace) -> dict:
    make = BODY_MAKERS[args.format]()
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        first_post = time.time()
        if args.rate:
            await fixed_rate(args, make, session, tally)
        else:
            await closed_loop(args, make, session, tally)
        elapsed = time.perf_counter() - began
    latencies = sorted(tally.latencies)
    if args.post_times:
        await asyncio.to_thread(Path(args.post_times).write_bytes, orjson.dumps(tally.post_times))
    if args.trace:
        await asyncio.to_thread(Path(args.trace).write_bytes, orjson.dumps(sorted(tally.trace)))

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "mode": f"fixed rate {args.rate:g}/s" if args.rate else f"closed loop x{args.concurrency}",
        "sent": tally.ok + sum(tally.other_status.values()) + sum(tally.errors.values()),
        "ok": tally.ok,
        "other_status": tally.other_status,
        "errors": tally.errors,
        "late": tally.late,
        "seconds": round(elapsed, 3),
        "first_post_at": first_post,
        "ok_per_second": round(tally.ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(latencies[-1] if latencies else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", required=True, action="append", help="repeat: closed-loop posts alternate"
    )
    parser.add_argument("--format", choices=sorted(BODY_MAKERS), default="revring")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="upper bound, seconds")
    parser.add_argument("--count", type=int, default=None, help="upper bound, requests")
    parser.add_argument("--rate", type=float, default=0.0, help="fixed rate, requests/s")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--post-times", default=None, help="write {id: send time} here")
    parser.add_argument("--trace", default=None, help="fixed rate: write [[due s, latency s]]")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
