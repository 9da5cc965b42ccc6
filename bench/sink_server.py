"""A fast local HTTP sink: answers every POST and records when each call id first arrived.

It understands two bodies: a RevRing call as the router's `http` sink sends it (the
call id is the top-level `id`), and an Alertmanager webhook (each alert's
`labels.call_id`). Control and read-out endpoints, all under `/_`:

    GET  /_stats     {"posts": N, "unique": N, "status": 200}
    GET  /_arrivals  {call id: arrival unix time (first arrival)}
    POST /_status    {"status": 503} answer that status from now on (200 to heal)
    POST /_reset     forget everything received

    python bench/sink_server.py --port 8098
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from aiohttp import web

ARRIVALS = web.AppKey("arrivals", dict)
STATE = web.AppKey("state", dict)


def call_ids(body: Any) -> list[str]:
    """The call ids a delivered body carries (RevRing call or Alertmanager webhook)."""
    if isinstance(body, dict) and isinstance(body.get("alerts"), list):
        return [
            str(alert["labels"]["call_id"])
            for alert in body["alerts"]
            if isinstance(alert, dict) and "call_id" in alert.get("labels", {})
        ]
    if isinstance(body, dict) and "id" in body:
        return [str(body["id"])]
    return []


async def receive(request: web.Request) -> web.Response:
    now = time.time()
    state = request.app[STATE]
    raw = await request.read()
    state["posts"] += 1
    if state["status"] != 200:
        return web.Response(status=state["status"], text="not now")
    try:
        ids = call_ids(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return web.Response(status=400, text="not JSON")
    arrivals = request.app[ARRIVALS]
    for call_id in ids:
        arrivals.setdefault(call_id, now)
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({**state, "unique": len(request.app[ARRIVALS])})


async def arrivals(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[ARRIVALS]), content_type="application/json")


async def set_status(request: web.Request) -> web.Response:
    request.app[STATE]["status"] = int((await request.json())["status"])
    return await stats(request)


async def reset(request: web.Request) -> web.Response:
    request.app[ARRIVALS].clear()
    request.app[STATE]["posts"] = 0
    return await stats(request)


def build_app(status: int = 200) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[ARRIVALS] = {}
    app[STATE] = {"posts": 0, "status": status}
    app.add_routes(
        [
            web.get("/_stats", stats),
            web.get("/_arrivals", arrivals),
            web.post("/_status", set_status),
            web.post("/_reset", reset),
            web.post("/{tail:.*}", receive),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=200, help="status to answer at first")
    args = parser.parse_args()
    web.run_app(
        build_app(args.status), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
