"""The full one-process ceiling of a routed call on SQLite: `ceiling_server.py`'s durable
ingest, then what the router does for every call a rule sends somewhere.

aiohttp on uvloop; the handler reads the body, parses it with orjson, checks its string
`id` and hands two inserts (the event, one delivery) to one writer thread, which
group-commits whatever is queued in one transaction with `PRAGMA synchronous=FULL` in
WAL mode; 200 after that commit. Each new call is then sent to the sink (`--sink`, the
body as received, POST with one shared `aiohttp.ClientSession`, at most `--concurrency`
in flight, the others waiting in memory in arrival order) and its outcome recorded
through the same writer: the delivery's status and one attempt row (start, duration,
status code), in the next group commit. No rules, no retries, no lease, no exchange
kept, no metrics: the floor of work per routed call.

    python bench/full_ceiling_server.py --port 8099 --db /tmp/full.db --sink http://…
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web
from ceiling_server import SCHEMA

ATTEMPTS = (
    "CREATE TABLE IF NOT EXISTS attempts (delivery_id INTEGER NOT NULL, started_at REAL NOT NULL,"
    " duration REAL NOT NULL, status_code INTEGER)"
)
# A job: a function run on the writer's connection inside the batch's transaction, the
# future that gets its result, and the loop that future belongs to.
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class Writer(threading.Thread):
    """One connection; each pass runs every queued job in one fsync'd transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="full-ceiling-writer", daemon=True)
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        for statement in (*SCHEMA, ATTEMPTS):
            self.connection.execute(statement)

    def run(self) -> None:
        db = self.connection
        while True:
            batch = [self.jobs.get()]
            while True:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            db.execute("BEGIN")
            results = [job(db) for job, _, _ in batch]
            db.execute("COMMIT")
            batch[0][2].call_soon_threadsafe(
                _settle,
                [(future, result) for (_, future, _), result in zip(batch, results, strict=True)],
            )

    async def run_job(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.jobs.put((job, future, loop))
        return await future


def _settle(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in results:
        if not future.done():
            future.set_result(result)


def ingest(event_id: str, payload: bytes, now: float) -> Callable[[sqlite3.Connection], Any]:
    def job(db: sqlite3.Connection) -> int | None:
        try:
            db.execute("INSERT INTO events VALUES (?, ?, ?)", (event_id, payload, now))
        except sqlite3.IntegrityError:
            return None
        cursor = db.execute(
            "INSERT INTO deliveries (event_id, sink, status, created_at)"
            " VALUES (?, 'sink', 'pending', ?)",
            (event_id, now),
        )
        return cursor.lastrowid

    return job


def finish(
    delivery_id: int, status: str, started: float, duration: float, code: int | None
) -> Callable[[sqlite3.Connection], Any]:
    def job(db: sqlite3.Connection) -> None:
        db.execute("UPDATE deliveries SET status = ? WHERE id = ?", (status, delivery_id))
        db.execute(
            "INSERT INTO attempts VALUES (?, ?, ?, ?)", (delivery_id, started, duration, code)
        )

    return job


class Sender:
    """At most `concurrency` sends in flight through one session; the rest wait in order."""

    def __init__(self, writer: Writer, sink: str, concurrency: int) -> None:
        self.writer, self.sink, self.concurrency = writer, sink, concurrency
        self.waiting: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.tasks = [asyncio.create_task(self.work()) for _ in range(self.concurrency)]

    async def stop(self, app: web.Application) -> None:
        for task in self.tasks:
            task.cancel()
        if self.session is not None:
            await self.session.close()

    async def work(self) -> None:
        assert self.session is not None
        headers = {"Content-Type": "application/json"}
        while True:
            delivery_id, body = await self.waiting.get()
            started = time.time()
            code: int | None = None
            try:
                async with self.session.post(self.sink, data=body, headers=headers) as answer:
                    await answer.read()
                    code = answer.status
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            status = "delivered" if code is not None and 200 <= code < 300 else "pending"
            await self.writer.run_job(
                finish(delivery_id, status, started, time.time() - started, code)
            )


def build_app(writer: Writer, sender: Sender) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event_id = orjson.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="malformed")
        if not isinstance(event_id, str):
            return web.Response(status=422, text="id must be a string")
        delivery_id = await writer.run_job(ingest(event_id, body, time.time()))
        if delivery_id is not None:
            sender.waiting.put_nowait((delivery_id, body))
        status = "accepted" if delivery_id is not None else "duplicate"
        answer = {"status": status, "event_id": event_id}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application(client_max_size=1024 * 1024 + 1)
    app.add_routes([web.post("/webhooks/revring", receive), web.get("/healthz", healthz)])
    app.on_startup.append(sender.start)
    app.on_cleanup.append(sender.stop)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sink", required=True, help="URL each call is posted to")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    writer = Writer(args.db)
    writer.start()
    web.run_app(
        build_app(writer, Sender(writer, args.sink, args.concurrency)),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
