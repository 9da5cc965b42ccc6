"""A real revring-router app on a real socket and a real SQLite file, for integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.engine.delivery import EngineSettings
from router.engine.escalations import EscalationSettings
from router.engine.health import HealthPolicy
from router.engine.intake import IngestLimits
from router.operators import OidcSettings
from router.revring.api import RevRingApi
from router.revring.verify import VerifySettings
from router.web.app import ENGINE, METRICS, RUNTIME, STORE, ServiceSettings, build_app
from router.web.webhook import ApiKeys

API_KEY = "test-key-1"
ADMIN_TOKEN = "admin-secret-token"


def fast_engine() -> EngineSettings:
    return EngineSettings(
        lease_seconds=5.0, idle_poll=0.2, unconfigured_check=0.2, shutdown_grace=2.0
    )


@asynccontextmanager
async def running_service(
    rules_path: Path,
    db_path: Path,
    *,
    engine: EngineSettings | None = None,
    admin_token: str | None = ADMIN_TOKEN,
    watch_interval: float = 0.0,
    store_url: str | None = None,
    store_timeout: float = 5.0,
    revring_api: RevRingApi | None = None,
    verify_calls: bool = False,
    verify: VerifySettings | None = None,
    health: HealthPolicy | None = None,
    users_file: Path | None = None,
    oidc: OidcSettings | None = None,
    port: int | None = None,
    escalation: EscalationSettings | None = None,
    public_url: str | None = None,
) -> AsyncIterator[TestClient]:
    settings = ServiceSettings(
        config_path=str(rules_path),
        store_url=store_url or f"sqlite:///{db_path}",
        api_keys=ApiKeys([API_KEY, "test-key-2"]),
        admin_token=admin_token,
        engine=engine or fast_engine(),
        watch_interval=watch_interval,
        ingest=IngestLimits(store_timeout=store_timeout),
        revring_api=revring_api,
        verify_calls=verify_calls,
        verify=verify or VerifySettings(),
        health=health or HealthPolicy(),
        users_file=None if users_file is None else str(users_file),
        oidc=oidc,
        escalation=escalation or EscalationSettings(lease_seconds=5.0, idle_poll=0.2),
        public_url=public_url,
    )
    app = build_app(settings)
    async with TestClient(TestServer(app, port=port)) as client:
        yield client


def parts(client: TestClient) -> tuple:
    app: web.Application = client.app  # type: ignore[assignment]
    return app[STORE], app[ENGINE], app[RUNTIME], app[METRICS]


async def post_event(client: TestClient, event: dict, key: str = API_KEY):
    return await client.post("/webhooks/revring", json=event, headers={"x-api-key": key})


async def wait_for(predicate: Callable[[], object], limit: float = 10.0) -> None:
    """Poll an async or sync predicate until it holds; fail the test after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
