"""`/admin/silences` and `/admin/sinks/{name}/pause|resume` (DESIGN.md sections 4 and 9),
behind the admin API's bearer guard. Requests are checked by `router.operators.silences`; a bad
one is a 422 naming every problem, and nothing is stored. A change is made through the
audit trail (`router.operators.AuditTrail`), recorded with the request's actor."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from router.config import Runtime
from router.operators import (
    EXPIRED_SILENCES_KEPT,
    AuditTrail,
    OperatorControls,
    RequestInvalid,
    parse_pause_request,
    parse_silence_request,
    pause_json,
    silence_json,
)
from router.store import Operators
from router.web.actors import actor_of
from router.web.request_body import read_text

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SILENCE_STATES = ("active", "pending", "expired")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body ({} when empty), or `RequestInvalid` when it is not JSON."""
    body = await read_text(request)  # not UTF-8 (or an unknown charset): 400
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RequestInvalid([f"the body is not JSON: {detail}"]) from None


def invalid(exc: RequestInvalid) -> web.Response:
    """422 naming every problem of a request."""
    return web.json_response({"error": "invalid request", "errors": exc.errors}, status=422)


def control_routes(
    guarded: Callable[[Handler], Handler],
    store: Operators,
    runtime: Runtime,
    controls: OperatorControls | None,
    trail: AuditTrail,
) -> list[web.RouteDef]:
    async def changed() -> None:
        if controls is not None:
            await controls.refresh()

    def known_sinks() -> set[str]:
        return set(runtime.config.sinks) if runtime.loaded else set()

    async def add_silence(request: web.Request) -> web.Response:
        now = time.time()
        try:
            record = parse_silence_request(
                await json_body(request), now=now, known_sinks=known_sinks()
            )
        except RequestInvalid as exc:
            return invalid(exc)
        await trail.add_silence(actor_of(request), record)
        await changed()
        return web.json_response(silence_json(record, now), status=201)

    async def list_silences(request: web.Request) -> web.Response:
        state = request.query.get("state") or None
        if state is not None and state not in SILENCE_STATES:
            return web.json_response(
                {"error": f"state must be one of {', '.join(SILENCE_STATES)}"}, status=400
            )
        now = time.time()
        records = await store.list_silences(ended_after=now - EXPIRED_SILENCES_KEPT)
        found = [silence_json(record, now) for record in records]
        return web.json_response([s for s in found if state is None or s["state"] == state])

    async def expire_silence(request: web.Request) -> web.Response:
        silence_id = request.match_info["id"]
        now = time.time()
        record = await trail.expire_silence(actor_of(request), silence_id, now)
        if record is None:
            return web.json_response({"error": f"no silence {silence_id!r}"}, status=404)
        await changed()
        return web.json_response(silence_json(record, now))

    async def pause_sink(request: web.Request) -> web.Response:
        now = time.time()
        try:
            pause = parse_pause_request(
                request.match_info["name"],
                await json_body(request),
                now=now,
                known_sinks=known_sinks(),
            )
        except RequestInvalid as exc:
            return invalid(exc)
        await trail.pause_sink(actor_of(request), pause)
        await changed()
        return web.json_response(pause_json(pause))

    async def resume_sink(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        was_paused = await trail.resume_sink(actor_of(request), name)
        await changed()
        return web.json_response({"sink": name, "paused": False, "was_paused": was_paused})

    async def list_sinks(request: web.Request) -> web.Response:
        pauses = {pause.sink: pause for pause in await store.sink_pauses(time.time())}
        answer = []
        for name in sorted(known_sinks() | set(pauses)):
            pause = pauses.get(name)
            answer.append(pause_json(pause) if pause else {"sink": name, "paused": False})
        return web.json_response(answer)

    return [
        web.post("/admin/silences", guarded(add_silence)),
        web.get("/admin/silences", guarded(list_silences)),
        web.delete("/admin/silences/{id}", guarded(expire_silence)),
        web.get("/admin/sinks", guarded(list_sinks)),
        web.post("/admin/sinks/{name}/pause", guarded(pause_sink)),
        web.post("/admin/sinks/{name}/resume", guarded(resume_sink)),
    ]
