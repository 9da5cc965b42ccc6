"""Operators' state at run time: silences and sink pauses as requested (checked once for
the admin API, the console, the CLI and Slack) and as held in force for the hot path;
bulk replays as requested; the named users of `ROUTER_USERS_FILE` and their roles."""

from __future__ import annotations

from router.operators.controls import KnownSilence, OperatorControls, silence_before_send
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
from router.operators.users import (
    ADMIN_TOKEN_ACTOR,
    ROLES,
    Principal,
    Role,
    User,
    Users,
    UsersFile,
    UsersFileInvalid,
    role_allows,
    role_named,
)

__all__ = [
    "ADMIN_TOKEN_ACTOR",
    "EXPIRED_SILENCES_KEPT",
    "ROLES",
    "BulkReplay",
    "KnownSilence",
    "OperatorControls",
    "Principal",
    "RequestInvalid",
    "Role",
    "User",
    "Users",
    "UsersFile",
    "UsersFileInvalid",
    "names_values",
    "parse_bulk_replay",
    "parse_pause_request",
    "parse_silence_request",
    "pause_json",
    "role_allows",
    "role_named",
    "silence_before_send",
    "silence_json",
    "to_silence",
]
