"""A local OTLP/HTTP trace receiver that discards what it gets: where the router's spans
go in the `tracing` step of bench/run.py, so the figure is the router's cost of making
and exporting them, not a collector's.

    POST /v1/traces  200, an empty ExportTraceServiceResponse (the body is only counted)
    GET  /_stats     {"exports": N, "bytes": N}

    python bench/otlp_sink.py --port 4318
"""

from __future__ import annotations

import argparse

from aiohttp import web

STATS = web.AppKey("stats", dict)


async def export(request: web.Request) -> web.Response:
    body = await request.read()
    stats = request.app[STATS]
    stats["exports"] += 1
    stats["bytes"] += len(body)
    # An empty ExportTraceServiceResponse is zero bytes of protobuf.
    return web.Response(body=b"", content_type="application/x-protobuf")


async def read_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS])


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATS] = {"exports": 0, "bytes": 0}
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/_stats", read_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
