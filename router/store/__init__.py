"""The durable queue of events, deliveries and attempts: its faces, one per kind of user
(`router.store.base`), the records they take and give (`router.store.records`) and what
it raises (`router.store.errors`).

`searchable_text(call)` is what a call is found by in words, `search_terms(words)` what a
search looks for (`router.store.search`).
`open_store(url)` picks the database: `sqlite:///path.db` (one process),
`postgresql://…` (several replicas) or `memory://[name]` (tests).
"""

from __future__ import annotations

from router.store.base import (
    WORKER_HEARTBEAT_SECONDS,
    Audit,
    ConsoleReads,
    ConsoleSessions,
    DeliveryQueue,
    Erasures,
    Escalations,
    HeldCalls,
    Ingest,
    Lifecycle,
    Maintenance,
    OperatorConsole,
    Operators,
    OutboundTokens,
    SlackThreads,
    Store,
)
from router.store.errors import (
    StoreClosed,
    StoreConflict,
    StoreError,
    StoreMissing,
    StoreOpenError,
    StoreRefusedWrite,
    StoreUnavailable,
)
from router.store.records import (
    ALL_RULES,
    BODY_LIMIT,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    AcknowledgedKind,
    Acknowledgement,
    AttemptRecord,
    AuditFilters,
    AuditRecord,
    CallColumn,
    CallFilters,
    ClaimedDelivery,
    DeadDelivery,
    DeliveryStatus,
    DeliveryView,
    DueEscalation,
    Erasure,
    ErasureCounts,
    EscalationOutcome,
    EscalationPlan,
    EventCursor,
    EventView,
    Exchange,
    GroupJoin,
    Header,
    HeldCall,
    IngestRecord,
    IngestResult,
    NewDelivery,
    NewNotice,
    OutboundToken,
    ReceivedResponse,
    SentRequest,
    SessionRecord,
    SilenceRecord,
    SinkBacklog,
    SinkCounts,
    SinkPause,
    SlackThread,
    StepOutcome,
    StepOutcomeKind,
    Verification,
)
from router.store.search import MAX_SEARCH_TERMS, MAX_SEARCH_WORDS, search_terms, searchable_text
from router.store.steps import resume_state

__all__ = [
    "ALL_RULES",
    "BODY_LIMIT",
    "MAX_HEADERS",
    "MAX_HEADER_NAME",
    "MAX_HEADER_VALUE",
    "MAX_SEARCH_TERMS",
    "MAX_SEARCH_WORDS",
    "WORKER_HEARTBEAT_SECONDS",
    "AcknowledgedKind",
    "Acknowledgement",
    "AttemptRecord",
    "Audit",
    "AuditFilters",
    "AuditRecord",
    "CallColumn",
    "CallFilters",
    "ClaimedDelivery",
    "ConsoleReads",
    "ConsoleSessions",
    "DeadDelivery",
    "DeliveryQueue",
    "DeliveryStatus",
    "DeliveryView",
    "DueEscalation",
    "Erasure",
    "ErasureCounts",
    "Erasures",
    "EscalationOutcome",
    "EscalationPlan",
    "Escalations",
    "EventCursor",
    "EventView",
    "Exchange",
    "GroupJoin",
    "Header",
    "HeldCall",
    "HeldCalls",
    "Ingest",
    "IngestRecord",
    "IngestResult",
    "Lifecycle",
    "Maintenance",
    "NewDelivery",
    "NewNotice",
    "OperatorConsole",
    "Operators",
    "OutboundToken",
    "OutboundTokens",
    "ReceivedResponse",
    "SentRequest",
    "SessionRecord",
    "SilenceRecord",
    "SinkBacklog",
    "SinkCounts",
    "SinkPause",
    "SlackThread",
    "SlackThreads",
    "StepOutcome",
    "StepOutcomeKind",
    "Store",
    "StoreClosed",
    "StoreConflict",
    "StoreError",
    "StoreMissing",
    "StoreOpenError",
    "StoreRefusedWrite",
    "StoreUnavailable",
    "Verification",
    "open_store",
    "resume_state",
    "search_terms",
    "searchable_text",
]


def open_store(url: str, *, serving: bool = True) -> Store:
    """A store for a URL: `sqlite:///relative.db`, `sqlite:////abs.db`, `postgresql://…`,
    `memory://` or `memory://name` (in memory, for tests). `serving=False` for a command
    that only looks or replays beside a running server."""
    if url.startswith("sqlite://"):
        from router.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, owns_leases=serving)
    if url.startswith("memory://"):
        from router.store.sqlite import SQLiteStore

        return SQLiteStore.in_memory(url.removeprefix("memory://"))
    if url.startswith(("postgresql://", "postgres://")):
        from router.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unsupported store URL {url.split('://')[0]!r}:"
        " use sqlite:///path.db, postgresql://… or memory://"
    )
