"""The console's silences: the active and pending ones (and those expired in the last 30
days), a form that creates one through the same checks as `POST /admin/silences`, and an
*Expire* button; "Silence calls like this one" on a call's page opens the form with a
`when` built from that call.

The pure parts (a form read into the admin API's request body, a call's `when`) are apart
from the handlers. After a change the operators' controls are read again at once, as the
admin API does, so the silence applies to the next send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from router.config import Runtime
from router.engine import DeliveryEngine
from router.operators import (
    EXPIRED_SILENCES_KEPT,
    AuditTrail,
    RequestInvalid,
    parse_silence_request,
)
from router.rules import MAX_WHEN_DEPTH
from router.store import OperatorConsole, SilenceRecord
from router.web.actors import actor_of
from router.web.request_body import read_form
from router.web.ui.calls import payload_of
from router.web.ui.pages import Pages, confirmed, path_part, when
from sinks.slack.actions import PayloadInvalid, silence_condition

CALL_FIELDS = ("status", "sipTrunkId", "agentId")  # what "calls like this one" share
FORM_TEXT_FIELDS = ("when", "for", "ends_at", "starts_at", "comment")
WHEN_PLACEHOLDER = '{"status": "FAILED", "sipTrunkId": "trunk-a"}'


def silence_request(form: MultiMapping[Any]) -> tuple[dict[str, Any], list[str]]:
    """The admin API's request body from the console's form, and the problems only the
    form can have (its `when` is not JSON). Empty fields are left out, as if not given."""
    body: dict[str, Any] = {}
    problems: list[str] = []
    for name in FORM_TEXT_FIELDS:
        value = form.get(name)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            continue
        if name == "when":
            try:
                body["when"] = json.loads(text)
            except ValueError as exc:
                problems.append(f"when: not JSON ({exc})")
            except RecursionError:
                problems.append(f"when: nested deeper than {MAX_WHEN_DEPTH} levels")
        else:
            body[name] = text
    sinks = [name for name in form.getall("sinks", []) if isinstance(name, str)]
    if sinks:
        body["sinks"] = sinks
    return body, problems


def check_silence_form(
    form: MultiMapping[Any], *, now: float, known_sinks: Sequence[str]
) -> SilenceRecord:
    """A new silence from the console's form, or `RequestInvalid` naming every problem
    (the admin API's messages, and a `when` that is not JSON)."""
    body, problems = silence_request(form)
    try:
        record = parse_silence_request(body, now=now, known_sinks=known_sinks)
    except RequestInvalid as exc:
        # A `when` that was not JSON is reported once, not again as missing.
        rest = [e for e in exc.errors if not (problems and e.startswith("when: required"))]
        raise RequestInvalid(problems + rest) from None
    if problems:
        raise RequestInvalid(problems)
    return record


def when_of_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """A silence's `when` matching calls like this one: equality on each of
    `CALL_FIELDS` the call holds (empty when it holds none)."""
    try:
        when = silence_condition(CALL_FIELDS, [call])
    except PayloadInvalid:
        return {}
    return {name: value for name, value in when.items() if value != {"exists": False}}


@dataclass(frozen=True)
class SilenceRow:
    """One silence as the page lists it."""

    record: SilenceRecord
    state: str
    when_text: str


def silence_rows(records: Sequence[SilenceRecord], now: float) -> list[SilenceRow]:
    rows = []
    for record in records:
        try:
            when_text = json.dumps(json.loads(record.when), indent=2, ensure_ascii=False)
        except ValueError:  # a hand-edited row: show it as stored
            when_text = record.when
        rows.append(SilenceRow(record, record.state(now), when_text))
    return rows


class SilenceViews:
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

    def _known_sinks(self) -> list[str]:
        return sorted(self.runtime.config.sinks) if self.runtime.loaded else []

    async def _changed(self) -> None:
        if self.engine.controls is not None:
            await self.engine.controls.refresh()

    async def _page(
        self,
        request: web.Request,
        *,
        form: Mapping[str, Any],
        problems: Sequence[str] = (),
        from_call: str = "",
        http_status: int = 200,
    ) -> web.Response:
        now = time.time()
        records = await self.store.list_silences(ended_after=now - EXPIRED_SILENCES_KEPT)
        rows = silence_rows(records, now)
        expired = [row for row in rows if row.state == "expired"]
        expired.sort(key=lambda row: row.record.effective_end, reverse=True)
        return self.pages.render(
            request,
            "silences.html",
            http_status=http_status,
            title="Silences",
            nav="silences",
            now=now,
            current=[row for row in rows if row.state != "expired"],
            expired=expired,
            form=form,
            problems=list(problems),
            from_call=from_call,
            sinks=self._known_sinks(),
            when_placeholder=WHEN_PLACEHOLDER,
            created=request.query.get("created", ""),
            expired_id=request.query.get("expired", ""),
        )

    def _confirm_expire(self, request: web.Request, record: SilenceRecord) -> web.Response:
        (row,) = silence_rows([record], time.time())
        return self.pages.confirm(
            request,
            title="Expire this silence?",
            question=(
                "Expiring it ends it now: the calls it matches are delivered again from now"
                " on (those it muted stay muted until replayed)."
            ),
            action=f"/ui/silences/{path_part(record.id)}/expire",
            button="Expire it",
            cancel="/ui/silences",
            nav="silences",
            facts=[
                ("Silence", record.id),
                ("State", row.state),
                ("When", row.when_text),
                ("Sinks", ", ".join(record.sinks) if record.sinks is not None else "all sinks"),
                ("Ends", when(record.effective_end)),
                ("Comment", record.comment or "-"),
            ],
        )

    async def silences(self, request: web.Request) -> web.Response:
        """The list and the form; `?call=ID` fills the form's `when` from that call."""
        form: dict[str, Any] = {"when": "", "for": "", "ends_at": "", "starts_at": ""}
        form.update(comment="", sinks=[])
        call_id = request.query.get("call", "")
        if call_id:
            event = await self.store.get_event(call_id)
            if event is None:
                return self.pages.problem(request, 404, f"no call {call_id!r}")
            when = when_of_call(payload_of(event))
            form["when"] = json.dumps(when, indent=2, ensure_ascii=False) if when else ""
            form["for"] = "1h"
            form["comment"] = f"calls like {call_id}"
        return await self._page(request, form=form, from_call=call_id)

    async def create(self, request: web.Request) -> web.Response:
        posted = await read_form(request)
        now = time.time()
        try:
            record = check_silence_form(posted, now=now, known_sinks=self._known_sinks())
        except RequestInvalid as exc:
            form: dict[str, Any] = {name: str(posted.get(name, "")) for name in FORM_TEXT_FIELDS}
            form["sinks"] = [str(name) for name in posted.getall("sinks", [])]
            return await self._page(
                request,
                form=form,
                problems=exc.errors,
                from_call=str(posted.get("from_call", "")),
                http_status=422,
            )
        await self.trail.add_silence(actor_of(request), record)
        await self._changed()
        location = request.app.router["silences"].url_for().with_query(created=record.id)
        raise web.HTTPSeeOther(location)

    async def expire(self, request: web.Request) -> web.Response:
        """Expire a silence in force once the person confirmed (the page that asks, or
        the script's dialog: `confirm=yes`); one already over needs no asking."""
        silence_id = request.match_info["id"]
        now = time.time()
        if not confirmed(await read_form(request)):
            current = {s.id: s for s in await self.store.list_silences(ended_after=now)}
            if silence_id in current:
                return self._confirm_expire(request, current[silence_id])
        record = await self.trail.expire_silence(actor_of(request), silence_id, now)
        if record is None:
            return self.pages.problem(request, 404, f"no silence {silence_id!r}")
        await self._changed()
        location = request.app.router["silences"].url_for().with_query(expired=silence_id)
        raise web.HTTPSeeOther(location)
