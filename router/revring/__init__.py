"""RevRing's own API: the client (`POST /v1/calls/batch-get`), backfill (fetch calls by
id and ingest each as if it had been posted) and verify mode (route a posted call only
once RevRing confirms it)."""

from __future__ import annotations

from router.revring.api import RevRingApi, api_from_env
from router.revring.backfill import backfill, dry_run
from router.revring.verify import Verifier, VerifySettings, release

__all__ = [
    "RevRingApi",
    "Verifier",
    "VerifySettings",
    "api_from_env",
    "backfill",
    "dry_run",
    "release",
]
