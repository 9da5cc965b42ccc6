"""The engine: a body becomes a stored call and its deliveries (`Intake`, with the pure
`prepare`), delivery lanes claim and send them (`DeliveryEngine`), large bodies and
large calls' messages are handled in worker processes (`ParseWorkers`), the store's
health is judged from real writes; chat threads' parents are kept (`StoreThreads`).
It runs on the clock it is given."""

from __future__ import annotations

from router.engine.delivery import DeliveryEngine, EngineSettings
from router.engine.escalations import EscalationSettings, EscalationTimers
from router.engine.health import HealthPolicy, StoreHealth
from router.engine.intake import IngestLimits, IngestOutcome, Intake
from router.engine.notices import NoticeMaker, console_base
from router.engine.parse_workers import ParseWorkers, WorkersUnavailable, default_worker_count
from router.engine.prepare import MutingMoment, Prepared, Rejection, prepare
from router.engine.preview import Preview, preview
from router.engine.render_apart import RenderApart
from router.engine.threads import StoreThreads

__all__ = [
    "DeliveryEngine",
    "EngineSettings",
    "EscalationSettings",
    "EscalationTimers",
    "HealthPolicy",
    "IngestLimits",
    "IngestOutcome",
    "Intake",
    "MutingMoment",
    "NoticeMaker",
    "ParseWorkers",
    "Prepared",
    "Preview",
    "Rejection",
    "RenderApart",
    "StoreHealth",
    "StoreThreads",
    "WorkersUnavailable",
    "console_base",
    "default_worker_count",
    "prepare",
    "preview",
]
