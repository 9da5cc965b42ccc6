"""The one-process ceiling for a durable ingest on SQLite: what any router could reach.

aiohttp on uvloop; the handler reads the body, parses it with orjson, checks that it
carries a string `id`, and hands two inserts (the event, one delivery) to one writer
thread, which group-commits whatever is queued in one transaction with
`PRAGMA synchronous=FULL` in WAL mode; the answer is 200 only after that commit
(a duplicate id answers 200 "duplicate", as the router does). No routing, no
validation beyond the id, no delivery sent: the floor of work per durable call.

    python bench/ceiling_server.py --port 8099 --db /tmp/ceiling.db
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sqlite3
import threading
import time
from pathlib import Path

import orjson
import uvloop
from aiohttp import web

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, payload BLOB NOT NULL,"
    " received_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
    " sink TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL)",
)
Job = tuple[str, bytes, float, asyncio.Future[bool], asyncio.AbstractEventLoop]


class Writer(threading.Thread):
    """One connection; each pass commits every queued call in one fsync'd transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="ceiling-writer", daemon=True)
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA:
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
            outcomes = []
            for event_id, payload, now, _, _ in batch:
                try:
                    db.execute("INSERT INTO events VALUES (?, ?, ?)", (event_id, payload, now))
                except sqlite3.IntegrityError:
                    outcomes.append(False)
                    continue
                db.execute(
                    "INSERT INTO deliveries (event_id, sink, status, created_at)"
                    " VALUES (?, 'sink', 'pending', ?)",
                    (event_id, now),
                )
                outcomes.append(True)
            db.execute("COMMIT")
            loop = batch[0][4]
            loop.call_soon_threadsafe(
                _settle, [(job[3], new) for job, new in zip(batch, outcomes, strict=True)]
            )


def _settle(results: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, new in results:
        if not future.done():
            future.set_result(new)


def build_app(writer: Writer) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event_id = orjson.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="malformed")
        if not isinstance(event_id, str):
            return web.Response(status=422, text="id must be a string")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        writer.jobs.put((event_id, body, time.time(), future, loop))
        new = await future
        answer = {"status": "accepted" if new else "duplicate", "event_id": event_id}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application(client_max_size=1024 * 1024 + 1)
    app.add_routes([web.post("/webhooks/revring", receive), web.get("/healthz", healthz)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()
    writer = Writer(args.db)
    writer.start()
    web.run_app(
        build_app(writer),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
