"""What keeping each attempt's request and response costs (`sinks.exchange`, migration 12).

Two parts, each measured against the same work without the exchange, in one run:

1. Capture and masking, on the event loop's thread: per attempt, `request_seen` and
   `response_seen` (secrets redacted, phone numbers masked, bodies cut at 4 KiB) for the
   HTTP sink's message of a call, against building that message (`Sink.build`) and
   against the router's whole CPU per routed call. Calls: the sample as RevRing sends it
   (2 KB), one with a 40-turn transcript naming numbers (8 KB), a 1 MiB one.
2. The store: `--calls` routed calls written through the router's `SQLiteStore` (and a
   PostgreSQL one with `--postgres URL`) from 32 concurrent tasks, each an ingest and an
   attempt recorded (`finish`), without an exchange and with a realistic one (a 4 KiB
   request, a short answer), `--repeats` times interleaved: calls per second, process
   CPU µs per call, and (SQLite) the database file's size per call.

    python bench/attempt_exchanges.py [--calls 5000] [--repeats 3] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.store import (  # noqa: E402
    AttemptRecord,
    Exchange,
    IngestRecord,
    NewDelivery,
    Store,
    open_store,
)
from router.store.sqlite import SQLiteStore  # noqa: E402
from sinks.base import DeliveryRequest, SinkResources  # noqa: E402
from sinks.exchange import request_seen, response_seen  # noqa: E402
from sinks.http import HttpSink, HttpSinkConfig  # noqa: E402

SAMPLE = json.loads((ROOT / "samples" / "failed-outbound.json").read_text())
TOKEN = "crm-token-0123456789abcdef"


def calls() -> dict[str, dict[str, Any]]:
    transcript = copy.deepcopy(SAMPLE)
    transcript["transcript"] = [
        {"role": "agent", "content": f"Turn {n}: call me back on +1 415 555 01{n:02d} please."}
        for n in range(40)
    ]
    large = copy.deepcopy(SAMPLE)
    large["transcript"] = [{"role": "agent", "content": "x" * 90}] * 11_000
    return {"sample (2 KB)": SAMPLE, "40 turns with numbers": transcript, "1 MiB": large}


def sink(templated: bool) -> HttpSink:
    settings: dict[str, Any] = {
        "type": "http",
        "url": "https://crm.example.com/hooks/calls?api_key=abcdef0123456789",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "signing_secret": "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NQ==",
    }
    if templated:
        settings["body"] = '{"id": {{ id | tojson }}, "summary": {{ summary | tojson }}}'
    return HttpSink("crm", HttpSinkConfig.model_validate(settings), SinkResources())


def capture(crm: HttpSink, message: Any, *, success: bool = False) -> Exchange:
    """The exchange as kept for a failure (in full) or, `success`, as `PostingSink.transmit`
    keeps a success's: no request body, the (small) answer's body kept."""
    secrets = crm.secrets()
    sent = request_seen(
        message.method,
        message.url,
        message.headers.items(),
        message.body,
        secrets=secrets,
        secret_headers=message.secret_headers,
        keep_body=not success,
    )
    answer = [("Content-Type", "application/json"), ("Content-Length", "27"), ("Server", "x")]
    return Exchange(sent, response_seen(200, answer, b'{"id":"crm-42","ok":true}', secrets=secrets))


def microseconds(function: Any, number: int) -> float:
    return 1e6 * min(timeit.repeat(function, number=number, repeat=5)) / number


def capture_costs() -> None:
    print("Capture and masking per attempt, µs (best of 5), against building the message")
    print()
    print("| call | sink body | build µs | capture µs (failure) | capture / build | success µs |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, event in calls().items():
        number = 20 if name == "1 MiB" else 300
        # Each a call of its own (a fresh id, a fresh delivery id), as they come: no cache
        # of masked text (`router.core.phones`) or of headers serves the next one.
        requests = []
        for _ in range(number):
            fresh = {**event, "id": str(uuid.uuid4())}
            body = json.dumps(fresh).encode()
            delivery_id = uuid.uuid4().hex
            requests.append(
                DeliveryRequest(delivery_id, fresh["id"], "crm", "r", fresh, payload=body)
            )
        for templated in (False, True):
            crm = sink(templated)
            messages = [crm.build(request) for request in requests]

            def build_all(crm: HttpSink = crm, requests: list[Any] = requests) -> None:
                for request in requests:
                    crm.build(request)

            def capture_all(crm: HttpSink = crm, messages: list[Any] = messages) -> None:
                for message in messages:
                    capture(crm, message)

            def capture_successes(crm: HttpSink = crm, messages: list[Any] = messages) -> None:
                for message in messages:
                    capture(crm, message, success=True)

            built = microseconds(build_all, 1) / number
            captured = microseconds(capture_all, 1) / number
            succeeded = microseconds(capture_successes, 1) / number
            kind = "template" if templated else "the call as received"
            print(
                f"| {name} | {kind} | {built:.0f} | {captured:.0f} | {captured / built:.2f}"
                f" | {succeeded:.0f} |"
            )


def exchange_of_4_kib() -> Exchange:
    crm = sink(False)
    body = json.dumps(calls()["40 turns with numbers"]).encode()
    request = DeliveryRequest("d-1", "c", "crm", "r", {}, payload=body)
    return capture(crm, crm.build(request))


async def burst(store: Store, count: int, exchange: Exchange | None) -> dict[str, float]:
    await store.open()
    numbers = iter(range(count))
    body = json.dumps(SAMPLE).encode()

    async def sender() -> None:
        for _ in numbers:
            call_id = str(uuid.uuid4())
            delivery = NewDelivery(f"{call_id}:crm", "crm", "r", None, "bench", time.time() + 30)
            await store.ingest(IngestRecord(call_id, body, time.time(), [delivery]))
            attempt = AttemptRecord(1, time.time(), 0.002, "delivered", 200, exchange=exchange)
            await store.finish(delivery.id, "bench", attempt)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(32)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await store.close()
    return {"calls_per_s": count / wall, "cpu_us": 1e6 * cpu / count}


def store_costs(count: int, repeats: int, postgres: str | None) -> None:
    exchange = exchange_of_4_kib()
    kept = len(exchange.request.body.encode()) + len(exchange.response.body.encode())  # type: ignore[union-attr]
    print()
    print(
        f"{count:,} routed calls through the store, 32 in flight, median of {repeats}"
        f" interleaved runs; the exchange keeps {kept:,} bytes of bodies"
    )
    print()
    print("| store | attempts | calls/s | process CPU µs per call | database KB per call |")
    print("| --- | --- | ---: | ---: | ---: |")
    kinds = ["sqlite"] + (["postgresql"] if postgres else [])
    for kind in kinds:
        runs: dict[str, list[dict[str, float]]] = {"without exchange": [], "with exchange": []}
        for _ in range(repeats):
            for name in runs:
                shown = exchange if name == "with exchange" else None
                with tempfile.TemporaryDirectory(prefix="exchange-bench-") as directory:
                    path = Path(directory) / "r.db"
                    if kind == "sqlite":
                        store: Store = SQLiteStore(path)
                    else:
                        assert postgres is not None
                        store = open_store(postgres)
                    figures = asyncio.run(burst(store, count, shown))
                    if kind == "sqlite":  # closed: checkpointed into the file
                        figures["db_kb"] = path.stat().st_size / 1024 / count
                runs[name].append(figures)
        for name, measured in runs.items():
            rate = statistics.median(m["calls_per_s"] for m in measured)
            cpu = statistics.median(m["cpu_us"] for m in measured)
            wal = (
                f"{statistics.median(m['db_kb'] for m in measured):.1f}"
                if kind == "sqlite"
                else "-"
            )
            print(f"| {kind} | {name} | {rate:,.0f} | {cpu:.0f} | {wal} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="also through a PostgreSQL store at this URL")
    parser.add_argument("--capture-only", action="store_true")
    args = parser.parse_args()
    capture_costs()
    if not args.capture_only:
        store_costs(args.calls, args.repeats, args.postgres)


if __name__ == "__main__":
    main()
