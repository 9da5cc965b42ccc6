"""The HTTP side, on aiohttp: the app assembled with its store, engine and workers
(`app`), the webhook's handler, the admin API, the web console (`ui/`), Slack's
interactivity callback, the OpenAPI document, and the listening socket with its
connection limits. Everything a request does beyond HTTP is the engine's."""

from __future__ import annotations

from router.web.app import ServiceSettings, build_app
from router.web.connections import ConnectionLimits, GuardedSite
from router.web.webhook import ApiKeys

__all__ = ["ApiKeys", "ConnectionLimits", "GuardedSite", "ServiceSettings", "build_app"]
