"""The console's calls: the newest calls with a search box and filters (keyset-paginated),
each with its worst delivery state, and one call with its summary, a transcript excerpt,
the rules it matched and every delivery with every attempt.

The search box (`q`) is `revring-router calls --q` and `GET /admin/calls?q=`: a phone
number in any common format, or words of the summary and transcript
(`router.core.call_search`). Status and hang-up cause are chosen among the values the
store holds, and match in any case.

The pure parts (reading the filters from a query string, a call's body made ready to
show) are apart from the handlers, which read through the store's bounded queries.
Phone numbers are masked wherever a call's text is shown; templates escape everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from router.config import Runtime
from router.core.call_search import SearchInvalid, parse_search
from router.core.events import KNOWN_DIRECTIONS, decode_json
from router.engine import DeliveryEngine, preview
from router.operators import AuditTrail, acknowledgement_key
from router.store import (
    Acknowledgement,
    CallFilters,
    DeliveryView,
    EventCursor,
    EventView,
    OperatorConsole,
)
from router.web.actors import actor_of
from router.web.request_body import read_form
from router.web.ui.pages import Pages, confirmed, path_part
from router.web.ui.views import confirm_replay, unconfigured_waits

CALLS_PAGE_SIZE = 50
TRANSCRIPT_EXCERPT = 12  # transcript entries shown on a call's page
ENTRY_TEXT_LIMIT = 600  # characters of one transcript entry shown
BODY_TEXT_LIMIT = 20_000  # characters of the call's body as received shown
REPLAYABLE = ("dead", "muted")
# The query-string names of the calls page's filters, and the `CallFilters` field of each.
TEXT_FILTERS = {
    "status": "status",
    "direction": "direction",
    "agent": "agent_id",
    "organization": "organization_id",
    "hangup": "hangup_cause",
    "call": "call_id",
}
TIME_FILTERS = {"from": "received_from", "to": "received_to"}
SEARCH = "q"
FILTER_NAMES = (SEARCH, *TEXT_FILTERS, *TIME_FILTERS)


class BadFilter(ValueError):
    """A filter's value the calls page cannot use; the message names it."""


def parse_time(name: str, text: str) -> float:
    """A time filter (`2026-11-20T15:02`, `2026-11-20 15:02:11`, with or without a zone;
    none means UTC) as unix seconds."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadFilter(
            f"{name} must be a date and time such as 2026-11-20T15:02 (UTC); got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_call_filters(query: Mapping[str, str]) -> CallFilters:
    """The calls page's filters from its query string (empty values are no filter); the
    search box `q` as `calls --q` (a number, or words)."""
    given: dict[str, Any] = {}
    try:
        search = parse_search(query.get(SEARCH, ""))
    except SearchInvalid as problem:
        raise BadFilter(f"search: {problem}") from None
    if search.phone is not None:
        given["phone"] = search.phone
    if search.words:
        given["words"] = search.words
    for name, field_name in TEXT_FILTERS.items():
        value = query.get(name, "").strip()
        if value:
            upper = name in ("status", "direction", "hangup")
            given[field_name] = value.upper() if upper else value
    for name, field_name in TIME_FILTERS.items():
        value = query.get(name, "").strip()
        if value:
            given[field_name] = parse_time(name, value)
    return CallFilters(**given)


def parse_cursor(query: Mapping[str, str]) -> EventCursor | None:
    """Where the page starts: `before_at` (received_at) and `before_id` of the call just
    above it, or None for the newest calls."""
    at, call_id = query.get("before_at", ""), query.get("before_id", "")
    if not at and not call_id:
        return None
    try:
        received_at = float(at)
    except ValueError:
        raise BadFilter(f"before_at must be a number; got {at!r}") from None
    if received_at != received_at or not call_id:  # NaN, or half a cursor
        raise BadFilter("before_at and before_id go together (the link to older calls)")
    return received_at, call_id


def payload_of(event: EventView) -> dict[str, Any]:
    """The call's body as a dict (a stored body is always a JSON object; anything else,
    or a body a list of calls left out for its size, shows as empty)."""
    if event.payload is None:
        return {}
    try:
        body = decode_json(bytes(event.payload))  # one stored before the depth limit: cut
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class TranscriptLine:
    speaker: str
    text: str


def transcript_excerpt(
    transcript: Any, limit: int = TRANSCRIPT_EXCERPT
) -> tuple[list[TranscriptLine], int]:
    """The first `limit` entries of a transcript (role/content, speaker/text, or anything
    else shown as its JSON) and how many entries it has in all."""
    if not isinstance(transcript, list):
        return [], 0
    lines = []
    for entry in transcript[:limit]:
        if isinstance(entry, Mapping):
            speaker = _text(entry.get("role", entry.get("speaker", "")))
            said = entry.get("content", entry.get("text"))
            text = _text(said) if said is not None else _text(dict(entry))
        else:
            speaker, text = "", _text(entry)
        lines.append(TranscriptLine(_cut(speaker, 40), _cut(text, ENTRY_TEXT_LIMIT)))
    return lines, len(transcript)


@dataclass(frozen=True)
class CallRow:
    """One call as the calls page lists it."""

    id: str
    received_at: float
    status: str
    direction: str
    from_number: str
    to_number: str
    agent: str
    agent_id: str
    organization_id: str
    hangup_cause: str
    duration: Any
    worst: str = ""  # the worst state of its deliveries ('' when it has none)


def call_row(event: EventView, worst: str = "") -> CallRow:
    body = payload_of(event)
    return CallRow(
        id=event.id,
        received_at=event.received_at,
        status=event.status,
        direction=event.direction,
        from_number=_text(body.get("fromNumber")),
        to_number=_text(body.get("toNumber")),
        agent=_text(body.get("agentName")),
        agent_id=event.agent_id,
        organization_id=event.organization_id,
        hangup_cause=event.hangup_cause,
        duration=body.get("durationSeconds"),
        worst=worst,
    )


def choices(present: list[str], chosen: str) -> list[str]:
    """A filter's choices: the values the store holds, and the one in the query string
    (in upper case, as compared) when it is none of them."""
    chosen = chosen.strip().upper()
    return present if not chosen or chosen in present else sorted([*present, chosen])


@dataclass(frozen=True)
class DeliveryWithAttempts:
    view: DeliveryView
    attempts: list[Any]
    joined: bool  # a digest another call opened, which this call joined
    acknowledgement: Acknowledgement | None = None


def rule_acknowledgements(
    deliveries: list[DeliveryWithAttempts],
) -> list[tuple[str, Acknowledgement | None]]:
    """Each rule the call's own deliveries (not digests it joined) were made for, by name,
    with the earliest acknowledgement that counts for one of them (its call and rule, a
    digest of it, or an old one of the whole call)."""
    by_rule: dict[str, list[Acknowledgement]] = {}
    for item in deliveries:
        if item.joined:
            continue
        found = by_rule.setdefault(item.view.rule, [])
        if item.acknowledgement is not None:
            found.append(item.acknowledgement)
    return [
        (rule, min(found, key=lambda a: a.at, default=None))
        for rule, found in sorted(by_rule.items())
    ]


class CallViews:
    def __init__(
        self,
        pages: Pages,
        store: OperatorConsole,
        runtime: Runtime,
        engine: DeliveryEngine,
        trail: AuditTrail | None = None,
    ) -> None:
        self.pages = pages
        self.store = store
        self.runtime = runtime
        self.engine = engine
        self.trail = trail if trail is not None else AuditTrail(store)

    async def calls(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            filters = parse_call_filters(query)
            cursor = parse_cursor(query)
        except BadFilter as problem:
            return self.pages.problem(request, 400, str(problem))
        found = await self.store.list_events(filters, cursor, CALLS_PAGE_SIZE + 1)
        listed = found[:CALLS_PAGE_SIZE]
        worst = await self.store.worst_delivery_states([event.id for event in listed])
        rows = [call_row(event, worst.get(event.id, "")) for event in listed]
        kept = {name: query[name] for name in FILTER_NAMES if query.get(name)}
        older = None
        if len(found) > CALLS_PAGE_SIZE:
            last = rows[-1]
            older = {**kept, "before_at": repr(last.received_at), "before_id": last.id}
        form = {name: query.get(name, "") for name in FILTER_NAMES}
        statuses = await self.store.call_column_values("status")
        causes = await self.store.call_column_values("hangup_cause")
        return self.pages.render(
            request,
            "calls.html",
            title="Calls",
            nav="calls",
            rows=rows,
            form=form,
            filtered=bool(filters.given()) or bool(filters.words),
            paged=cursor is not None,
            older=older,
            newest=kept,
            statuses=choices(statuses, form["status"]),
            directions=sorted(KNOWN_DIRECTIONS),
            hangup_causes=choices(causes, form["hangup"]),
        )

    async def call(self, request: web.Request) -> web.Response:
        call_id = request.match_info["id"]
        event = await self.store.get_event(call_id)
        if event is None:
            return self.pages.problem(request, 404, f"no call {call_id!r}")
        body = payload_of(event)
        deliveries = []
        for view in await self.store.deliveries_of_event(call_id):
            attempts = await self.store.list_attempts(view.id)
            acknowledgement = await self.store.acknowledgement(*acknowledgement_key(view))
            joined = view.event_id != call_id
            deliveries.append(DeliveryWithAttempts(view, attempts, joined, acknowledgement))
        transcript, transcript_entries = transcript_excerpt(body.get("transcript"))
        body_text = json.dumps(body, indent=2, ensure_ascii=False)
        return self.pages.render(
            request,
            "call.html",
            title=f"Call {call_id}",
            nav="calls",
            now=time.time(),
            event=event,
            call=body,
            summary=_text(body.get("summary")),
            transcript=transcript,
            transcript_entries=transcript_entries,
            deliveries=deliveries,
            rules_recorded=rule_acknowledgements(deliveries),
            digests_joined=[d for d in deliveries if d.joined],
            would_match=self._would_match(body),
            body_text=_cut(body_text, BODY_TEXT_LIMIT),
            replayable=REPLAYABLE,
            replayed=request.query.get("replayed", ""),
            outcome=request.query.get("outcome", ""),
            acknowledged=request.query.get("acknowledged", ""),
            acknowledged_rule=request.query.get("rule", ""),
            waits=unconfigured_waits(self.runtime),
        )

    def _would_match(self, body: dict[str, Any]) -> list[str] | None:
        """The rules the loaded rules.yaml would match now (None when it cannot say)."""
        if not self.runtime.loaded or not body:
            return None
        try:
            result = preview(self.runtime.config, body, render=False)
        except Exception:  # a rule that cannot judge an odd stored body: say nothing
            return None
        return [rule.name for rule in result.matched]

    async def replay(self, request: web.Request) -> web.Response:
        """Replay one delivery from its call's page, and come back to that page."""
        call_id = request.match_info["id"]
        delivery_id = request.match_info["delivery"]
        location = URL(f"/ui/calls/{path_part(call_id)}", encoded=True)
        ours = {view.id: view for view in await self.store.deliveries_of_event(call_id)}
        if delivery_id not in ours:
            return self.pages.problem(
                request, 404, f"call {call_id!r} has no delivery {delivery_id!r}"
            )
        if ours[delivery_id].status == "delivered" and not confirmed(await read_form(request)):
            action = f"{location}/replay/{path_part(delivery_id)}"
            back = str(location)
            return confirm_replay(
                self.pages, request, ours[delivery_id], action=action, back=back, nav="calls"
            )
        replayed = await self.trail.replay(actor_of(request), delivery_id)
        outcome = "requeued" if replayed else "busy"
        if outcome == "requeued":
            self.engine.wake()
        raise web.HTTPSeeOther(location.with_query(replayed=delivery_id, outcome=outcome))
