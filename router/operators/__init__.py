"""Operators' state at run time: silences and sink pauses as requested (checked once for
the admin API, the console, the CLI and Slack) and as held in force for the hot path;
bulk replays as requested; the audit trail of every change (`AuditTrail`,
`record_audit`)."""

from __future__ import annotations

from router.operators.audit import (
    ACTIONS,
    TOKEN_ACTOR,
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
    "ACTIONS",
    "EXPIRED_SILENCES_KEPT",
    "TOKEN_ACTOR",
    "AuditQueryInvalid",
    "AuditStore",
    "AuditTrail",
    "BulkReplay",
    "KnownSilence",
    "OperatorControls",
    "RequestInvalid",
    "audit_filters",
    "audit_json",
    "audit_record",
    "backfill_target",
    "mask_details",
    "names_values",
    "parse_bulk_replay",
    "parse_pause_request",
    "parse_silence_request",
    "pause_json",
    "record_audit",
    "silence_before_send",
    "silence_json",
    "to_silence",
]
