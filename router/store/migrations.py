"""Versioned schema migrations, shared by every store dialect.

Each migration is a list of portable SQL statements (TEXT, INTEGER, BIGINT,
DOUBLE PRECISION, plain and partial indexes, `ADD COLUMN`, `ON DELETE CASCADE`);
the one type that differs between dialects, the binary payload, is written
`{binary}` and filled in by `statements_for`, as is `{payload_text:FIELD}`, a
top-level text field of the stored JSON payload (for backfilling columns made from
it: SQLite's `json_extract`, PostgreSQL's `->>`), and `{number:FIELD}`, the same with
the separators people write in phone numbers taken out. What SQL cannot compute alike
in both is a migration's `backfill`, a script of the queue's kind run after its
statements. The applied versions are rows of `schema_version`, so a store runs every
migration above its highest row, each in its own transaction, and refuses a database
newer than this code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from router.store import queries as q
from router.store.connector import CallMany, Rows, Script, count, rows
from router.store.errors import StoreOpenError
from router.store.queries import Dialect
from router.store.search import MAX_INDEXED_CHARACTERS, searchable_text_of_body

BINARY_TYPE: dict[Dialect, str] = {"sqlite": "BLOB", "postgresql": "BYTEA"}
# A top-level field of `events.payload` as text ('' when absent or null).
PAYLOAD_TEXT: dict[Dialect, str] = {
    "sqlite": "COALESCE(CAST(json_extract(CAST(payload AS TEXT), '$.{field}') AS TEXT), '')",
    "postgresql": "COALESCE(CAST(convert_from(payload, 'UTF8') AS JSON) ->> '{field}', '')",
}

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL"
    ")"
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # Run before `statements`, for what the two dialects cannot spell alike.
    dialect_statements: dict[Dialect, tuple[str, ...]] = field(default_factory=dict)
    # Run after them, in the same transaction: what SQL cannot compute.
    backfill: Callable[[], Script[None]] | None = None


# Calls whose search text migration 8 fills in at once: a page holds their bodies.
BACKFILL_PAGE = 64


def fill_search_text() -> Script[None]:
    """Every stored call's `search_text` (`router.store.search`), a page at a time."""
    after = ""
    while True:
        page: Rows = yield rows(q.EVENTS_BY_ID, after=after, limit=BACKFILL_PAGE)
        if not page:
            return
        texts = [
            {"id": event_id, "search_text": searchable_text_of_body(payload)}
            for event_id, payload in zip(page.column("id"), page.column("payload"), strict=True)
        ]
        found = [text for text in texts if text["search_text"]]
        if found:
            yield CallMany(q.SET_SEARCH_TEXT, found)
        after = texts[-1]["id"]


# Audited clicks that migration 10 copies at once.
SLACK_ACTIONS_PAGE = 500
# What a click on Slack's buttons was (migration 7's `action`), as an audited action.
SLACK_ACTIONS = {"acknowledge": "acknowledge", "silence": "silence.create"}


def slack_click_audited(click: dict[str, object]) -> dict[str, object]:
    """A row of migration 7's `slack_actions_audit` as a row of `audit`: the actor
    `slack:<user id>`, the action in the audit's words, and the rest as details, as
    `router.web.slack_interactions` records a click now."""
    details = {
        "outcome": click["outcome"],
        "user_name": click["user_name"],
        "channel": click["channel"],
        "detail": click["detail"],
    }
    action = str(click["action"])
    return {
        "id": click["id"],
        "at": click["at"],
        "actor": f"slack:{click['user_id']}",
        "action": SLACK_ACTIONS.get(action, action),
        "target": click["target"],
        "details": json.dumps({name: value for name, value in details.items() if value}),
    }


def move_slack_actions() -> Script[None]:
    """Every click migration 7 audited into `audit`, a page at a time; then its table goes
    (what reads the audit reads `audit` alone)."""
    after = ""
    while True:
        page: Rows = yield rows(q.SLACK_ACTIONS_AUDITED, after=after, limit=SLACK_ACTIONS_PAGE)
        if not page:
            break
        yield CallMany(q.COPY_AUDIT, [slack_click_audited(click) for click in page.dicts()])
        after = page.column("id")[-1]
    yield count(q.DROP_SLACK_ACTIONS)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="events, deliveries, attempts",
        statements=(
            """
            CREATE TABLE events (
                id TEXT PRIMARY KEY,
                payload {binary} NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL DEFAULT '',
                direction TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX events_received_at ON events (received_at)",
            """
            CREATE TABLE deliveries (
                id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                sink TEXT NOT NULL,
                rule TEXT NOT NULL,
                status TEXT NOT NULL
                    CHECK (status IN ('pending', 'delivered', 'dead')),
                attempts INTEGER NOT NULL DEFAULT 0,
                retry_attempts INTEGER NOT NULL DEFAULT 0,
                retry_started_at DOUBLE PRECISION NOT NULL,
                next_attempt_at DOUBLE PRECISION,
                lease_owner TEXT,
                lease_until DOUBLE PRECISION,
                last_error TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                delivered_at DOUBLE PRECISION,
                UNIQUE (event_id, sink)
            )
            """,
            "CREATE INDEX deliveries_claim"
            " ON deliveries (sink, status, next_attempt_at, created_at, id)",
            "CREATE INDEX deliveries_newest ON deliveries (created_at, id)",
            "CREATE INDEX deliveries_status_newest ON deliveries (status, created_at, id)",
            "CREATE INDEX deliveries_sink_newest ON deliveries (sink, created_at, id)",
            """
            CREATE TABLE attempts (
                delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                duration DOUBLE PRECISION NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
                status_code INTEGER,
                error TEXT,
                detail TEXT,
                PRIMARY KEY (delivery_id, number)
            )
            """,
        ),
    ),
    Migration(
        version=2,
        description="grouped digests: digest deliveries and their member events",
        statements=(
            "ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'single'"
            " CHECK (kind IN ('single', 'digest'))",
            # The group key as canonical JSON text, kept for the digest's whole life.
            "ALTER TABLE deliveries ADD COLUMN group_key TEXT",
            # The group key while the digest still takes calls, NULL once closed: the
            # unique index below keeps one open digest per (rule, sink, key).
            "ALTER TABLE deliveries ADD COLUMN open_group TEXT",
            "ALTER TABLE deliveries ADD COLUMN window_start DOUBLE PRECISION",
            "ALTER TABLE deliveries ADD COLUMN closes_at DOUBLE PRECISION",
            "ALTER TABLE deliveries ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0",
            "CREATE UNIQUE INDEX deliveries_open_group"
            " ON deliveries (rule, sink, open_group) WHERE open_group IS NOT NULL",
            """
            CREATE TABLE digest_members (
                delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                PRIMARY KEY (delivery_id, position),
                UNIQUE (delivery_id, event_id)
            )
            """,
            "CREATE INDEX digest_members_event ON digest_members (event_id)",
        ),
    ),
    Migration(
        version=3,
        description="store_probe for /readyz's write probe; replicas for every dialect",
        statements=(
            # One row, rewritten by `Store.probe_write`: proof that a write reaches the disk.
            "CREATE TABLE store_probe ( id TEXT PRIMARY KEY, written_at DOUBLE PRECISION NOT NULL)",
            # Worker heartbeats of a shared store (a PostgreSQL store before version 3
            # created it outside the migrations, hence IF NOT EXISTS).
            "CREATE TABLE IF NOT EXISTS replicas ("
            " owner TEXT PRIMARY KEY,"
            " last_seen DOUBLE PRECISION NOT NULL"
            ")",
        ),
    ),
    Migration(
        version=4,
        description="muted deliveries, silences, sink pauses",
        dialect_statements={
            # SQLite cannot alter a CHECK constraint. Its documented way for a change that
            # leaves every stored row valid is to rewrite the table's definition in place
            # (https://sqlite.org/lang_altertable.html, section 7), then reload the schema.
            "sqlite": (
                "PRAGMA writable_schema = ON",
                "UPDATE sqlite_master SET sql = replace(sql, '''dead'')', '''dead'', ''muted'')')"
                " WHERE type = 'table' AND name = 'deliveries'",
                "PRAGMA writable_schema = RESET",
            ),
            "postgresql": (
                "ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check",
                "ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check"
                " CHECK (status IN ('pending', 'delivered', 'dead', 'muted'))",
            ),
        },
        statements=(
            # Why a delivery is muted: `time_interval:NAME` or `silence:ID`.
            "ALTER TABLE deliveries ADD COLUMN muted_reason TEXT",
            """
            CREATE TABLE silences (
                id TEXT PRIMARY KEY,
                condition TEXT NOT NULL,
                sinks TEXT,
                starts_at DOUBLE PRECISION NOT NULL,
                ends_at DOUBLE PRECISION NOT NULL,
                comment TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL,
                expired_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX silences_ends_at ON silences (ends_at)",
            """
            CREATE TABLE sink_pauses (
                sink TEXT PRIMARY KEY,
                paused_until DOUBLE PRECISION NOT NULL,
                comment TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=5,
        description="verify mode: calls held until RevRing's API confirms them",
        statements=(
            # NULL: routed on arrival. pending: held, no deliveries yet; verified: routed
            # with RevRing's body; not_verified: RevRing does not know it (kept for audit,
            # not routed); released: routed by hand with the posted body.
            "ALTER TABLE events ADD COLUMN verification TEXT CHECK (verification IN"
            " ('pending', 'verified', 'not_verified', 'released'))",
            "ALTER TABLE events ADD COLUMN verify_attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE events ADD COLUMN verify_next_at DOUBLE PRECISION",
            # The body as posted, kept once RevRing's body replaces it for routing.
            "ALTER TABLE events ADD COLUMN posted_payload {binary}",
            "CREATE INDEX events_verification ON events (verification, verify_next_at)"
            " WHERE verification IS NOT NULL",
        ),
    ),
    Migration(
        version=6,
        description="the console's calls: agent, organization and hang-up cause as columns",
        statements=(
            # Copied from the payload at ingest, so the calls page filters with an index.
            "ALTER TABLE events ADD COLUMN agent_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN organization_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN hangup_cause TEXT NOT NULL DEFAULT ''",
            "UPDATE events SET agent_id = {payload_text:agentId},"
            " organization_id = {payload_text:organizationId},"
            " hangup_cause = {payload_text:hangupCause}",
            # Newest first, then by id: the calls page's keyset.
            "CREATE INDEX events_newest ON events (received_at, id)",
            # A status few calls have (or none) would otherwise walk every call.
            "CREATE INDEX events_status_newest ON events (status, received_at, id)",
            "CREATE INDEX events_agent_newest ON events (agent_id, received_at, id)",
            "CREATE INDEX events_organization_newest ON events (organization_id, received_at, id)",
            "CREATE INDEX events_hangup_newest ON events (hangup_cause, received_at, id)",
            # The deliveries page filtered by rule; the overview's delivered-in-the-last-hour.
            "CREATE INDEX deliveries_rule_newest ON deliveries (rule, created_at, id)",
            "CREATE INDEX deliveries_delivered ON deliveries (delivered_at, sink)",
            # What is not delivered yet (a few percent of the rows): the overview's counts
            # per sink and status read this alone.
            "CREATE INDEX deliveries_unsettled ON deliveries (status, sink, attempts, created_at)"
            " WHERE status <> 'delivered'",
        ),
    ),
    Migration(
        version=7,
        description="acknowledgements and the audit of actions taken from Slack's buttons",
        statements=(
            # Who acknowledged a call (kind 'call', the event id) or a digest (kind
            # 'digest', its delivery id) from an alert's button; the first one counts.
            """
            CREATE TABLE acknowledgements (
                kind TEXT NOT NULL CHECK (kind IN ('call', 'digest')),
                target_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                user_name TEXT NOT NULL DEFAULT '',
                channel TEXT NOT NULL DEFAULT '',
                at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (kind, target_id)
            )
            """,
            "CREATE INDEX acknowledgements_at ON acknowledgements (at)",
            """
            CREATE TABLE slack_actions_audit (
                id TEXT PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                user_id TEXT NOT NULL,
                user_name TEXT NOT NULL DEFAULT '',
                channel TEXT NOT NULL DEFAULT '',
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                outcome TEXT NOT NULL,
                detail TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX slack_actions_audit_at ON slack_actions_audit (at)",
        ),
    ),
    Migration(
        version=8,
        description="calls found by phone number and by the words of their summary and transcript",
        statements=(
            # The numbers in E.164 where they are numbers (written at ingest by
            # `router.core.phones.e164`; RevRing sends E.164, which the backfill keeps).
            "ALTER TABLE events ADD COLUMN from_number TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN to_number TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN search_text TEXT NOT NULL DEFAULT ''",
            "UPDATE events SET from_number = {number:fromNumber}, to_number = {number:toNumber}",
            # A caller's calls, newest first, without reading any other call.
            "CREATE INDEX events_from_newest ON events (from_number, received_at, id)",
            "CREATE INDEX events_to_newest ON events (to_number, received_at, id)",
        ),
        backfill=fill_search_text,
    ),
    Migration(
        version=9,
        description="console sessions, shared by every replica and kept across restarts",
        statements=(
            # The SHA-256 of the cookie's value, never the value: a copy of the table
            # signs nobody in. Signing out deletes the row.
            """
            CREATE TABLE sessions (
                id_hash TEXT PRIMARY KEY,
                user_name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
                via TEXT NOT NULL,
                credential_mac TEXT NOT NULL DEFAULT '',
                csrf TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX sessions_expires ON sessions (expires_at)",
        ),
    ),
    Migration(
        version=10,
        description="the audit of every change: who did what to what, and when",
        statements=(
            # `details`: a JSON object's text, secrets and numbers masked when written.
            """
            CREATE TABLE audit (
                id TEXT PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL DEFAULT '',
                details TEXT NOT NULL
            )
            """,
            # Newest first; one actor's, one action's (the filters of /ui/audit and
            # GET /admin/audit), each without reading the others'.
            "CREATE INDEX audit_newest ON audit (at, id)",
            "CREATE INDEX audit_actor_newest ON audit (actor, at, id)",
            "CREATE INDEX audit_action_newest ON audit (action, at, id)",
        ),
        backfill=move_slack_actions,
    ),
    Migration(
        version=11,
        description="calls found by words through the database's own full-text search;"
        " status and hang-up cause in upper case",
        dialect_statements={
            # An external-content FTS5 table over `events.search_text` (the text is not
            # stored twice), keyed by the events' rowid and kept in step by triggers, so
            # every insert, update and delete of a call, whoever writes it (ingest,
            # verify mode, retention, erasure), changes the index in the same
            # transaction. No diacritics folded: PostgreSQL's 'simple' does not either.
            "sqlite": (
                "CREATE VIRTUAL TABLE events_fts USING fts5(search_text, content='events',"
                " content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
                "CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN"
                " INSERT INTO events_fts (rowid, search_text) VALUES (new.rowid, new.search_text);"
                " END",
                "CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN"
                " INSERT INTO events_fts (events_fts, rowid, search_text)"
                " VALUES ('delete', old.rowid, old.search_text);"
                " END",
                "CREATE TRIGGER events_fts_update AFTER UPDATE OF search_text ON events BEGIN"
                " INSERT INTO events_fts (events_fts, rowid, search_text)"
                " VALUES ('delete', old.rowid, old.search_text);"
                " INSERT INTO events_fts (rowid, search_text) VALUES (new.rowid, new.search_text);"
                " END",
                # The calls stored before: read from `events` in one pass.
                "INSERT INTO events_fts (events_fts) VALUES ('rebuild')",
            ),
            # A stored tsvector (computed by PostgreSQL on every insert and update of
            # search_text, gone with its row) under a GIN index: a rare word reads the
            # index, a common one lets the planner walk the newest calls and test each
            # row's vector without parsing its text again. Bounded: a tsvector holds 1 MB.
            "postgresql": (
                "ALTER TABLE events ADD COLUMN search_vector tsvector GENERATED ALWAYS AS"
                f" (to_tsvector('simple', left(search_text, {MAX_INDEXED_CHARACTERS}))) STORED",
                "CREATE INDEX events_search ON events USING GIN (search_vector)",
            ),
        },
        statements=(
            # Filters compare them in upper case, as the store now writes them.
            "UPDATE events SET status = UPPER(status), hangup_cause = UPPER(hangup_cause)"
            " WHERE status <> UPPER(status) OR hangup_cause <> UPPER(hangup_cause)",
        ),
    ),
    Migration(
        version=12,
        description="each attempt's request and response, masked and cut at 4 KiB",
        statements=(
            # `router.store.exchanges`: the heads as JSON objects (method, target or status,
            # headers, sizes), the bodies as text. NULL: not recorded (older attempts).
            "ALTER TABLE attempts ADD COLUMN request_head TEXT",
            "ALTER TABLE attempts ADD COLUMN request_body TEXT",
            "ALTER TABLE attempts ADD COLUMN response_head TEXT",
            "ALTER TABLE attempts ADD COLUMN response_body TEXT",
        ),
    ),
    Migration(
        version=13,
        description="settings: the store's own secrets (the salt of erased numbers' hashes)",
        statements=(
            # Made once per store and never shown: `QueueStore.secret`.
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    Migration(
        version=14,
        description="escalation timers, and the delivery an escalation was made from",
        statements=(
            # One timer per routed call and escalating rule (DESIGN.md section 16),
            # written with the call's deliveries; claimed like a delivery (a lease), fired
            # once: `done_at` and `outcome` set in the transaction that escalates.
            """
            CREATE TABLE escalations (
                event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                rule TEXT NOT NULL,
                delivery_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('single', 'digest')),
                to_sinks TEXT NOT NULL,
                due_at DOUBLE PRECISION NOT NULL,
                lease_owner TEXT,
                lease_until DOUBLE PRECISION,
                done_at DOUBLE PRECISION,
                outcome TEXT,
                PRIMARY KEY (event_id, rule)
            )
            """,
            # The timers still to fire, by due time: what the engine polls.
            "CREATE INDEX escalations_due ON escalations (due_at) WHERE done_at IS NULL",
            "ALTER TABLE deliveries ADD COLUMN escalated_from TEXT",
            # "escalated to": the escalations of one delivery.
            "CREATE INDEX deliveries_escalated_from ON deliveries (escalated_from)"
            " WHERE escalated_from IS NOT NULL",
        ),
    ),
    Migration(
        version=15,
        description="slack_threads: the parent message of each Slack thread (thread_by);"
        " notices of dead deliveries (on_dead)",
        dialect_statements={
            # A notice (below) belongs to no call of its own: its `event_id` is NULL, so
            # the (event_id, sink) uniqueness never stops a notice to a sink that also got
            # the call. SQLite drops a NOT NULL constraint by rewriting the table's
            # definition (https://sqlite.org/lang_altertable.html, section 7, which lists
            # removing NOT NULL among the changes made this way), as migration 4 did.
            "sqlite": (
                "PRAGMA writable_schema = ON",
                "UPDATE sqlite_master SET sql = replace(sql,"
                " 'event_id TEXT NOT NULL REFERENCES events', 'event_id TEXT REFERENCES events')"
                " WHERE type = 'table' AND name = 'deliveries'",
                "PRAGMA writable_schema = RESET",
            ),
            "postgresql": ("ALTER TABLE deliveries ALTER COLUMN event_id DROP NOT NULL",),
        },
        statements=(
            # A notice of a dead delivery (`on_dead`): the dead one's id (the notice goes
            # with it: a forgotten caller's, a purged call's) and what the notice says,
            # as JSON made when the delivery went dead (`sinks.notices`).
            "ALTER TABLE deliveries ADD COLUMN notice_of TEXT"
            " REFERENCES deliveries (id) ON DELETE CASCADE",
            "ALTER TABLE deliveries ADD COLUMN notice TEXT",
            "CREATE INDEX deliveries_notice_of ON deliveries (notice_of)"
            " WHERE notice_of IS NOT NULL",
            # One thread per (sink, thread key: the thread_by values as canonical JSON),
            # live for the sink's `thread_for` after `started_at`; `parent` is the posted
            # message (JSON: text, blocks), rewritten with the count of `replies`.
            """
            CREATE TABLE slack_threads (
                sink TEXT NOT NULL,
                thread_key TEXT NOT NULL,
                channel TEXT NOT NULL,
                ts TEXT NOT NULL,
                parent TEXT NOT NULL,
                replies INTEGER NOT NULL DEFAULT 0,
                started_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (sink, thread_key)
            )
            """,
            "CREATE INDEX slack_threads_started ON slack_threads (started_at)",
        ),
    ),
    Migration(
        version=16,
        description="outbound_tokens: the access tokens sinks got (OAuth2, service"
        " accounts), shared by replicas, and the refresh tokens servers rotated",
        statements=(
            # One row per sink and auth settings (`auth_key`: a hash of them, so changed
            # settings never reuse a token); secrets, never shown (`OutboundTokens`).
            """
            CREATE TABLE outbound_tokens (
                sink TEXT NOT NULL,
                auth_key TEXT NOT NULL,
                access_token TEXT NOT NULL,
                obtained_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                refresh_token TEXT,
                PRIMARY KEY (sink, auth_key)
            )
            """,
        ),
    ),
    Migration(
        version=17,
        description="http sinks' steps: each attempt's steps, and where a retry resumes",
        statements=(
            # `router.store.steps`: JSON. On an attempt, each step's outcome, captures
            # (shown) and exchange; on a delivery, the steps done so far and their
            # captures, which the next attempt resumes after (NULL: none, or delivered).
            "ALTER TABLE attempts ADD COLUMN steps TEXT",
            "ALTER TABLE deliveries ADD COLUMN steps TEXT",
        ),
    ),
    Migration(
        version=18,
        description="deliveries: the W3C traceparent of the call's trace",
        statements=(
            # `router.core.tracing`: each attempt's span joins the trace of the call that
            # created the delivery. NULL: created with tracing off (or before this).
            "ALTER TABLE deliveries ADD COLUMN trace_parent TEXT",
        ),
    ),
    Migration(
        version=19,
        description="acknowledgements per call and rule (a digest: per digest, of its rule)",
        dialect_statements={
            # Acknowledging a delivery counts for its call and rule (DESIGN.md section 16):
            # the key gains `rule`. A row written before ('') keeps meaning what it meant,
            # every rule of its call (a digest: the digest), so an old acknowledgement
            # still stops every escalation of its call and is still shown. SQLite changes
            # a primary key by rebuilding the table
            # (https://sqlite.org/lang_altertable.html, section 7): a new table, the
            # rows copied, the old one dropped (its index with it), the new one renamed.
            "sqlite": (
                """
                CREATE TABLE acknowledgements_by_rule (
                    kind TEXT NOT NULL CHECK (kind IN ('call', 'digest')),
                    target_id TEXT NOT NULL,
                    rule TEXT NOT NULL DEFAULT '',
                    user_id TEXT NOT NULL,
                    user_name TEXT NOT NULL DEFAULT '',
                    channel TEXT NOT NULL DEFAULT '',
                    at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (kind, target_id, rule)
                )
                """,
                "INSERT INTO acknowledgements_by_rule"
                " (kind, target_id, rule, user_id, user_name, channel, at)"
                " SELECT kind, target_id, '', user_id, user_name, channel, at"
                " FROM acknowledgements",
                "DROP TABLE acknowledgements",
                "ALTER TABLE acknowledgements_by_rule RENAME TO acknowledgements",
                "CREATE INDEX acknowledgements_at ON acknowledgements (at)",
            ),
            "postgresql": (
                "ALTER TABLE acknowledgements ADD COLUMN rule TEXT NOT NULL DEFAULT ''",
                "ALTER TABLE acknowledgements DROP CONSTRAINT acknowledgements_pkey",
                "ALTER TABLE acknowledgements ADD PRIMARY KEY (kind, target_id, rule)",
            ),
        },
        statements=(),
    ),
    Migration(
        version=21,
        description="SQLite: a call's words indexed by the statement that stores it, not a trigger",
        statements=(),
        dialect_statements={
            # The trigger of migration 11 made every insert into `events` open the FTS5
            # table, whatever the call's words: it doubled the CPU of storing a call (bench/
            # README.md, "Item 2"). `queue.index_words` writes the same row right after
            # each insert, in the same transaction; deletes and updates keep their triggers.
            # PostgreSQL's stored tsvector needs nothing.
            "sqlite": ("DROP TRIGGER IF EXISTS events_fts_insert",),
        },
    ),
    Migration(
        version=22,
        description="events_received_at dropped: events_newest (received_at, id) serves its reads",
        statements=(
            # Migration 6's events_newest starts with the same column, so every read of
            # a range of received_at (retention's purge, the erasure's recent calls, the
            # calls page's dates) takes it instead, with the same plan; the old index
            # only cost each stored call a B-tree insert (bench/README.md, "Round six").
            # IF EXISTS: a store whose operator dropped it already.
            "DROP INDEX IF EXISTS events_received_at",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def statements_for(migration: Migration, dialect: Dialect) -> list[str]:
    """The migration's statements with the dialect's types and payload fields filled in."""
    fields = _PayloadFields(PAYLOAD_TEXT[dialect])
    numbers = _PayloadFields(PAYLOAD_TEXT[dialect], NUMBER_SEPARATORS)
    binary = BINARY_TYPE[dialect]
    statements = (*migration.dialect_statements.get(dialect, ()), *migration.statements)
    return [
        statement.strip().format(binary=binary, payload_text=fields, number=numbers)
        for statement in statements
    ]


# Written between the digits of a phone number: `+1 (415) 555-0142`, `+49 30.9018`.
NUMBER_SEPARATORS = (" ", "-", "(", ")", ".", "/")


class _PayloadFields:
    """Formats `{payload_text:FIELD}` as the dialect's text of that payload field (with
    `removed` characters taken out of it)."""

    def __init__(self, template: str, removed: tuple[str, ...] = ()) -> None:
        self.template = template
        self.removed = removed

    def __format__(self, field: str) -> str:
        if not field.isidentifier():
            raise ValueError(f"not a payload field name: {field!r}")
        text = self.template.replace("{field}", field)
        for character in self.removed:
            text = f"REPLACE({text}, '{character}', '')"
        return text


def pending(current_version: int) -> list[Migration]:
    """Migrations above `current_version`, in order; refuses a database newer than the code."""
    if current_version > LATEST_VERSION:
        raise StoreOpenError(
            f"the store's schema is version {current_version}, newer than this router "
            f"understands ({LATEST_VERSION}); upgrade the router"
        )
    return [migration for migration in MIGRATIONS if migration.version > current_version]
