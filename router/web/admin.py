"""`/admin/*`: list calls and deliveries, replay one or many, reload rules.yaml, backfill,
release held calls, read the audit; silences and sink pauses (`router.web.admin_controls`).
A bearer token, `ROUTER_ADMIN_TOKEN` or a user's personal token (`router.web.credentials`),
is checked before any body is read; a wrong one counts against the client address in the
shared limit on failed credentials (`router.web.credential_limits`: then 429). A request
beyond the caller's role is 403 with the reason (`router.web.permissions`). Every change
is recorded in the audit with the request's actor (`router.web.actors`). Without an admin
token or a users file the whole admin API answers 404."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields, replace
from typing import Any, Protocol

from aiohttp import web

from router.config import Runtime, check_findings
from router.core.call_search import SearchInvalid, call_filters
from router.core.events import decode_json
from router.core.phones import mask_phone, mask_phone_numbers
from router.operators import (
    AuditQueryInvalid,
    AuditTrail,
    OperatorControls,
    RequestInvalid,
    acknowledge_delivery,
    acknowledgement_key,
    audit_filters,
    audit_json,
    backfill_target,
    counting_for,
    forget_caller,
    parse_bulk_replay,
    parse_forget_request,
    report_json,
)
from router.operators.silences import iso
from router.store import (
    Acknowledgement,
    AttemptRecord,
    CallFilters,
    DeliveryStatus,
    DeliveryView,
    Erasures,
    EventView,
    HeldCalls,
    OperatorConsole,
    Operators,
)
from router.web.actors import actor_of
from router.web.admin_controls import control_routes, invalid, json_body
from router.web.credential_limits import CredentialLimiter, record_failure
from router.web.credentials import Credentials, set_principal
from router.web.permissions import permission, refusal
from router.web.request_body import read_text
from router.web.webhook import header_bytes


class AdminStore(OperatorConsole, HeldCalls, Erasures, Protocol):
    """What the admin API uses of the store: the operators' reads and actions, releasing
    held calls, forgetting a caller."""


STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "dead", "muted")
VERIFICATIONS = ("pending", "not_verified", "verified", "released")


def delivery_status(text: str | None) -> DeliveryStatus | None:
    """`text` as a delivery status, or None when it is none of them."""
    return next((status for status in STATUSES if status == text), None)


def delivery_json(
    view: DeliveryView, acknowledgement: Acknowledgement | None = None
) -> dict[str, Any]:
    """The fields of a delivery as the API and `revring-router deliveries --json` show them:
    DESIGN.md section 4's, then `kind` ('single' or 'digest') and `calls` (a digest's
    member count, 1 for a single delivery) and `escalated_from` (an escalation's: the
    delivery nobody acknowledged) among the rest, and `acknowledged_by` (a Slack user id,
    a console user, `token`, `cli:<os user>`) and `acknowledged_at` (ISO 8601) once its
    call was acknowledged for its rule (a digest: the digest was)."""
    shown = asdict(view)
    shown["acknowledged_by"] = None if acknowledgement is None else acknowledgement.user_id
    shown["acknowledged_at"] = None if acknowledgement is None else iso(acknowledgement.at)
    return shown


def attempt_json(attempt: AttemptRecord) -> dict[str, Any]:
    """One attempt as `GET /admin/deliveries/{id}` lists it: its outcome, and the
    `request` it sent and the `response` it got (masked, bodies cut at 4 KiB; headers as
    `[name, value]` pairs; `response` null when no answer came). `recorded` is false for
    an attempt whose exchange was not kept (made before the router kept them, or
    nothing was sent): then both are null. An `http` sink with steps lists each step
    under `steps`: its `name`, `outcome` (done, skipped, failed), `earlier` (done by an
    earlier attempt, not sent again), `captures` (phone numbers masked) and its own
    `request` and `response` (the attempt's are its last step's)."""
    shown = asdict(attempt)
    exchange = shown.pop("exchange")
    shown["recorded"] = exchange is not None
    shown["request"] = None if exchange is None else exchange["request"]
    shown["response"] = None if exchange is None else exchange["response"]
    shown["steps"] = [_step_json(step) for step in shown["steps"]]
    return shown


def _step_json(step: dict[str, Any]) -> dict[str, Any]:
    exchange = step["exchange"]
    return {
        "name": step["name"],
        "outcome": step["outcome"],
        "earlier": step["earlier"],
        "captures": step["shown"],  # never the raw values the next attempt resumes with
        "request": None if exchange is None else exchange["request"],
        "response": None if exchange is None else exchange["response"],
    }


async def acknowledgements_of(
    store: Operators, views: list[DeliveryView]
) -> dict[str, Acknowledgement]:
    """The acknowledgement that counts for each delivery that has one (of its call and
    rule, or its digest), by delivery id (one read: an acknowledgement never precedes the
    delivery it was made on)."""
    if not views:
        return {}
    since = min(view.created_at for view in views)
    by_target: dict[tuple[str, str], list[Acknowledgement]] = {}
    for found in await store.acknowledgements_since(since):
        by_target.setdefault((found.kind, found.target_id), []).append(found)
    counting = {}
    for view in views:
        kind, target_id, _ = acknowledgement_key(view)
        acknowledgement = counting_for(view, by_target.get((kind, target_id), ()))
        if acknowledgement is not None:
            counting[view.id] = acknowledgement
    return counting


def call_json(view: EventView) -> dict[str, Any]:
    """A stored call as `GET /admin/calls`, `GET /admin/events` and `revring-router calls
    --json` show it: its columns and verification state, its numbers masked and its
    summary with the numbers in it masked (None when it has none, or its body is too
    large to be listed), not its body."""
    shown = {
        field.name: getattr(view, field.name) for field in fields(view) if field.name != "payload"
    }
    shown["from_number"] = mask_phone(view.from_number)
    shown["to_number"] = mask_phone(view.to_number)
    shown["summary"] = _summary(view.payload)
    return shown


def _summary(payload: bytes | None) -> str | None:
    if payload is None:
        return None
    try:
        call = decode_json(bytes(payload))
    except ValueError:
        return None
    summary = call.get("summary") if isinstance(call, dict) else None
    return mask_phone_numbers(summary) if isinstance(summary, str) else None


MAX_NAME_PARAMETER = 200


def _name_parameter(request: web.Request, name: str) -> str | None:
    """A sink, rule or call filter from the query string (empty: none)."""
    value = request.query.get(name) or None
    if value is not None and len(value) > MAX_NAME_PARAMETER:
        raise ValueError(f"{name} must be at most {MAX_NAME_PARAMETER} characters")
    return value


def _calls_listing(
    request: web.Request, default_verification: str | None
) -> tuple[str | None, int] | web.Response:
    """The `verification` and `limit` of a calls listing (1 to 1,000, default 100), or the
    400 naming the bad one."""
    verification = request.query.get("verification") or default_verification
    if verification is not None and verification not in VERIFICATIONS:
        return web.json_response(
            {"error": f"verification must be one of {', '.join(VERIFICATIONS)}"}, status=400
        )
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        return web.json_response({"error": "limit must be an integer"}, status=400)
    return verification, limit


def _unauthorized() -> web.Response:
    return web.json_response(
        {"error": "missing or wrong bearer token"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="revring-router admin"'},
    )


def too_many_failures(wait: float) -> web.Response:
    seconds = max(math.ceil(wait), 1)
    return web.json_response(
        {"error": f"too many failed credentials from this address; try again in {seconds} s"},
        status=429,
        headers={"Retry-After": str(seconds)},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


BackfillRun = Callable[[list[str], bool], Awaitable[dict[str, Any]]]


def _forbidden(why: str) -> web.Response:
    return web.json_response({"error": why}, status=403)


def admin_routes(
    credentials: Credentials,
    store: AdminStore,
    runtime: Runtime,
    controls: OperatorControls | None = None,
    *,
    backfill: BackfillRun | None = None,
    limiter: CredentialLimiter | None = None,
    trail: AuditTrail | None = None,
) -> list[web.RouteDef]:
    failures = limiter if limiter is not None else CredentialLimiter()
    audit = trail if trail is not None else AuditTrail(store)

    def guarded(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            if not credentials.configured:
                raise web.HTTPNotFound()
            address = request.remote or "unknown"
            wait = failures.wait(address)
            if wait is not None:
                return too_many_failures(wait)
            principal = await credentials.bearer(header_bytes(request.headers.get("Authorization")))
            if principal is None:
                record_failure(failures, address, "bearer token")
                return _unauthorized()
            set_principal(request, principal)
            route = request.match_info.route.resource
            needed = permission(request.method, None if route is None else route.canonical)
            why = refusal(principal, needed)
            if why is not None:
                return _forbidden(why)
            return await handler(request)

        return check

    async def list_deliveries(request: web.Request) -> web.Response:
        asked = request.query.get("status") or None
        status = delivery_status(asked)
        if asked is not None and status is None:
            return web.json_response(
                {"error": f"status must be one of {', '.join(STATUSES)}"}, status=400
            )
        try:
            limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
            offset = max(int(request.query.get("offset", "0")), 0)
            sink, rule, call = (_name_parameter(request, name) for name in ("sink", "rule", "call"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        views = await store.list_deliveries(status, sink, limit, offset, rule=rule, call=call)
        acknowledged = await acknowledgements_of(store, views)
        return web.json_response([delivery_json(view, acknowledged.get(view.id)) for view in views])

    async def replay_many(request: web.Request) -> web.Response:
        try:
            wanted = parse_bulk_replay(await json_body(request))
        except RequestInvalid as exc:
            return invalid(exc)
        count = await audit.replay_many(actor_of(request), wanted)
        return web.json_response(
            {
                "status": "requeued",
                "count": count,
                "replayed": wanted.status,
                "sink": wanted.sink,
                "rule": wanted.rule,
            }
        )

    async def list_calls(request: web.Request) -> web.Response:
        listing = _calls_listing(request, default_verification=None)
        if isinstance(listing, web.Response):
            return listing
        verification, limit = listing
        try:
            filters = call_filters(request.query.get("q", ""), request.query.get("status", ""))
        except SearchInvalid as exc:
            return web.json_response({"error": f"q: {exc}"}, status=400)
        views = await store.list_events(replace(filters, verification=verification), None, limit)
        return web.json_response([call_json(view) for view in views])

    async def show_delivery(request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        view = await store.get_delivery(delivery_id)
        if view is None:
            return web.json_response({"error": f"no delivery {delivery_id!r}"}, status=404)
        attempts = [attempt_json(a) for a in await store.list_attempts(delivery_id)]
        acknowledgement = await store.acknowledgement(*acknowledgement_key(view))
        return web.json_response({**delivery_json(view, acknowledgement), "attempt_log": attempts})

    async def acknowledge(request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        done = await acknowledge_delivery(
            audit, store, delivery_id, actor_of(request), time.time(), channel="api"
        )
        if done is None:
            return web.json_response({"error": f"no delivery {delivery_id!r}"}, status=404)
        shown = delivery_json(done.view, done.acknowledgement)
        return web.json_response({**shown, "already_acknowledged": not done.first})

    async def replay(request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        if not await audit.replay(actor_of(request), delivery_id):
            if await store.get_delivery(delivery_id) is None:
                return web.json_response({"error": f"no delivery {delivery_id!r}"}, status=404)
            return web.json_response(
                {"error": f"delivery {delivery_id!r} is being sent right now; try again"},
                status=409,
            )
        return web.json_response({"status": "requeued", "id": delivery_id})

    async def reload(request: web.Request) -> web.Response:
        failure = await runtime.reload("POST /admin/reload")
        if failure is not None:
            return web.json_response(
                {"status": "invalid", "errors": [str(e) for e in failure.errors]}, status=400
            )
        config = runtime.config
        details = {"rules": len(config.rules), "sinks": sorted(config.sinks)}
        await audit.record(actor_of(request), "reload", runtime.config_path, details)
        found = await asyncio.to_thread(check_findings, config)  # it renders: off the loop
        return web.json_response(
            {
                "status": "reloaded",
                "rules": len(config.rules),
                "sinks": sorted(config.sinks),
                "warnings": [str(problem) for problem, _ in found],
            }
        )

    async def run_backfill(request: web.Request) -> web.Response:
        from router.revring.backfill import admin_ids

        if backfill is None:
            return web.json_response(
                {"error": "backfill needs ROUTER_REVRING_API_KEY (RevRing's API key)"},
                status=409,
            )
        try:
            body = json.loads(await read_text(request))
        except (ValueError, RecursionError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        try:
            ids = admin_ids(body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        dry = isinstance(body, dict) and body.get("dry_run") is True
        summary = await backfill(ids, dry)
        if not dry:
            await audit.record(actor_of(request), "backfill", backfill_target(ids), summary)
        return web.json_response(summary)

    async def forget(request: web.Request) -> web.Response:
        try:
            wanted = parse_forget_request(await json_body(request))
        except RequestInvalid as exc:
            return invalid(exc)
        report = await forget_caller(store, wanted, actor_of(request), audit)
        return web.json_response(report_json(report, wanted.number))

    async def list_events(request: web.Request) -> web.Response:
        listing = _calls_listing(request, default_verification="pending")
        if isinstance(listing, web.Response):
            return listing
        verification, limit = listing
        views = await store.list_events(CallFilters(verification=verification), None, limit)
        return web.json_response([call_json(view) for view in views])

    async def release_event(request: web.Request) -> web.Response:
        from router.revring import release
        from router.revring.verify import HOLDABLE

        event_id = request.match_info["id"]
        if not runtime.loaded:
            return web.json_response({"error": "rules.yaml is not loaded"}, status=503)
        record = audit.entry(actor_of(request), "release", f"call:{event_id}")
        released = await release(store, runtime.config.rules, event_id, record)
        if released.outcome == "unknown":
            return web.json_response({"error": f"no call {event_id!r}"}, status=404)
        if released.outcome == "not_held":
            return web.json_response(
                {
                    "error": f"call {event_id!r} is not held (verification:"
                    f" {released.verification or 'none'}); only {' or '.join(HOLDABLE)}"
                    " calls can be released"
                },
                status=409,
            )
        audit.done("release")
        return web.json_response(
            {"status": "released", "event_id": event_id, "deliveries": released.deliveries}
        )

    async def list_audit(request: web.Request) -> web.Response:
        query = request.query
        try:
            filters, limit = audit_filters(
                since=query.get("since"),
                actor=query.get("actor"),
                action=query.get("action"),
                limit=query.get("limit"),
            )
        except AuditQueryInvalid as exc:
            return web.json_response({"error": str(exc), "parameter": exc.parameter}, status=400)
        records = await store.list_audit(filters, limit)
        return web.json_response([audit_json(record) for record in records])

    return [
        web.get("/admin/calls", guarded(list_calls)),
        web.get("/admin/events", guarded(list_events)),
        web.post("/admin/events/{id}/release", guarded(release_event)),
        web.post("/admin/backfill", guarded(run_backfill)),
        web.post("/admin/forget", guarded(forget)),
        web.get("/admin/deliveries", guarded(list_deliveries)),
        web.post("/admin/deliveries/replay", guarded(replay_many)),
        web.get("/admin/deliveries/{id}", guarded(show_delivery)),
        web.post("/admin/deliveries/{id}/replay", guarded(replay)),
        web.post("/admin/deliveries/{id}/acknowledge", guarded(acknowledge)),
        web.post("/admin/reload", guarded(reload)),
        web.get("/admin/audit", guarded(list_audit)),
        *control_routes(guarded, store, runtime, controls, audit),
    ]
