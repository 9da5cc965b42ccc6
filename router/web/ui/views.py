"""The console's pages: overview, deliveries, one delivery, rules and the rules playground.

Each handler reads what it shows through the store's bounded queries (never a whole
table) and the live runtime, and renders one template. Forms that change something
(replay) are POSTs checked for the session's CSRF token before they get here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Metric
from yarl import URL

from router.config import Config, Runtime, check_findings
from router.core.events import EventRejected, TooDeep, decode_json, parse_event
from router.core.metrics import Metrics
from router.core.phones import mask_phone_numbers, mask_phone_numbers_in
from router.core.samples import DEFAULT_SAMPLE, SAMPLE_NAMES, sample_call, sample_event
from router.engine import DeliveryEngine, Preview, preview
from router.operators import AuditTrail, BulkReplay, acknowledge_delivery, acknowledgement_key
from router.store import CallFilters, DeliveryView, EventView, OperatorConsole, SinkCounts
from router.web.actors import actor_of
from router.web.request_body import read_form
from router.web.ui.pages import Pages, confirmed, path_part, when
from sinks.base import SinkConfig
from sinks.secrets import MASK, redact

STATUSES = ("pending", "delivered", "dead", "muted")
PAGE_SIZE = 50
LAST_PAGE = 1000  # pages beyond this show as this one (offsets stay small)
RECENT_SECONDS = 3600.0  # the overview's "delivered in the last hour"
LAST_ERROR_SCAN = 20  # a sink's newest deliveries looked at for its last error
PLAYGROUND_SAMPLE = "sample"  # the form's older name for the default sample
PLAYGROUND_RECENT_CALLS = 10  # stored calls offered in the playground
NO_SINK_CHOSEN = "choose the sink whose dead deliveries to replay"

_SECRET_KEY_LINE = re.compile(
    r"^(?P<head>\s*(?:-\s+)?[\"']?(?:webhook_url|token|password|signing_secret|routing_key|url"
    r"|authorization|api_key|secret|client_secret|refresh_token)[\"']?\s*:[ \t]*)"
    r"(?P<value>\S.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_HARMLESS_REST = re.compile(r"^(?:bearer|basic|token)?$", re.IGNORECASE)


def secret_values(sink: SinkConfig) -> list[str]:
    """Every secret string a sink's settings hold (SecretStr values, secret headers, the
    secret parts of its URL)."""
    return sink.secret_values()


def _masked_value(value: str) -> str:
    """A secret setting's value as written in rules.yaml: `${VAR}` references stay
    (the file then holds no secret), a default after `:-` and any literal become `***`."""
    shown = _VARIABLE.sub(
        lambda m: f"${{{m['name']}:-{MASK}}}" if m["default"] else m.group(0), value
    )
    rest = _VARIABLE.sub("", value.split(" #")[0]).strip().strip("\"'").strip()
    return shown if _HARMLESS_REST.match(rest) else MASK


@dataclass(frozen=True)
class CheckProblem:
    """One thing `check` says about the running rules.yaml, as the rules page lists it."""

    severity: str  # error | warning
    line: int
    column: int
    message: str


def check_problems(config: Config) -> list[CheckProblem]:
    """What `revring-router check` says about `config` once loaded (it renders every
    template for the sample calls: call it off the event loop), secrets masked."""
    secrets = [value for sink in config.sinks.values() for value in secret_values(sink)]
    return [
        CheckProblem(
            severity,
            problem.position.line,
            problem.position.column,
            redact(problem.message, secrets),
        )
        for problem, severity in check_findings(config)
    ]


def masked_rules_text(text: str, secrets: Sequence[str]) -> str:
    """rules.yaml with every secret hidden: the loaded config's secret values wherever
    they appear, and the value of every secret-looking key that is not only a `${VAR}`."""
    text = redact(text, secrets)
    return _SECRET_KEY_LINE.sub(lambda m: m["head"] + _masked_value(m["value"]), text)


class PlaygroundChoice(Exception):
    """The playground form picked a call that is not there (status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SinkRow:
    name: str
    type: str
    missing: list[str]
    paused_until: float | None
    consecutive_failures: int
    pending: int
    oldest_pending_at: float | None
    dead: int
    retrying: int
    muted: int
    delivered_last_hour: int
    open_digests: int
    last_error: str | None
    in_config: bool
    held_until: float | None = None  # paused by hand (`sink pause`) until then
    held_comment: str = ""


def _counter_values(metric_family: Metric, label: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for sample in metric_family.samples:
        if sample.name.endswith("_total"):
            key = sample.labels.get(label, "")
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def ingest_counts(metrics: Metrics) -> dict[str, dict[str, float]]:
    """Webhook requests since this process started: by outcome, and rejections by reason."""
    outcomes: dict[str, float] = {}
    reasons: dict[str, float] = {}
    for family in metrics.events_received.collect():
        outcomes = _counter_values(family, "outcome")
    for family in metrics.events_rejected.collect():
        reasons = _counter_values(family, "reason")
    return {"outcomes": outcomes, "reasons": reasons}


def _page_number(text: str | None) -> int:
    try:
        return min(max(int(text or "1"), 1), LAST_PAGE)
    except ValueError:
        return 1


class ConsoleViews:
    def __init__(
        self,
        pages: Pages,
        store: OperatorConsole,
        runtime: Runtime,
        engine: DeliveryEngine,
        metrics: Metrics,
        trail: AuditTrail | None = None,
    ) -> None:
        self.pages = pages
        self.store = store
        self.runtime = runtime
        self.engine = engine
        self.metrics = metrics
        self.trail = trail if trail is not None else AuditTrail(store)

    # Overview

    async def _last_error(self, sink: str) -> str | None:
        for status in ("pending", "dead"):
            for view in await self.store.list_deliveries(status, sink, LAST_ERROR_SCAN):
                if view.last_error:
                    return view.last_error
        return None

    async def _sink_rows(self, now: float) -> list[SinkRow]:
        config = self.runtime.config
        counts = await self.store.sink_counts(now - RECENT_SECONDS)
        open_groups = await self.store.open_groups(now)
        rows = []
        for name in [*config.sinks, *sorted(set(counts) - set(config.sinks))]:
            settings = config.sinks.get(name)
            numbers = counts.get(name, SinkCounts())
            lane = self.engine.lanes.get(name)
            breaker = lane.breaker if lane is not None else None
            paused = breaker.paused_until if breaker and breaker.is_paused(now) else None
            controls = self.engine.controls
            held = controls.pause_of(name, now) if controls is not None else None
            rows.append(
                SinkRow(
                    name=name,
                    type=settings.type if settings else "-",
                    missing=settings.missing_settings() if settings else [],
                    paused_until=paused,
                    consecutive_failures=breaker.consecutive_failures if breaker else 0,
                    pending=numbers.pending,
                    oldest_pending_at=numbers.oldest_pending_created_at,
                    dead=numbers.dead,
                    retrying=numbers.retrying,
                    muted=numbers.muted,
                    delivered_last_hour=numbers.delivered_since,
                    open_digests=open_groups.get(name, 0),
                    last_error=await self._last_error(name),
                    in_config=settings is not None,
                    held_until=held.until if held else None,
                    held_comment=held.comment if held else "",
                )
            )
        return rows

    async def overview(self, request: web.Request) -> web.Response:
        now = time.time()
        config = self.runtime.config
        return self.pages.render(
            request,
            "overview.html",
            title="Overview",
            nav="overview",
            now=now,
            sinks=await self._sink_rows(now),
            config=config,
            config_path=self.runtime.config_path,
            loaded_at=self.runtime.loaded_at,
            last_reload=self.runtime.last_reload,
            ingest=ingest_counts(self.metrics),
        )

    # Deliveries

    async def _deliveries_page(
        self, status: str | None, sink: str | None, rule: str | None, page: int
    ) -> tuple[list[DeliveryView], bool]:
        """One page of deliveries (newest first), and whether there is a next page."""
        offset = (page - 1) * PAGE_SIZE
        views = await self.store.list_deliveries(
            status,  # type: ignore[arg-type]
            sink,
            PAGE_SIZE + 1,
            offset,
            rule=rule,
        )
        return views[:PAGE_SIZE], len(views) > PAGE_SIZE

    async def deliveries(self, request: web.Request) -> web.Response:
        query = request.query
        status = query.get("status", "").strip().lower() or None  # in any case, as calls'
        if status is not None and status not in STATUSES:
            return self.pages.problem(
                request, 400, f"status must be one of {', '.join(STATUSES)}; got {status!r}"
            )
        sink = query.get("sink") or None
        rule = query.get("rule") or None
        page = _page_number(query.get("page"))
        views, more = await self._deliveries_page(status, sink, rule, page)
        config = self.runtime.config
        waits = unconfigured_waits(self.runtime)
        waiting = dict.fromkeys(view.sink for view in views if view.status == "pending")
        counts = await self.store.sink_counts()
        dead_letters = status == "dead" and sink is None and rule is None  # the menu's entry
        return self.pages.render(
            request,
            "deliveries.html",
            title="Dead letters" if dead_letters else "Deliveries",
            nav="dead" if dead_letters else "deliveries",
            now=time.time(),
            views=views,
            statuses=STATUSES,
            sink_names=sorted({*config.sinks, *counts}),
            rule_names=[r.name for r in config.rules],
            status=status,
            sink=sink,
            rule=rule,
            page=page,
            more=more,
            dead_of_sink=counts[sink].dead if sink in counts else 0,
            replayed=query.get("replayed"),
            waits=waits,
            waiting=[waits[name] for name in waiting if name in waits],
        )

    async def confirm_replay_dead(self, request: web.Request) -> web.Response:
        sink = request.query.get("sink") or ""
        counts = await self.store.sink_counts()
        if not sink:
            return self.pages.problem(
                request, 400, "choose the sink whose dead deliveries to replay"
            )
        return self.pages.render(
            request,
            "replay_dead.html",
            title="Replay dead deliveries",
            nav="deliveries",
            sink=sink,
            dead=counts[sink].dead if sink in counts else 0,
        )

    async def replay_dead(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        sink = str(form.get("sink") or "")
        if not sink or "\x00" in sink:
            return self.pages.problem(
                request, 400, "choose the sink whose dead deliveries to replay"
            )
        count = await self.trail.replay_many(actor_of(request), BulkReplay("dead", sink))
        self.engine.wake()
        location = (
            request.app.router["deliveries"].url_for().with_query(sink=sink, replayed=str(count))
        )
        raise web.HTTPSeeOther(location)

    # One delivery

    async def delivery(self, request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        view = await self.store.get_delivery(delivery_id)
        if view is None:
            return self.pages.problem(request, 404, f"no delivery {delivery_id!r}")
        attempts = await self.store.list_attempts(delivery_id)
        acknowledgement = await self.store.acknowledgement(*acknowledgement_key(view))
        escalated_to = await self.store.escalations_of(delivery_id)
        calls: list[dict[str, Any]] = []
        if view.kind == "digest":
            for payload in (await self.store.digest_calls(delivery_id))[:PAGE_SIZE]:
                try:
                    call = decode_json(payload)
                except ValueError:
                    continue
                if isinstance(call, dict):
                    calls.append(call)
        return self.pages.render(
            request,
            "delivery.html",
            title=f"Delivery {delivery_id}",
            nav="deliveries",
            now=time.time(),
            view=view,
            attempts=attempts,
            acknowledgement=acknowledgement,
            escalated_to=escalated_to,
            calls=calls,
            outcome=request.query.get("replay"),
            acknowledged=request.query.get("acknowledged"),
            waits=unconfigured_waits(self.runtime),
        )

    async def acknowledge(self, request: web.Request) -> web.Response:
        """Acknowledge a delivery (its call for its rule, or its digest), in any state;
        back to its page, or to the call's page the form came from (`call`)."""
        delivery_id = request.match_info["id"]
        form = await read_form(request)
        done = await acknowledge_delivery(
            self.trail, self.store, delivery_id, actor_of(request), time.time(), channel="console"
        )
        if done is None:
            return self.pages.problem(request, 404, f"no delivery {delivery_id!r}")
        outcome = "yes" if done.first else "already"
        call = str(form.get("call") or "")
        if call:
            location = URL(f"/ui/calls/{path_part(call)}", encoded=True)
            answer = {"acknowledged": outcome, "rule": done.view.rule}
            raise web.HTTPSeeOther(location.with_query(answer))
        location = request.app.router["delivery"].url_for(id=delivery_id)
        raise web.HTTPSeeOther(location.with_query(acknowledged=outcome))

    async def replay(self, request: web.Request) -> web.Response:
        """Replay one delivery; one delivered already only once the person confirmed
        (the page that asks, or the script's dialog: `confirm=yes`)."""
        delivery_id = request.match_info["id"]
        location = request.app.router["delivery"].url_for(id=delivery_id)
        view = await self.store.get_delivery(delivery_id)
        if view is None:
            return self.pages.problem(request, 404, f"no delivery {delivery_id!r}")
        if view.status == "delivered" and not confirmed(await read_form(request)):
            page = f"/ui/deliveries/{path_part(delivery_id)}"
            return confirm_replay(self.pages, request, view, action=f"{page}/replay", back=page)
        if await self.trail.replay(actor_of(request), delivery_id):
            self.engine.wake()
            raise web.HTTPSeeOther(location.with_query(replay="requeued"))
        raise web.HTTPSeeOther(location.with_query(replay="busy"))

    # Rules and the playground

    def _rules_file(self) -> tuple[str, bool]:
        """rules.yaml as on disk with its secrets masked, and whether it changed after it
        was loaded."""
        config = self.runtime.config
        secrets = [value for sink in config.sinks.values() for value in secret_values(sink)]
        path = Path(self.runtime.config_path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            changed = path.stat().st_mtime > self.runtime.loaded_at
        except OSError as exc:
            return f"(cannot read {path}: {exc.strerror})", False
        return masked_rules_text(text, secrets), changed

    async def rules(self, request: web.Request) -> web.Response:
        event_text = json.dumps(sample_event(), indent=2, ensure_ascii=False)
        return await self._rules_page(request, event_text=event_text)

    async def _rules_page(
        self,
        request: web.Request,
        *,
        event_text: str,
        result: Preview | None = None,
        problems: Sequence[str] = (),
        status: int = 200,
    ) -> web.Response:
        config = self.runtime.config
        text, changed = self._rules_file()
        recent = await self.store.list_events(CallFilters(), None, PLAYGROUND_RECENT_CALLS)
        checked = await asyncio.to_thread(check_problems, config)
        return self.pages.render(
            request,
            "rules.html",
            http_status=status,
            title="Rules",
            nav="rules",
            config=config,
            config_path=self.runtime.config_path,
            rules_text=text,
            file_changed=changed,
            check_problems=checked,
            event_text=event_text,
            result=result,
            problems=problems,
            sample_names=SAMPLE_NAMES,
            recent_calls=recent,
        )

    async def _chosen_call(self, form: Mapping[str, Any]) -> str | None:
        """The JSON of the call the playground form picked (a sample by name, or a stored
        call by id), or None when it picked none and the text area counts."""
        sample = form.get("sample")
        if isinstance(sample, str) and sample:
            name = DEFAULT_SAMPLE if sample == PLAYGROUND_SAMPLE else sample
            if name not in SAMPLE_NAMES:
                raise PlaygroundChoice(
                    404, f"no sample call {name!r}; there are {', '.join(SAMPLE_NAMES)}"
                )
            return json.dumps(sample_call(name), indent=2, ensure_ascii=False)
        if "load_call" not in form:
            return None
        call_id = str(form.get("call_id") or "").strip()
        if not call_id:
            raise PlaygroundChoice(400, "give the id of a stored call to load it")
        event = await self.store.get_event(call_id)
        if event is None:
            raise PlaygroundChoice(404, f"no stored call {call_id!r}")
        return stored_call_text(event)

    async def playground(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        try:
            chosen = await self._chosen_call(form)
        except PlaygroundChoice as exc:
            event_text = str(form.get("event") or "")
            return await self._rules_page(
                request, event_text=event_text, problems=[exc.message], status=exc.status
            )
        event_text = chosen if chosen is not None else str(form.get("event") or "")
        try:
            payload = decode_json(event_text.encode(), refuse_deep=True)
        except TooDeep as exc:
            problems = [f"not a valid call: {problem}" for problem in exc.problems]
            return await self._rules_page(
                request, event_text=event_text, problems=problems, status=422
            )
        except ValueError as exc:
            return await self._rules_page(
                request, event_text=event_text, problems=[f"malformed JSON: {exc}"], status=400
            )
        try:
            parse_event(payload)
        except EventRejected as exc:
            return await self._rules_page(
                request,
                event_text=event_text,
                problems=[f"not a valid call: {problem}" for problem in exc.problems],
                status=422,
            )
        result = preview(self.runtime.config, payload)
        return await self._rules_page(request, event_text=event_text, result=result)


@dataclass(frozen=True)
class Waiting:
    """Why an unconfigured sink's pending deliveries wait: the settings that came out
    empty and what gives them a value (`router.config.unconfigured`)."""

    sink: str
    missing: list[str]
    until: str  # "its deliveries wait until …"

    @property
    def short(self) -> str:
        return f"not configured ({', '.join(self.missing)} empty)"

    def __str__(self) -> str:
        return f"{self.sink} is not configured ({', '.join(self.missing)} empty): {self.until}"


def unconfigured_waits(runtime: Runtime) -> dict[str, Waiting]:
    """Each sink of the loaded rules.yaml that is not configured, and why its deliveries
    wait (a restart for settings from the environment, an edit and a reload else)."""
    if not runtime.loaded:
        return {}
    config = runtime.config
    return {
        name: Waiting(name, missing, config.waiting_for(name))
        for name, missing in config.unconfigured_sinks().items()
    }


def confirm_replay(
    pages: Pages,
    request: web.Request,
    view: DeliveryView,
    *,
    action: str,
    back: str,
    nav: str = "deliveries",
) -> web.Response:
    """The page that asks before a delivered delivery is sent again."""
    return pages.confirm(
        request,
        title="Replay a delivered delivery?",
        question=(
            f"This delivery was delivered to {view.sink} already. Replaying it sends it"
            f" again: {view.sink} gets it a second time."
        ),
        action=action,
        button="Replay it anyway",
        cancel=back,
        nav=nav,
        facts=[
            ("Delivery", view.id),
            ("Sink", view.sink),
            ("Rule", view.rule),
            ("Delivered", when(view.delivered_at)),
        ],
    )


def stored_call_text(event: EventView) -> str:
    """A stored call's body for the playground, its phone numbers masked as on the call's
    page: indented when it is JSON (read cut at the depth limit), else as stored."""
    raw = bytes(event.payload or b"")
    try:
        body = decode_json(raw)
    except ValueError:
        return mask_phone_numbers(raw.decode("utf-8", errors="replace"))
    return json.dumps(mask_phone_numbers_in(body), indent=2, ensure_ascii=False)


def short_error(text: str | None, limit: int = 160) -> str:
    """A delivery's error as the console lists it: numbers masked, cut to `limit`."""
    if not text:
        return ""
    text = mask_phone_numbers(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
