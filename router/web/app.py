"""The aiohttp application: webhook, health, metrics and admin endpoints, with the store,
the live configuration and the delivery engine started and stopped alongside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router import __version__
from router.config import Runtime, watch_config_file
from router.core import tracing
from router.core.metrics import Metrics
from router.engine import (
    DeliveryEngine,
    EngineSettings,
    EscalationSettings,
    EscalationTimers,
    HealthPolicy,
    IngestLimits,
    Intake,
    ParseWorkers,
    RenderApart,
    StoreHealth,
    StoreThreads,
    WorkersUnavailable,
    console_base,
)
from router.engine.health import answer_within, is_store_failure
from router.operators import (
    EXPIRED_SILENCES_KEPT,
    AuditTrail,
    OidcSettings,
    OperatorControls,
    UsersFile,
)
from router.revring import RevRingApi, Verifier, VerifySettings, backfill, dry_run
from router.store import ConsoleReads, Maintenance, SinkBacklog, Store, open_store
from router.web.admin import BackfillRun, admin_routes
from router.web.connections import track_requests
from router.web.credential_limits import CredentialLimiter
from router.web.credentials import Credentials
from router.web.oidc import OidcClient
from router.web.openapi import openapi_routes
from router.web.request_body import BODY_LIMITS, BodyLimits, answer_refusals
from router.web.slack_interactions import SlackInteractions, slack_routes
from router.web.ui import PREFIX as CONSOLE_PREFIX
from router.web.ui import console_app
from router.web.webhook import ApiKeys, WebhookHandler
from sinks.base import SinkResources

log = logging.getLogger("router.web.app")

RUNTIME = web.AppKey("runtime", Runtime)
STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", DeliveryEngine)
ESCALATIONS = web.AppKey("escalations", EscalationTimers)
METRICS = web.AppKey("metrics", Metrics)
HEALTH = web.AppKey("health", StoreHealth)

READY_TIME_LIMIT = 2.0  # /readyz answers within this, whatever the store does


@dataclass
class ServiceSettings:
    config_path: str = "rules.yaml"
    store_url: str = "sqlite:///data/router.db"
    api_keys: ApiKeys | None = None  # None: no authentication (--no-auth)
    admin_token: str | None = field(default=None, repr=False)
    users_file: str | None = None  # ROUTER_USERS_FILE
    retention_days: float = 30.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    purge_interval: float = 3600.0
    watch_interval: float = 2.0  # 0: do not watch rules.yaml for changes
    ingest: IngestLimits = field(default_factory=IngestLimits)
    revring_api: RevRingApi | None = field(default=None, repr=False)  # backfill, verify
    verify_calls: bool = False  # ROUTER_VERIFY_CALLS=revring
    verify: VerifySettings = field(default_factory=VerifySettings)
    health: HealthPolicy = field(default_factory=HealthPolicy)  # outages, /readyz
    oidc: OidcSettings | None = None  # single sign-on to the console (ROUTER_OIDC_*)
    public_url: str | None = None  # ROUTER_PUBLIC_URL: links to the console in notices


async def _purge_periodically(store: Maintenance, retention_days: float, interval: float) -> None:
    while True:
        try:
            purged = await store.purge(time.time() - retention_days * 86400)
            if purged:
                log.info("purged %d delivered events older than %g days", purged, retention_days)
            audited = await store.purge_audit(time.time() - retention_days * 86400)
            if audited:
                log.info("purged %d audit records older than %g days", audited, retention_days)
            forgotten = await store.purge_silences(time.time() - EXPIRED_SILENCES_KEPT)
            if forgotten:
                log.info("purged %d silences ended more than 30 days ago", forgotten)
            await store.purge_sessions(time.time())
        except Exception:
            log.exception("purge failed")
        await asyncio.sleep(interval)


def _parse_worker_warnings(workers: ParseWorkers | None) -> list[str]:
    """What /readyz says of the parse workers when they run in a lesser way."""
    if workers is None:
        return []
    if workers.unavailable is not None:
        return [
            f"parse workers {workers.unavailable}: large bodies are parsed in the router's"
            " own thread"
        ]
    if workers.temp_dir is not None:
        return ["no usable temporary directory: parse workers use the store's directory"]
    return []


async def _start_parse_workers(workers: ParseWorkers | None) -> None:
    """Start the parse processes now rather than with the first large body."""
    if workers is None:
        return
    try:
        await workers.start()
    except WorkersUnavailable:
        pass  # logged by the workers; large bodies are parsed here meanwhile
    except Exception as exc:  # the first large body tries again
        log.warning("parse workers did not start: %s", exc)


def _spare_temp_dirs(store_url: str) -> list[str]:
    """Where parse workers may keep their files when no temporary directory is usable:
    the SQLite store's directory (writable: the store writes its journal there)."""
    if not store_url.startswith("sqlite:///"):
        return []
    path = Path(store_url.removeprefix("sqlite:///").split("?", 1)[0])
    return [str(path.parent.resolve())]


def build_app(settings: ServiceSettings, store: Store | None = None) -> web.Application:
    """The application; the store opens, rules.yaml loads and workers start on startup."""
    # Every route's body is read under the webhook's limits (`router.web.request_body`).
    app = web.Application(middlewares=[track_requests, answer_refusals])
    body_limits = BodyLimits(settings.ingest.body_timeout)
    app[BODY_LIMITS] = body_limits
    limiter = CredentialLimiter()  # failed credentials, console and admin API alike
    metrics = Metrics()
    store = store or open_store(settings.store_url)
    resources = SinkResources(tokens=store)  # sinks' access tokens, shared by replicas
    users = UsersFile(settings.users_file) if settings.users_file else None
    runtime = Runtime(settings.config_path, metrics, resources, users=users)
    credentials = Credentials(settings.admin_token, users)
    health = StoreHealth(policy=settings.health)
    clock = time.time
    resources.threads = StoreThreads(store, clock)  # Slack threads' parents (thread_by)
    engine = DeliveryEngine(runtime, store, metrics, settings.engine, clock=clock, health=health)
    engine.notices.public_url = console_base(settings.public_url)  # links in on_dead notices
    # Large bodies are parsed, and large calls' messages built, in these processes.
    workers = None
    if settings.ingest.parse_workers:
        spare = _spare_temp_dirs(settings.store_url)
        workers = ParseWorkers(settings.ingest.parse_workers, spare_temp_dirs=spare)
    if workers is not None:
        inline = settings.ingest.inline_parse_bytes
        engine.render_apart = RenderApart(workers, runtime, inline)
    controls = OperatorControls(store)
    engine.controls = controls
    # Every change of every surface is recorded through it (DESIGN.md section 14).
    trail = AuditTrail(store, lambda action: metrics.audit_events.labels(action).inc())
    controls.on_change(engine.wake)
    escalations = EscalationTimers(
        runtime,
        store,
        metrics,
        settings.escalation,
        owner=engine.owner,
        clock=clock,
        controls=controls,
        health=health,
    )
    app[ESCALATIONS] = escalations
    app[METRICS], app[STORE], app[RUNTIME], app[ENGINE] = metrics, store, runtime, engine
    app[HEALTH] = health
    verifier = None
    if settings.verify_calls:
        if settings.revring_api is None:
            raise ValueError("verify mode needs RevRing's API key (ROUTER_REVRING_API_KEY)")
        verifier = Verifier(
            store, settings.revring_api, runtime, metrics, settings.verify, controls
        )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # OpenTelemetry's standard variables turn traces on (`router.core.tracing`).
        tracing.start(os.environ)
        try:
            async with _serving(app):
                yield
        finally:
            await asyncio.to_thread(tracing.stop)  # exports the spans left

    @contextlib.asynccontextmanager
    async def _serving(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        resources.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=20),
            headers={"User-Agent": f"revring-router/{__version__}"},
        )
        if settings.revring_api is not None and settings.revring_api.session is None:
            settings.revring_api.session = resources.http
        try:
            if not runtime.loaded:
                runtime.load()
            await controls.start()
            await engine.start()
            escalations.start()
            # Off the loop and not awaited: serving starts meanwhile.
            starting_parsers = asyncio.create_task(_start_parse_workers(workers))
            purger = None
            if settings.retention_days > 0:
                purger = asyncio.create_task(
                    _purge_periodically(store, settings.retention_days, settings.purge_interval)
                )
            watcher = None
            if settings.watch_interval > 0:
                watcher = asyncio.create_task(watch_config_file(runtime, settings.watch_interval))
            verifying = asyncio.create_task(verifier.run()) if verifier is not None else None
            yield
            await starting_parsers  # never cancelled: a pool it started is closed with it
            for task in (purger, watcher, verifying):
                if task is not None:
                    task.cancel()
            await escalations.stop()
            await engine.stop()
            await controls.stop()
        finally:
            await runtime.close()
            await resources.http.close()
            await store.close()

    app.cleanup_ctx.append(lifecycle)
    intake = Intake(
        runtime,
        store,
        metrics,
        engine,
        settings.ingest,
        workers=workers,
        health=health,
        clock=clock,
        hold=verifier is not None,
        on_held=verifier.wake if verifier is not None else None,
        controls=controls,
    )
    handler = WebhookHandler(intake, metrics, settings.api_keys, body_limits)

    async def stop_parsers(app: web.Application) -> None:
        handler.close()
        intake.close()
        if workers is not None:
            workers.close()

    app.on_cleanup.append(stop_parsers)
    interactions = SlackInteractions(runtime, store, metrics, controls, trail)

    async def finish_clicks(app: web.Application) -> None:
        await interactions.close()

    app.on_shutdown.append(finish_clicks)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def store_takes_writes() -> None:
        try:
            await store.probe_write()
        except Exception as exc:
            health.failed(exc)
            raise
        health.succeeded()

    async def readyz(request: web.Request) -> web.Response:
        problems = []
        if not runtime.loaded:
            problems.append("rules.yaml not loaded")
        try:
            await answer_within(store_takes_writes(), READY_TIME_LIMIT)
        except TimeoutError:
            problems.append(f"store did not answer within {READY_TIME_LIMIT:g} s")
        except Exception as exc:  # the details are in the log, not on a public endpoint
            problems.append(f"store cannot write: {type(exc).__name__}")
        refusal = health.refusal()  # a call's write can fail where the probe's passes
        if refusal is not None:
            problems.append(refusal)
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        # Calls are still taken: ready, with what works in a lesser way named.
        warnings = _parse_worker_warnings(workers)
        if warnings:
            return web.json_response({"status": "ready", "warnings": warnings})
        return web.json_response({"status": "ready"})

    async def metrics_endpoint(request: web.Request) -> web.Response:
        await _refresh_backlog_gauges(store, metrics, health, set(runtime.config.sinks))
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.add_routes(
        [
            web.post("/webhooks/revring", handler.handle),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_endpoint),
            *admin_routes(
                credentials,
                store,
                runtime,
                controls,
                backfill=_backfill_runner(settings, intake, runtime),
                limiter=limiter,
                trail=trail,
            ),
            *slack_routes(interactions),
            *openapi_routes(),
        ]
    )
    if credentials.configured or settings.oidc is not None:
        oidc = None
        if settings.oidc is not None:
            oidc = OidcClient(settings.oidc, lambda: resources.http)
        console = console_app(
            credentials, store, runtime, engine, metrics, limiter, trail, oidc=oidc
        )
        app.add_subapp(CONSOLE_PREFIX, console)
    return app


def _backfill_runner(
    settings: ServiceSettings, intake: Intake, runtime: Runtime
) -> BackfillRun | None:
    """`POST /admin/backfill`'s work: the `backfill` command inside the running service."""
    api = settings.revring_api
    if api is None:
        return None

    async def run(ids: list[str], dry: bool) -> dict[str, Any]:
        if dry:
            return (await dry_run(ids, api, runtime.config)).to_json()
        return (await backfill(ids, api, intake.ingest_body)).to_json()

    return run


async def _refresh_backlog_gauges(
    store: ConsoleReads, metrics: Metrics, health: StoreHealth, sinks: set[str]
) -> None:
    """Per-sink backlog gauges, read from the store at scrape time. A sink with nothing
    pending or dead reads 0 (not absent), so alerts on these series resolve."""
    now = time.time()
    try:
        backlog = await store.backlog()
        open_groups = await store.open_groups(now)
    except Exception as exc:
        if is_store_failure(exc):
            health.failed(exc)  # an outage is logged once, not at every scrape
        else:
            log.exception("cannot read the backlog for /metrics")
        return
    metrics.open_groups.clear()
    for sink, count in open_groups.items():
        metrics.open_groups.labels(sink).set(count)
    metrics.backlog_sinks |= sinks | set(backlog)
    for sink in metrics.backlog_sinks:
        numbers = backlog.get(sink, SinkBacklog(0, 0, None))
        metrics.pending.labels(sink).set(numbers.pending)
        metrics.dead.labels(sink).set(numbers.dead)
        oldest = numbers.oldest_pending_created_at
        metrics.oldest_pending_age.labels(sink).set(0 if oldest is None else max(now - oldest, 0))
