"""The OpenAPI 3.1 document of the service's HTTP API (the webhook, health, metrics, the
admin API and Slack's interactions), served without authentication at GET /openapi.json
(it holds no secrets) and rendered as the HTTP API page of the documentation. The
webhook's request schema is the one ingest validates with (`PostCallEvent`)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web

from router import __version__
from router.core.events import PostCallEvent
from router.web.permissions import permission

OPENAPI_PATH = "/openapi.json"
JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _field(kind: str | list[str], description: str = "", **more: Any) -> Schema:
    schema: Schema = {"type": kind, **more}
    if description:
        schema["description"] = description
    return schema


def _answer(description: str, schema: Schema | None = None, media: str = JSON) -> Schema:
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    return response


def _error(description: str) -> Schema:
    return _answer(description, _ref("Error"))


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _body(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _admin(
    summary: str, responses: dict[str, Schema], unknown: str = "", **operation: Any
) -> Schema:
    """An /admin/* operation: bearer token, 401 for a wrong one, 429 after too many
    failures from the address, 404 while it is off (or, naming `unknown`, for an unknown
    object in the path); with a request body, its limits' answers."""
    body_answers = _body_answers(responses.get("400")) if "requestBody" in operation else {}
    return {
        "summary": summary,
        "tags": ["admin"],
        "security": [{"AdminToken": []}],
        **operation,
        "responses": dict(
            sorted(
                {
                    **responses,
                    **body_answers,
                    "401": _error("missing or wrong bearer token"),
                    "404": _error(
                        "neither ROUTER_ADMIN_TOKEN nor ROUTER_USERS_FILE is set (the admin"
                        " API is off)" + (f", or an unknown {unknown}" if unknown else "")
                    ),
                    "429": _error(
                        "5 failed credentials from this address within a minute (console"
                        " sign-ins and bearer tokens together): wait `Retry-After` seconds"
                    ),
                }.items()
            )
        ),
    }


def _body_answers(bad_request: Schema | None) -> dict[str, Schema]:
    """What any route that reads a body may answer about it (`router.web.request_body`)."""
    not_text = "the body is not UTF-8 (or the charset it names), or names an unknown charset"
    if bad_request is not None:
        not_text = f"{bad_request['description']}; or {not_text}"
    return {
        "400": _error(not_text),
        "408": _error("body not received within ROUTER_BODY_TIMEOUT"),
        "413": _error("body over 1 MiB"),
    }


LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    "page size (clamped to 1..1000)",
)
OFFSET = _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip")
TIME = {"type": ["string", "null"], "format": "date-time"}
HEADERS = {
    "type": "array",
    "description": "[name, value] pairs in order; credentials masked (`Bearer ***`)",
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
}
EPOCH = {"type": ["number", "null"], "description": "seconds since the epoch (UTC)"}


EVENT_FIELDS = {
    "id": "call id (uuid); the idempotency key: a repeated id answers `duplicate`",
    "direction": "INBOUND or OUTBOUND (others are accepted and counted)",
    "status": "COMPLETED, TRANSFERRED, FAILED or CANCELED (others are accepted and counted)",
    "fromNumber": "caller's number, E.164",
    "toNumber": "called number, E.164",
    "organizationId": "RevRing organization",
    "agentId": "agent that handled the call (uuid)",
    "recordingUrl": "recording, when there is one",
    "hangupCause": "e.g. USER_ENDED, SILENCE_TIMEOUT, VOICEMAIL_DETECTED (free text)",
    "errorMessage": "set when the call failed",
    "transcript": "entries of the conversation (objects or strings; any entry is kept as sent)",
    "summary": "AI-generated summary",
    "metrics": "call quality metrics (usually an object; any JSON value is kept as sent)",
    "initiatedAt": "when the call was initiated",
    "startedAt": "when it was answered",
    "endedAt": "when it ended",
    "durationSeconds": "duration in whole seconds",
    "agentName": "the agent's name",
    "sipTrunkId": "SIP trunk the call used",
    "agentCallerIdName": "caller id name shown by the agent",
    "variables": (
        "merged template variables (pre-call webhook, API and system variables;"
        " usually an object, any JSON value is kept as sent)"
    ),
    "createdAt": "when RevRing created the record",
    "updatedAt": "when RevRing last updated it",
}


def _event_schema() -> Schema:
    """The webhook body as ingest validates it, with each field's meaning."""
    event = PostCallEvent.model_json_schema()
    event["description"] = (
        "One call as RevRing posts it after it ended. Timestamps are ISO 8601 text or unix"
        " seconds; a number outside the years 1 to 9999 is kept as sent and reads as null."
        " A body nested deeper than 64 levels is refused (422)."
    )
    for name, field in event["properties"].items():
        field.pop("title", None)
        field.pop("default", None)
        field["description"] = EVENT_FIELDS[name]
    return event


def _schemas() -> dict[str, Schema]:
    event = _event_schema()
    return {
        "PostCallEvent": event,
        "Error": _object({"error": _field("string", "what is wrong")}, ("error",)),
        "WebhookAnswer": _object(
            {
                "status": _field(
                    "string",
                    "accepted, or duplicate for a repeated call id",
                    enum=["accepted", "duplicate"],
                ),
                "event_id": _field("string", "the call id"),
                "deliveries": _field("integer", "deliveries created (0 for a duplicate)"),
            },
            ("status", "event_id"),
        ),
        "InvalidEvent": _object(
            {
                "error": _field("string"),
                "problems": _field(
                    "array", "every bad field, as `field: message`", items={"type": "string"}
                ),
            },
            ("error", "problems"),
        ),
        "Delivery": _object(
            {
                "id": _field("string"),
                "event_id": _field("string", "the call id (empty for a notice)"),
                "sink": _field("string"),
                "rule": _field("string"),
                "status": _field("string", enum=["pending", "delivered", "dead", "muted"]),
                "attempts": _field("integer"),
                "last_error": _field(["string", "null"]),
                "next_attempt_at": EPOCH,
                "created_at": EPOCH,
                "updated_at": EPOCH,
                "delivered_at": EPOCH,
                "kind": _field("string", "a single call or a digest", enum=["single", "digest"]),
                "calls": _field("integer", "calls carried (a digest's members; 1 otherwise)"),
                "muted_reason": _field(
                    ["string", "null"], "status muted: `time_interval:NAME` or `silence:ID`"
                ),
                "escalated_from": _field(
                    ["string", "null"],
                    "an escalation's: the delivery nobody acknowledged in time (DESIGN.md 16)",
                ),
                "notice_of": _field(
                    ["string", "null"],
                    "a notice (`on_dead`): the id of the delivery that went dead",
                ),
                "acknowledged_by": _field(
                    ["string", "null"],
                    "who acknowledged the call for this delivery's rule (a digest: the"
                    " digest): a Slack user id, a console user, `token`, `cli:<os user>`",
                ),
                "acknowledged_at": TIME,
            },
        ),
        "DeliveryWithAttempts": {
            "allOf": [
                _ref("Delivery"),
                _object({"attempt_log": {"type": "array", "items": _ref("Attempt")}}),
            ]
        },
        "Attempt": _object(
            {
                "number": _field("integer", "1-based, over the delivery's whole life"),
                "started_at": EPOCH,
                "duration": _field("number", "seconds"),
                "outcome": _field("string", enum=["delivered", "retry", "dead"]),
                "status_code": _field(["integer", "null"]),
                "error": _field(["string", "null"]),
                "detail": _field(["string", "null"]),
                "recorded": _field(
                    "boolean",
                    "false: request and response not kept (an attempt made before the router"
                    " kept them, or nothing was sent); both are null then",
                ),
                "request": {"oneOf": [_ref("SentRequest"), {"type": "null"}]},
                "response": {
                    "oneOf": [_ref("ReceivedResponse"), {"type": "null"}],
                    "description": "null: no answer came (refused, timed out)",
                },
                "steps": {
                    "type": "array",
                    "items": _ref("AttemptStep"),
                    "description": "an http sink's steps, in order (empty for other sinks);"
                    " the attempt's request and response are its last step's",
                },
            }
        ),
        "AttemptStep": _object(
            {
                "name": _field("string"),
                "outcome": _field("string", enum=["done", "skipped", "failed"]),
                "earlier": _field(
                    "boolean", "done by an earlier attempt: not sent again by this one"
                ),
                "captures": _field("object", "the values captured, phone numbers masked"),
                "request": {"oneOf": [_ref("SentRequest"), {"type": "null"}]},
                "response": {"oneOf": [_ref("ReceivedResponse"), {"type": "null"}]},
            }
        ),
        "SentRequest": _object(
            {
                "method": _field(
                    "string",
                    "POST, PUT, PATCH (and GET, DELETE in steps); SMTP for email; WRITE for log",
                ),
                "target": _field(
                    "string", "the URL with its secret parts as ***; smtp://host:port; a path"
                ),
                "headers": HEADERS,
                "body": _field("string", "the first 4 KiB (UTF-8), secrets and numbers masked"),
                "size": _field("integer", "the whole body's size in bytes"),
                "truncated": _field("boolean", "the body was longer than what is kept"),
                "headers_omitted": _field("integer", "headers past the first 50, not kept"),
            }
        ),
        "ReceivedResponse": _object(
            {
                "status": _field(["integer", "null"], "HTTP status, or the SMTP reply code"),
                "headers": HEADERS,
                "body": _field(
                    "string", "the first 4 KiB (the SMTP reply's text), secrets and numbers masked"
                ),
                "size": _field(["integer", "null"], "the body's size; null: not read to its end"),
                "truncated": _field("boolean"),
                "headers_omitted": _field("integer"),
            }
        ),
        "Event": _object(
            {
                "id": _field("string"),
                "received_at": EPOCH,
                "status": _field("string"),
                "direction": _field("string"),
                "agent_id": _field("string"),
                "organization_id": _field("string"),
                "hangup_cause": _field("string"),
                "from_number": _field("string", "the caller's number, masked (+1415•••0123)"),
                "to_number": _field("string", "the called number, masked"),
                "summary": _field(
                    ["string", "null"],
                    "the summary, numbers in it masked (null: none, or a body over 256 KiB)",
                ),
                "verification": _field(
                    ["string", "null"],
                    "verify mode: pending, not_verified, verified or released",
                ),
                "verify_attempts": _field("integer"),
                "verify_next_at": EPOCH,
            },
        ),
        "BackfillRequest": _object(
            {
                "ids": _field(
                    "array", "call ids, at most 10000", items={"type": "string"}, maxItems=10000
                ),
                "dry_run": _field(
                    "boolean", "show where each call would go; write nothing", default=False
                ),
            },
            ("ids",),
        ),
        "BackfillSummary": _object(
            {
                name: _field("integer")
                for name in ("requested", "fetched", "new", "duplicate", "not_found", "failed")
            }
            | {
                "dry_run": _field("boolean"),
                "not_found_ids": _field("array", items={"type": "string"}),
                "failures": _field(
                    "array", "id and error of each failed call", items={"type": "object"}
                ),
                "would_route": _field("object", "dry run: the sinks each call would reach"),
            },
        ),
        "ForgetRequest": _object(
            {
                "phone": _field(
                    "string",
                    "the caller's number in any common format (+1 415-555-0142,"
                    " (415) 555-0142; without a country code, read in ROUTER_PHONE_REGION)",
                    maxLength=64,
                ),
                "dry_run": _field("boolean", "count; change nothing", default=False),
            },
            ("phone",),
        ),
        "ForgetSummary": _object(
            {
                "status": _field("string", "forgotten, or dry_run", enum=["forgotten", "dry_run"]),
                "phone": _field("string", "the number, masked (+1415•••0142)"),
                "dry_run": _field("boolean"),
                "calls_deleted": _field("integer", "the caller's calls (from or to the number)"),
                "deliveries_deleted": _field("integer", "their deliveries"),
                "pending_cancelled": _field(
                    "integer", "of those, pending ones: cancelled, never sent"
                ),
                "calls_rewritten": _field(
                    "integer", "other calls whose body mentioned the number: now [erased]"
                ),
                "attempts_rewritten": _field(
                    "integer", "attempts of other deliveries that mentioned it"
                ),
                "other_rows_rewritten": _field(
                    "integer", "delivery errors, silences and comments that mentioned it"
                ),
            },
        ),
        "SilenceRequest": _object(
            {
                "when": _field("object", "conditions, in the rules' `when` syntax"),
                "for": _field("string", "duration, e.g. 2h (or give ends_at)"),
                "ends_at": TIME,
                "starts_at": TIME | {"description": "default: now"},
                "sinks": _field(
                    "array", "sink names (default: every sink)", items={"type": "string"}
                ),
                "comment": _field("string"),
            },
            ("when",),
        ),
        "Silence": _object(
            {
                "id": _field("string"),
                "when": _field("object"),
                "sinks": _field(["array", "null"], "null: every sink", items={"type": "string"}),
                "starts_at": TIME,
                "ends_at": TIME,
                "comment": _field("string"),
                "state": _field("string", enum=["active", "pending", "expired"]),
                "created_at": TIME,
                "expired_at": TIME,
            },
        ),
        "PauseRequest": _object(
            {"for": _field("string", "duration, e.g. 1h"), "comment": _field("string")},
            ("for",),
        ),
        "SinkState": _object(
            {
                "sink": _field("string"),
                "paused": _field("boolean"),
                "until": TIME,
                "comment": _field("string"),
                "paused_at": TIME,
            },
            ("sink", "paused"),
        ),
        "ReplayRequest": _object(
            {
                "status": _field("string", "which deliveries", enum=["dead", "muted"]),
                "sink": _field("string", "only this sink's"),
                "rule": _field("string", "only this rule's"),
            },
            ("status",),
        ),
        "Replayed": _object(
            {
                "status": _field("string", enum=["requeued"]),
                "count": _field("integer", "deliveries put back in the queue"),
                "replayed": _field("string", "the status they had", enum=["dead", "muted"]),
                "sink": _field(["string", "null"]),
                "rule": _field(["string", "null"]),
            },
            ("status", "count"),
        ),
        "Invalid": _object(
            {"error": _field("string"), "errors": _field("array", items={"type": "string"})},
            ("errors",),
        ),
        "AuditRecord": _object(
            {
                "id": _field("string"),
                "at": {"type": "string", "format": "date-time", "description": "when (UTC)"},
                "actor": _field(
                    "string", "who: a user name, token, cli:<os user> or slack:<user id>"
                ),
                "action": _field(
                    "string",
                    "replay, silence.create, silence.expire, sink.pause, sink.resume,"
                    " acknowledge, reload, backfill, release, forget, user.*, signin,"
                    " signin.failed",
                ),
                "target": _field("string", "what: delivery:ID, silence:ID, sink:NAME, ..."),
                "details": _field("object", "more of the change, secrets and phone numbers masked"),
            },
            ("id", "at", "actor", "action", "target", "details"),
        ),
    }


def _paths() -> dict[str, Schema]:
    delivery_id = _path("id", "delivery id")
    return {
        "/webhooks/revring": {
            "post": {
                "summary": "Take one post-call event from RevRing",
                "description": "The call and one delivery per matched sink are written to "
                "the store in one transaction; the answer comes once it is durable. Never "
                "answers 500.",
                "tags": ["webhook"],
                "security": [{"ApiKey": []}],
                "requestBody": _body(_ref("PostCallEvent")),
                "responses": {
                    "200": _answer(
                        "accepted once durable, or duplicate for a repeated call id",
                        _ref("WebhookAnswer"),
                    ),
                    "400": _error("malformed JSON"),
                    "401": _error("missing or wrong x-api-key"),
                    "408": _error("body not received within ROUTER_BODY_TIMEOUT"),
                    "413": _error("body over 1 MiB"),
                    "415": _error("Content-Type is not application/json"),
                    "422": _answer(
                        "not a post-call event: every bad field named", _ref("InvalidEvent")
                    ),
                    "503": _error(
                        "the store cannot take the call now, rules.yaml is not loaded, or"
                        " the process parsing the body died twice; retry"
                    ),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: 200 while the process runs",
                "tags": ["health"],
                "responses": {"200": _answer("running, with the version", {"type": "object"})},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: rules.yaml loaded and the store takes a write",
                "description": (
                    "A one-row write probe, and no write refused for lack of space or a"
                    " read-only store in the last 30 s (a call's write can fail where the"
                    " probe's passes); answers within 2 s whatever the store does."
                ),
                "tags": ["health"],
                "responses": {
                    "200": _answer(
                        "ready (with `warnings` when something works in a lesser way: parse"
                        " workers that cannot start, or without a temporary directory)",
                        {"type": "object"},
                    ),
                    "503": _answer("not ready, with the problems", {"type": "object"}),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (prefix revring_router_)",
                "tags": ["health"],
                "responses": {
                    "200": _answer("Prometheus text format", {"type": "string"}, "text/plain")
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "summary": "This document",
                "tags": ["health"],
                "responses": {"200": _answer("OpenAPI 3.1 document", {"type": "object"})},
            }
        },
        "/admin/calls": {
            "get": _admin(
                "List stored calls, newest first",
                {
                    "200": _answer("calls", {"type": "array", "items": _ref("Event")}),
                    "400": _error("a bad q, verification or limit"),
                },
                parameters=[
                    _query(
                        "q",
                        {"type": "string", "maxLength": 200},
                        "a phone number in any common format (the calls from or to it), or"
                        " words the summary or transcript holds (all of them, any case, each"
                        " also the start of a longer word; at most 8, making at most 16 runs"
                        " of letters and digits; full-text syntax is plain text), through"
                        " the store's full-text index, as `revring-router calls --q`",
                    ),
                    _query("status", {"type": "string"}, "only this call status (any case)"),
                    _query(
                        "verification",
                        {
                            "type": "string",
                            "enum": ["pending", "not_verified", "verified", "released"],
                        },
                        "verify mode: only calls in this state",
                    ),
                    LIMIT,
                ],
            )
        },
        "/admin/audit": {
            "get": _admin(
                "List recorded changes, newest first (viewer role)",
                {
                    "200": _answer("changes", {"type": "array", "items": _ref("AuditRecord")}),
                    "400": _error("a bad since, actor, action or limit (the error names it)"),
                },
                parameters=[
                    _query(
                        "since",
                        {"type": "string"},
                        "only changes since then: an ISO 8601 time (no zone: UTC) or a"
                        " duration back from now (30m, 2h, 7d)",
                    ),
                    _query("actor", {"type": "string", "maxLength": 200}, "only this actor's"),
                    _query("action", {"type": "string", "maxLength": 200}, "only this action"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        "at most this many (1..1000)",
                    ),
                ],
            )
        },
        "/admin/deliveries": {
            "get": _admin(
                "List deliveries, newest first",
                {
                    "200": _answer("deliveries", {"type": "array", "items": _ref("Delivery")}),
                    "400": _error("a bad status, limit or offset, or a name over 200 characters"),
                },
                parameters=[
                    _query(
                        "status",
                        {"type": "string", "enum": ["pending", "delivered", "dead", "muted"]},
                        "only this status",
                    ),
                    _query("sink", {"type": "string"}, "only this sink"),
                    _query("rule", {"type": "string"}, "only this rule"),
                    _query(
                        "call",
                        {"type": "string"},
                        "only this call's deliveries (and the digests it joined)",
                    ),
                    LIMIT,
                    OFFSET,
                ],
            )
        },
        "/admin/deliveries/replay": {
            "post": _admin(
                "Requeue every dead or muted delivery, of one sink or rule",
                {
                    "200": _answer("how many were requeued", _ref("Replayed")),
                    "422": _answer("every problem of the request", _ref("Invalid")),
                },
                requestBody=_body(_ref("ReplayRequest")),
            )
        },
        "/admin/deliveries/{id}": {
            "get": _admin(
                "One delivery and its attempt_log: each attempt's request and response",
                {"200": _answer("the delivery, with `attempt_log`", _ref("DeliveryWithAttempts"))},
                unknown="delivery",
                parameters=[delivery_id],
            )
        },
        "/admin/deliveries/{id}/replay": {
            "post": _admin(
                "Requeue one delivery",
                {
                    "200": _answer("requeued", {"type": "object"}),
                    "409": _error("it is being sent right now; try again"),
                },
                unknown="delivery",
                parameters=[delivery_id],
            )
        },
        "/admin/deliveries/{id}/acknowledge": {
            "post": _admin(
                "Acknowledge an alert: its call for its rule (a digest: the digest), in any"
                " state; stops that rule's escalation of the call, not another rule's. Once"
                " per call and rule: a second acknowledgement answers with the first one"
                " (`already_acknowledged` true)",
                {
                    "200": _answer(
                        "the delivery, with who acknowledged it and when",
                        {
                            "allOf": [
                                _ref("Delivery"),
                                _object({"already_acknowledged": _field("boolean")}),
                            ]
                        },
                    ),
                },
                unknown="delivery",
                parameters=[delivery_id],
            )
        },
        "/admin/reload": {
            "post": _admin(
                "Reload rules.yaml",
                {
                    "200": _answer(
                        "reloaded: rule count, sinks, and `warnings`: what `check` says of the"
                        " file (FILE:LINE:COL: message each)",
                        {"type": "object"},
                    ),
                    "400": _answer(
                        "invalid: every error (the running rules stay)", _ref("Invalid")
                    ),
                },
            )
        },
        "/admin/backfill": {
            "post": _admin(
                "Fetch calls from RevRing's API by id and ingest them",
                {
                    "200": _answer("the summary", _ref("BackfillSummary")),
                    "400": _error("the body is not JSON"),
                    "409": _error("ROUTER_REVRING_API_KEY is not set"),
                    "422": _error("a bad body"),
                },
                requestBody=_body(_ref("BackfillRequest")),
            )
        },
        "/admin/forget": {
            "post": _admin(
                "Forget a caller: their calls deleted, their number [erased] elsewhere"
                " (admin role)",
                {
                    "200": _answer("the counts", _ref("ForgetSummary")),
                    "400": _error("the body is not JSON"),
                    "422": _answer(
                        "a bad body: a missing phone, one that is no phone number, a bad"
                        " dry_run or an unknown field (the number is never repeated)",
                        _ref("Invalid"),
                    ),
                },
                requestBody=_body(_ref("ForgetRequest")),
            )
        },
        "/admin/events": {
            "get": _admin(
                "List calls in one verification state (verify mode)",
                {
                    "200": _answer("calls", {"type": "array", "items": _ref("Event")}),
                    "400": _error("a bad verification or limit"),
                },
                parameters=[
                    _query(
                        "verification",
                        {
                            "type": "string",
                            "default": "pending",
                            "enum": ["pending", "not_verified", "verified", "released"],
                        },
                        "verification state",
                    ),
                    LIMIT,
                    OFFSET,
                ],
            )
        },
        "/admin/events/{id}/release": {
            "post": _admin(
                "Route a held or not-verified call with its posted body",
                {
                    "200": _answer("released, with the deliveries made", {"type": "object"}),
                    "409": _error("the call is not held"),
                    "503": _error("rules.yaml is not loaded"),
                },
                unknown="call",
                parameters=[_path("id", "call id")],
            )
        },
        "/admin/silences": {
            "get": _admin(
                "List silences (expired ones for 30 days)",
                {
                    "200": _answer("silences", {"type": "array", "items": _ref("Silence")}),
                    "400": _error("a bad state"),
                },
                parameters=[
                    _query(
                        "state",
                        {"type": "string", "enum": ["active", "pending", "expired"]},
                        "only this state",
                    ),
                ],
            ),
            "post": _admin(
                "Create a silence",
                {
                    "201": _answer("the silence", _ref("Silence")),
                    "422": _answer("every problem of the request", _ref("Invalid")),
                },
                requestBody=_body(_ref("SilenceRequest")),
            ),
        },
        "/admin/silences/{id}": {
            "delete": _admin(
                "Expire a silence now (it stays listed as expired)",
                {"200": _answer("the expired silence", _ref("Silence"))},
                unknown="silence",
                parameters=[_path("id", "silence id")],
            )
        },
        "/admin/sinks": {
            "get": _admin(
                "Each sink, paused or not",
                {"200": _answer("sinks", {"type": "array", "items": _ref("SinkState")})},
            )
        },
        "/admin/sinks/{name}/pause": {
            "post": _admin(
                "Hold a sink's deliveries on every replica",
                {
                    "200": _answer("the pause", _ref("SinkState")),
                    "422": _answer("an unknown sink or a bad duration", _ref("Invalid")),
                },
                parameters=[_path("name", "sink name")],
                requestBody=_body(_ref("PauseRequest")),
            )
        },
        "/admin/sinks/{name}/resume": {
            "post": _admin(
                "Release a paused sink",
                {
                    "200": _answer("resumed", _ref("SinkState")),
                    "422": _answer("an unknown sink", _ref("Invalid")),
                },
                parameters=[_path("name", "sink name")],
            )
        },
        "/slack/interactions": {
            "post": {
                "summary": "Slack's clicks on the alerts' Acknowledge and Silence buttons",
                "description": "Signed by Slack (X-Slack-Signature with the app's signing "
                "secret); answers at once, the work follows.",
                "tags": ["slack"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": _object({"payload": _field("string", "Slack's JSON")})
                        }
                    },
                },
                "responses": {
                    "200": _answer("taken (empty body)"),
                    "400": _error("not a click on the router's buttons"),
                    "401": _error("a bad signature, or a timestamp more than 5 minutes off"),
                    "404": _error("no slack sink has a signing_secret (before the body is read)"),
                    "408": _error("body not received within ROUTER_BODY_TIMEOUT"),
                    "413": _error("body over 1 MiB"),
                },
            }
        },
    }


def _with_roles(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Each /admin/* operation with the role it needs (`router.web.permissions`, the one
    table the server enforces) and, above viewer, its 403."""
    for path, operations in paths.items():
        if not path.startswith("/admin/"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue  # `parameters` shared by the path's operations
            needed = permission(method, path)
            operation["x-role"] = needed.role
            operation["description"] = f"Role: {needed.role}." + (
                f" {operation['description']}" if operation.get("description") else ""
            )
            if needed.role != "viewer":
                refused = _error(f"the caller's role may not {needed.says}; needs {needed.role}")
                operation["responses"] = dict(
                    sorted({**operation["responses"], "403": refused}.items())
                )
    return paths


@cache
def openapi_document() -> dict[str, Any]:
    """The document (built once; callers must not change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "revring-router",
            "version": __version__,
            "description": "Receives RevRing post-call webhooks and routes them to sinks. "
            "The webhook needs an `x-api-key` from ROUTER_API_KEYS; `/admin/*` needs "
            "`Authorization: Bearer` with ROUTER_ADMIN_TOKEN (an admin) or a user's personal "
            "token (`revring-router user token`: that user's role), and answers 404 while "
            "neither ROUTER_ADMIN_TOKEN nor ROUTER_USERS_FILE is set. Every `GET` needs the "
            "viewer role; each operation that changes something names the role it needs, and "
            "a caller below it gets 403 with the reason. "
            "Every route reads its body only once its credential is checked, and holds it to "
            "the webhook's limits (1 MiB: 413; ROUTER_BODY_TIMEOUT: 408); a body that is not "
            "valid UTF-8 (or the charset its Content-Type names), or names an unknown charset, "
            "is a 400 (the webhook reads JSON as UTF-8, whatever charset it names: a call is "
            "never refused for its label). Failed credentials (console sign-ins and bearer "
            "tokens together) are limited to 5 a minute per client address, then 429 with "
            "`Retry-After`.",
        },
        "paths": _with_roles(_paths()),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "an `x-api-key` header holding one of ROUTER_API_KEYS",
                },
                "AdminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer $ROUTER_ADMIN_TOKEN`, or a user's"
                    " personal token (`rr_<user>_...`, made by `revring-router user token`)",
                },
            },
        },
    }


@cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document(), indent=2).encode()


async def _serve(request: web.Request) -> web.Response:
    return web.Response(body=_document_bytes(), content_type=JSON)


def openapi_routes() -> list[web.RouteDef]:
    return [web.get(OPENAPI_PATH, _serve)]
