"""Operators' state at run time: silences and sink pauses as requested (checked once for
the admin API, the console, the CLI and Slack) and as held in force for the hot path;
bulk replays as requested; single sign-on's settings and checks (`oidc`)."""

from __future__ import annotations

from router.operators.controls import KnownSilence, OperatorControls, silence_before_send
from router.operators.oidc import OidcSettingError, OidcSettings, oidc_settings_from_env
from router.operators.replays import BulkReplay, parse_bulk_replay
from router.operators.silences import (
    EXPIRED_SILENCES_KEPT,
    RequestInvalid,
    names_values,
    parse_pause_request,
    parse_silence_request,
    pause_json,
    silence_json,
    to_silence,
)

__all__ = [
    "EXPIRED_SILENCES_KEPT",
    "BulkReplay",
    "KnownSilence",
    "OidcSettingError",
    "OidcSettings",
    "OperatorControls",
    "RequestInvalid",
    "names_values",
    "oidc_settings_from_env",
    "parse_bulk_replay",
    "parse_pause_request",
    "parse_silence_request",
    "pause_json",
    "silence_before_send",
    "silence_json",
    "to_silence",
]
