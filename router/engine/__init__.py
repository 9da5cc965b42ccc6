"""The engine: a body becomes a stored call and its deliveries (`Intake`, with the pure
`prepare`), delivery lanes claim and send them (`DeliveryEngine`), large bodies and
large calls' messages are handled in worker processes (`ParseWorkers`), and the store's
health is judged from real writes. It runs on the clock it is given."""

from __future__ import annotations

from router.engine.delivery import DeliveryEngine, EngineSettings
from router.engine.escalations import EscalationSettings, EscalationTimers
from router.engine.health import HealthPolicy, StoreHealth
from router.engine.intake import IngestLimits, IngestOutcome, Intake
from router.engine.parse_workers import ParseWorkers, WorkersUnavailable, default_worker_count
from router.engine.prepare import MutingMoment, Prepared, Rejection, prepare
from router.engine.preview import Preview, preview
from router.engine.render_apart import RenderApart

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
    "ParseWorkers",
    "Prepared",
    "Preview",
    "Rejection",
    "RenderApart",
    "StoreHealth",
    "WorkersUnavailable",
    "default_worker_count",
    "prepare",
    "preview",
]
