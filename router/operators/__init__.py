"""Operators' state at run time: silences and sink pauses as requested (checked once for
the admin API, the console, the CLI and Slack) and as held in force for the hot path;
bulk replays as requested; a caller forgotten on request; the named users of
`ROUTER_USERS_FILE` and their roles; the audit trail of every change (`AuditTrail`,
`record_audit`); single sign-on's settings and checks (`oidc`)."""

from __future__ import annotations

from router.operators.acknowledgements import (
    Acknowledged,
    acknowledge_delivery,
    acknowledge_view,
    acknowledgement_key,
    acknowledgement_target,
    counting_for,
)
from router.operators.audit import (
    ACTIONS,
    AuditQueryInvalid,
    AuditStore,
    AuditTrail,
    audit_filters,
    audit_json,
    audit_record,
    backfill_target,
    mask_details,
    record_audit,
)
from router.operators.controls import KnownSilence, OperatorControls, silence_before_send
from router.operators.forget import (
    ForgetReport,
    ForgetRequest,
    audit_details,
    forget_caller,
    parse_forget_request,
    parse_phone,
    report_json,
    report_lines,
)
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
    "ACTIONS",
    "ADMIN_TOKEN_ACTOR",
    "EXPIRED_SILENCES_KEPT",
    "ROLES",
    "Acknowledged",
    "AuditQueryInvalid",
    "AuditStore",
    "AuditTrail",
    "BulkReplay",
    "ForgetReport",
    "ForgetRequest",
    "KnownSilence",
    "OidcSettingError",
    "OidcSettings",
    "OperatorControls",
    "Principal",
    "RequestInvalid",
    "Role",
    "User",
    "Users",
    "UsersFile",
    "UsersFileInvalid",
    "acknowledge_delivery",
    "acknowledge_view",
    "acknowledgement_key",
    "acknowledgement_target",
    "audit_details",
    "audit_filters",
    "audit_json",
    "audit_record",
    "backfill_target",
    "counting_for",
    "forget_caller",
    "mask_details",
    "names_values",
    "oidc_settings_from_env",
    "parse_bulk_replay",
    "parse_forget_request",
    "parse_pause_request",
    "parse_phone",
    "parse_silence_request",
    "pause_json",
    "record_audit",
    "report_json",
    "report_lines",
    "role_allows",
    "role_named",
    "silence_before_send",
    "silence_json",
    "to_silence",
]
