"""The baseline: a bare aiohttp server whose handler reads the body and answers 200.

It is the ceiling for any aiohttp webhook receiver on this machine, so the router's
ingest rate is reported as a fraction of it.

    python bench/baseline_server.py --port 8099 [--loop uvloop]

With `--loop uvloop` it runs on uvloop, as the router does by default when uvloop is
installed, so the router's figures can also be compared with a baseline on the same loop.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "accepted"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024 + 1)
    app.add_routes([web.post("/webhooks/revring", receive), web.get("/healthz", healthz)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    loop = None
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(
        build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop
    )


if __name__ == "__main__":
    main()
