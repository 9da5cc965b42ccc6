"""Every SQL statement of the store, once, by name.

Statements take named parameters (`:name`) and are written in the SQL that SQLite
and PostgreSQL share. What the two spell differently is a `{fragment}` filled in
per dialect (`DIALECT_FRAGMENTS`), as is a condition two statements share
(`SHARED_FRAGMENTS`); `Query.compiled` then translates the parameters mechanically:
SQLite's driver takes `:name` with a dict as it is, asyncpg gets `$1…$n` (numbered
in order of first use) and the values in that order.

Conventions that keep one text valid for both: no `::` casts (`CAST(:x AS TYPE)`
where PostgreSQL cannot infer a parameter's type, as in `:x IS NULL`), every
selected expression has a name (`AS …`), since rows are mapped by column name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Dialect = Literal["sqlite", "postgresql"]

DIALECT_FRAGMENTS: dict[Dialect, dict[str, str]] = {
    # The smaller / larger of two values: SQLite's scalar MIN/MAX, PostgreSQL's LEAST/GREATEST.
    # `schema_exists`: whether the router's tables are there (in SQLite's catalogue; on
    # PostgreSQL's search path, where the statements find them). `json_texts`: the strings
    # of a JSON array given as text (`:ids`), as rows.
    "sqlite": {
        "least": "MIN",
        "greatest": "MAX",
        "claim_lock": "",
        "schema_exists": "EXISTS (SELECT 1 FROM sqlite_master"
        " WHERE type = 'table' AND name = 'schema_version')",
        # `search.fts5_query`'s expression, through the FTS5 index (migration 11). Few
        # matches (`words`): read by rowid and sorted. Many (`common_words`; the `+`
        # keeps the rowid from choosing the plan): the newest calls walked by index until
        # the page is full, each looked up in the set of matches.
        "words_match": "rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH :words)",
        "common_words_match": "+rowid IN"
        " (SELECT rowid FROM events_fts WHERE events_fts MATCH :words)",
        # How common the words are: the matches, counted up to :limit.
        "count_word_matches": "SELECT COUNT(*) AS found FROM (SELECT rowid FROM events_fts"
        " WHERE events_fts MATCH :words LIMIT :limit) AS matches",
        "json_texts": "SELECT value FROM json_each(:ids)",
        "no_bytes": "X''",
    },
    # Replicas claim side by side: each takes rows no other transaction holds.
    "postgresql": {
        "least": "LEAST",
        "greatest": "GREATEST",
        "claim_lock": " FOR UPDATE SKIP LOCKED",
        "schema_exists": "to_regclass('schema_version') IS NOT NULL",
        # `search.tsquery`'s text against `search_vector` (migration 11). The planner
        # knows a word's frequency only roughly (a rare word's prefix looks common), so
        # the store says which plan: few matches through the GIN index, then sorted
        # (`list_events` orders them by an expression no index gives), many by walking
        # the newest calls.
        "words_match": "search_vector @@ to_tsquery('simple', :words)",
        "common_words_match": "search_vector @@ to_tsquery('simple', :words)",
        # How common the words are: the matches among the :limit newest calls (a count
        # of all of them would read every match of a common word).
        "count_word_matches": "SELECT COUNT(*) AS found FROM (SELECT search_vector"
        " @@ to_tsquery('simple', :words) AS matched FROM events"
        " ORDER BY received_at DESC, id DESC LIMIT :limit) AS newest WHERE matched",
        "json_texts": "SELECT json_array_elements_text(CAST(:ids AS JSON)) AS value",
        "no_bytes": "CAST('' AS BYTEA)",
    },
}

SHARED_FRAGMENTS = {
    # An attempt moves its (still leased) delivery on: delivered, dead or pending again.
    "finish_update": "UPDATE deliveries SET attempts = attempts + 1,"
    " retry_attempts = retry_attempts + 1, status = :status,"
    " next_attempt_at = :next_attempt_at, last_error = :last_error,"
    " delivered_at = :delivered_at, updated_at = :updated_at,"
    " lease_owner = NULL, lease_until = NULL, steps = :steps"
    " WHERE id = :id AND lease_owner = :owner AND status = 'pending'",
    "attempt_columns": "delivery_id, number, started_at, duration, outcome, status_code,"
    " error, detail, request_head, request_body, response_head, response_body, steps",
    "attempt_values": ":started_at, :duration, :outcome, :status_code, :error, :detail,"
    " :request_head, :request_body, :response_head, :response_body, :attempt_steps",
    # Whether an open digest can take a call arriving at :now (joining, or closing it).
    "joinable": "status = 'pending' AND attempts = 0 AND closes_at > :now"
    " AND (CAST(:max AS INTEGER) IS NULL OR member_count < :max)",
}

# Written between the digits of a phone number (as `migrations.NUMBER_SEPARATORS`).
ERASURE_SEPARATORS = (" ", "-", "(", ")", ".", "/")


def without_separators(expression: str) -> str:
    """SQL of `expression`'s text with the separators people write in phone numbers taken
    out: `+1 (415) 555-0142` holds `4155550142` then, as every writing of it does."""
    for character in ERASURE_SEPARATORS:
        expression = f"REPLACE({expression}, '{character}', '')"
    return expression


# A stored body's text without separators (`CALLS_MENTIONING`).
for _column in ("payload", "posted_payload"):
    DIALECT_FRAGMENTS["sqlite"][f"{_column}_digits"] = without_separators(
        f"CAST({_column} AS TEXT)"
    )
    DIALECT_FRAGMENTS["postgresql"][f"{_column}_digits"] = without_separators(
        f"convert_from({_column}, 'UTF8')"
    )
# The calls of the number being forgotten: each side read from its own index.
SHARED_FRAGMENTS["caller_calls"] = (
    "SELECT id FROM events WHERE from_number = :phone"
    " UNION SELECT id FROM events WHERE to_number = :phone"
)

_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class CompiledQuery:
    """A statement ready for one driver: its text and the order of its parameters."""

    text: str
    parameter_names: tuple[str, ...]

    def positional(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values in `$n` order (PostgreSQL)."""
        return tuple(parameters[name] for name in self.parameter_names)


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    # A statement that may run long on a big database (migrations, the retention purge):
    # exempt from the per-statement deadline that guards the hot path.
    maintenance: bool = False
    _compiled: dict[str, CompiledQuery] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def compiled(self, dialect: Dialect) -> CompiledQuery:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _compile(self, dialect)
        return found


def _compile(query: Query, dialect: Dialect) -> CompiledQuery:
    text = query.text.format(**SHARED_FRAGMENTS, **DIALECT_FRAGMENTS[dialect])
    names = tuple(dict.fromkeys(_PARAMETER.findall(text)))
    if dialect == "sqlite":
        return CompiledQuery(text, names)
    numbers = {name: index for index, name in enumerate(names, start=1)}
    return CompiledQuery(_PARAMETER.sub(lambda match: f"${numbers[match.group(1)]}", text), names)


# --- schema ---------------------------------------------------------------------------

SCHEMA_EXISTS = Query(
    "schema_exists", "SELECT CASE WHEN {schema_exists} THEN 1 ELSE 0 END AS found"
)
CURRENT_VERSION = Query(
    "current_version", "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"
)
RECORD_VERSION = Query(
    "record_version",
    "INSERT INTO schema_version (version, description, applied_at)"
    " VALUES (:version, :description, :applied_at)",
)

# --- ingest ---------------------------------------------------------------------------

INSERT_EVENT = Query(
    "insert_event",
    "INSERT INTO events (id, payload, received_at, status, direction,"
    " agent_id, organization_id, hangup_cause, from_number, to_number, search_text)"
    " VALUES (:id, :payload, :received_at, :status, :direction, :agent_id,"
    " :organization_id, :hangup_cause, :from_number, :to_number, :search_text)"
    " ON CONFLICT (id) DO NOTHING",
)
# SQLite only (migration 21): the words of a call just inserted into the FTS5 index, by
# the store's script instead of a trigger. PostgreSQL computes its tsvector itself.
INDEX_EVENT_WORDS = Query(
    "index_event_words",
    "INSERT INTO events_fts (rowid, search_text)"
    " SELECT rowid, search_text FROM events WHERE id = :id",
)
INSERT_DELIVERY = Query(
    "insert_delivery",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, lease_owner, lease_until, trace_parent)"
    " VALUES (:id, :event_id, :sink, :rule, 'pending', :now, :now, :now, :now,"
    " :lease_owner, :lease_until, :trace_parent)"
    " ON CONFLICT (event_id, sink) DO NOTHING",
)
INSERT_MUTED_DELIVERY = Query(
    "insert_muted_delivery",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, muted_reason)"
    " VALUES (:id, :event_id, :sink, :rule, 'muted', :now, NULL, :now, :now, :muted_reason)"
    " ON CONFLICT (event_id, sink) DO NOTHING",
)
# The open digest takes one more call; reaching `max` closes it and makes it due.
JOIN_DIGEST = Query(
    "join_digest",
    "UPDATE deliveries SET member_count = member_count + 1, updated_at = :now,"
    " open_group = CASE WHEN member_count + 1 >= :max THEN NULL ELSE open_group END,"
    " closes_at = CASE WHEN member_count + 1 >= :max THEN :now ELSE closes_at END,"
    " next_attempt_at = CASE WHEN member_count + 1 >= :max"
    "  THEN {least}(next_attempt_at, :now) ELSE next_attempt_at END"
    " WHERE rule = :rule AND sink = :sink AND open_group = :key AND {joinable}"
    " RETURNING id, member_count - 1 AS position",
)
# Whatever still holds the key but cannot take this call lets go of it. The test repeats
# the join's: a digest another transaction committed since our join looked stays open
# (our insert then loses the race on the unique index and joins it instead).
CLOSE_STALE_GROUP = Query(
    "close_stale_group",
    "UPDATE deliveries SET open_group = NULL"
    " WHERE rule = :rule AND sink = :sink AND open_group = :key AND NOT ({joinable})",
)
OPEN_DIGEST = Query(
    "open_digest",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, kind, group_key, open_group,"
    " window_start, closes_at, member_count, trace_parent)"
    " VALUES (:id, :event_id, :sink, :rule, 'pending', :now, :closes_at, :now, :now,"
    " 'digest', :key, :open_group, :now, :closes_at, 1, :trace_parent)"
    " ON CONFLICT DO NOTHING RETURNING id",
)
DELIVERY_OF_EVENT = Query(
    "delivery_of_event",
    "SELECT id FROM deliveries WHERE event_id = :event_id AND sink = :sink",
)
ADD_MEMBER = Query(
    "add_member",
    "INSERT INTO digest_members (delivery_id, event_id, position)"
    " VALUES (:delivery_id, :event_id, :position)",
)

# --- the queue ------------------------------------------------------------------------

# What a claim answers of each delivery it leased (fixed text: no input goes in it).
for _fragments in DIALECT_FRAGMENTS.values():
    _fragments["claimed_columns"] = (
        "id, COALESCE(event_id, '') AS event_id, sink, rule,"  # noqa: S608
        " COALESCE((SELECT payload FROM events WHERE events.id = deliveries.event_id),"
        f" {_fragments['no_bytes']}) AS payload,"
        " attempts, retry_attempts, retry_started_at, created_at, kind, group_key,"
        " window_start, closes_at AS window_end, steps, next_attempt_at, trace_parent, notice,"
        " (SELECT value FROM settings WHERE name = 'erasure_mark') AS erasure_mark"
    )
# Lease the due deliveries of a sink, oldest due first (the caller sorts the rows: an
# UPDATE returns them in no set order). A claimed digest is closed: no call joins it any
# more. One statement for both databases: SQLite's RETURNING cannot name a joined table,
# so the payload comes from a scalar subquery. `:notices` 0 leaves notices (`on_dead`)
# alone: the lane sends them as one message, one message at a time (CLAIM_NOTICES).
CLAIM = Query(
    "claim",
    "UPDATE deliveries SET lease_owner = :owner, lease_until = :lease_until, open_group = NULL"
    " WHERE id IN (SELECT id FROM deliveries"
    "  WHERE sink = :sink AND status = 'pending' AND next_attempt_at <= :now"
    "  AND (lease_until IS NULL OR lease_until < :now)"
    "  AND (notice IS NULL OR CAST(:notices AS INTEGER) = 1)"
    "  ORDER BY next_attempt_at, created_at, id LIMIT :limit{claim_lock})"
    " RETURNING {claimed_columns}",
)
# Lease the pending notices (`on_dead`) of a sink, to go out as one message: those due
# and those never tried yet (held for `notice_window` so that a burst gathers), oldest
# due first.
CLAIM_NOTICES = Query(
    "claim_notices",
    "UPDATE deliveries SET lease_owner = :owner, lease_until = :lease_until"
    " WHERE id IN (SELECT id FROM deliveries"
    "  WHERE sink = :sink AND status = 'pending' AND notice IS NOT NULL"
    "  AND (next_attempt_at <= :now OR attempts = 0)"
    "  AND (lease_until IS NULL OR lease_until < :now)"
    "  ORDER BY next_attempt_at, created_at, id LIMIT :limit{claim_lock})"
    " RETURNING {claimed_columns}",
)
# Read just before sends when the process cannot answer from what it knows
# (`router.store.leases`; those asked for at once, in one statement): a delivery
# cancelled meanwhile (its caller forgotten) is gone; `:ids` is a JSON array of ids.
STILL_LEASED = Query(
    "still_leased",
    "SELECT id, lease_owner FROM deliveries WHERE status = 'pending' AND id IN ({json_texts})",
)
# The mark every erasure that changed anything leaves (a new random value): a process
# that read the same mark before and after a lease began knows no erasure took it.
ERASURE_MARK = Query("erasure_mark", "SELECT value FROM settings WHERE name = 'erasure_mark'")
MARK_ERASURE = Query(
    "mark_erasure",
    "INSERT INTO settings (name, value) VALUES ('erasure_mark', :value)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
)
RENEW_LEASE = Query(
    "renew_lease",
    "UPDATE deliveries SET lease_until = :until"
    " WHERE id = :id AND lease_owner = :owner AND status = 'pending'",
)
RELEASE_ALL_LEASES = Query(
    "release_all_leases",
    "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
    " WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL",
)
RELEASE_ESCALATION_LEASES = Query(
    "release_escalation_leases",
    "UPDATE escalations SET lease_owner = NULL, lease_until = NULL"
    " WHERE done_at IS NULL AND lease_owner IS NOT NULL",
)
FINISH = Query("finish", "{finish_update} RETURNING attempts")
RECORD_ATTEMPT = Query(
    "record_attempt",
    "INSERT INTO attempts ({attempt_columns}) VALUES (:delivery_id, :number, {attempt_values})",
)
# Both in one statement, so one round trip: PostgreSQL only (SQLite has no data-modifying
# WITH). The lease check and the attempt's number cannot race either way.
FINISH_RECORDING_ATTEMPT = Query(
    "finish_recording_attempt",
    "WITH moved AS ({finish_update} RETURNING id, attempts)"
    " INSERT INTO attempts ({attempt_columns}) SELECT id, attempts, {attempt_values}"
    " FROM moved RETURNING number",
)
DEFER = Query(
    "defer",
    "UPDATE deliveries SET next_attempt_at = :next_attempt_at, updated_at = :now,"
    " lease_owner = NULL, lease_until = NULL"
    " WHERE id = :id AND lease_owner = :owner AND status = 'pending'",
)
KILL = Query(
    "kill",
    "UPDATE deliveries SET status = 'dead', last_error = :reason, next_attempt_at = NULL,"
    " updated_at = :now, lease_owner = NULL, lease_until = NULL"
    " WHERE id = :id AND status = 'pending'"
    " AND (CAST(:owner AS TEXT) IS NULL OR lease_owner = :owner)",
)
# Deliveries of a sink that cannot send (not configured) die past `max_age` in one
# statement, touching nothing that is still young or in flight.
SHARED_FRAGMENTS["kill_expired_waiting"] = (
    "UPDATE deliveries SET status = 'dead', last_error = :reason, next_attempt_at = NULL,"
    " updated_at = :now, lease_owner = NULL, lease_until = NULL"
    " WHERE sink = :sink AND status = 'pending' AND retry_started_at < :started_before"
    " AND (lease_until IS NULL OR lease_until < :now)"
)
KILL_EXPIRED_WAITING = Query("kill_expired_waiting", "{kill_expired_waiting}")
# The same, answering what notices of them are made of (a sink with `on_dead`).
KILL_EXPIRED_WAITING_DEAD = Query(
    "kill_expired_waiting_dead",
    "{kill_expired_waiting} RETURNING id, COALESCE(event_id, '') AS event_id, sink, rule,"
    " last_error AS error,"
    " (SELECT payload FROM events WHERE events.id = deliveries.event_id) AS payload, notice",
)
# A notice of a dead delivery (`on_dead`): a call of its own it has not (`event_id` NULL);
# first due at `:due` (`notice_window` after now, so that a burst goes as one message).
INSERT_NOTICE = Query(
    "insert_notice",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, notice_of, notice)"
    " VALUES (:id, NULL, :sink, :rule, 'pending', :now, :due, :now, :now, :notice_of,"
    " :notice)",
)
_REPLAY_SET = (
    "UPDATE deliveries SET status = 'pending', next_attempt_at = :now, retry_attempts = 0,"
    " retry_started_at = :now, delivered_at = NULL, updated_at = :now,"
    " lease_owner = NULL, lease_until = NULL, muted_reason = NULL"
)
# A delivery in flight (pending under a live lease) is not replayed: it would go out twice.
REPLAY = Query(
    "replay",
    _REPLAY_SET + " WHERE id = :id"
    " AND NOT (status = 'pending' AND lease_until IS NOT NULL AND lease_until >= :now)",
)
_OF_SINK_AND_RULE = (
    " AND (CAST(:sink AS TEXT) IS NULL OR sink = :sink)"
    " AND (CAST(:rule AS TEXT) IS NULL OR rule = :rule)"
)
REPLAY_DEAD = Query("replay_dead", _REPLAY_SET + " WHERE status = 'dead'" + _OF_SINK_AND_RULE)
REPLAY_MUTED = Query("replay_muted", _REPLAY_SET + " WHERE status = 'muted'" + _OF_SINK_AND_RULE)
# A silence found just before a send: the leased delivery is muted, no attempt spent.
MUTE = Query(
    "mute",
    "UPDATE deliveries SET status = 'muted', muted_reason = :reason, next_attempt_at = NULL,"
    " updated_at = :now, lease_owner = NULL, lease_until = NULL"
    " WHERE id = :id AND lease_owner = :owner AND status = 'pending'",
)
# Migration 8's backfill of `search_text`, a page of calls at a time.
EVENTS_BY_ID = Query(
    "events_by_id",
    "SELECT id, payload FROM events WHERE id > :after ORDER BY id LIMIT :limit",
    maintenance=True,
)
SET_SEARCH_TEXT = Query(
    "set_search_text",
    "UPDATE events SET search_text = :search_text WHERE id = :id",
    maintenance=True,
)
PURGE = Query(
    "purge",
    "DELETE FROM events WHERE received_at < :received_before"
    " AND (verification IS NULL OR verification <> 'pending') AND NOT EXISTS ("
    " SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status <> 'delivered')"
    " AND NOT EXISTS ("
    " SELECT 1 FROM digest_members m JOIN deliveries d ON d.id = m.delivery_id"
    " WHERE m.event_id = events.id AND d.status <> 'delivered')",
    maintenance=True,
)

# --- escalation timers (DESIGN.md section 16) -------------------------------------------

# Written with the call's deliveries (one per call and rule: a replayed ingest adds none).
INSERT_ESCALATION = Query(
    "insert_escalation",
    "INSERT INTO escalations (event_id, rule, delivery_id, kind, to_sinks, due_at)"
    " VALUES (:event_id, :rule, :delivery_id, :kind, :to_sinks, :due_at)"
    " ON CONFLICT (event_id, rule) DO NOTHING",
)
# Lease the due timers, as CLAIM leases deliveries: one worker at a time holds each.
CLAIM_ESCALATIONS = Query(
    "claim_escalations",
    "UPDATE escalations SET lease_owner = :owner, lease_until = :lease_until"
    " WHERE (event_id, rule) IN (SELECT event_id, rule FROM escalations"
    "  WHERE done_at IS NULL AND due_at <= :now"
    "  AND (lease_until IS NULL OR lease_until < :now)"
    "  ORDER BY due_at LIMIT :limit{claim_lock})"
    " RETURNING event_id, rule, delivery_id, kind, to_sinks AS to_text, due_at,"
    " (SELECT payload FROM events WHERE events.id = escalations.event_id) AS payload",
)
NEXT_ESCALATION_DUE = Query(
    "next_escalation_due",
    "SELECT MIN(due_at) AS due FROM escalations WHERE done_at IS NULL",
)
# An acknowledgement of the call for the timer's rule (any of the call's deliveries for
# that rule; '': one made before acknowledgements were per rule, for all of them) or of
# the escalated digest.
ESCALATION_ACKNOWLEDGED = Query(
    "escalation_acknowledged",
    "SELECT COUNT(*) AS found FROM acknowledgements"
    " WHERE (kind = 'call' AND target_id = :event_id AND rule IN (:rule, '')"
    " AND :kind = 'single')"
    " OR (kind = 'digest' AND target_id = :delivery_id)",
)
ESCALATED_DELIVERY_EXISTS = Query(
    "escalated_delivery_exists", "SELECT COUNT(*) AS found FROM deliveries WHERE id = :id"
)
# Fired once: only by the worker still holding it, only while not done.
FINISH_ESCALATION = Query(
    "finish_escalation",
    "UPDATE escalations SET done_at = :now, outcome = :outcome,"
    " lease_owner = NULL, lease_until = NULL"
    " WHERE event_id = :event_id AND rule = :rule AND lease_owner = :owner"
    " AND done_at IS NULL",
)
INSERT_ESCALATED_DELIVERY = Query(
    "insert_escalated_delivery",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, escalated_from)"
    " VALUES (:id, :event_id, :sink, :rule, 'pending', :now, :now, :now, :now, :escalated_from)"
    " ON CONFLICT (event_id, sink) DO NOTHING",
)
# A digest escalates as a whole: a closed copy for the escalation sink, same calls.
INSERT_ESCALATED_DIGEST = Query(
    "insert_escalated_digest",
    "INSERT INTO deliveries (id, event_id, sink, rule, status, retry_started_at,"
    " next_attempt_at, created_at, updated_at, kind, group_key, window_start, closes_at,"
    " member_count, escalated_from)"
    " SELECT :id, event_id, :sink, rule, 'pending', :now, :now, :now, :now, 'digest',"
    " group_key, window_start, closes_at, member_count, id FROM deliveries"
    " WHERE id = :escalated_from"
    " ON CONFLICT DO NOTHING",
)
COPY_DIGEST_MEMBERS = Query(
    "copy_digest_members",
    "INSERT INTO digest_members (delivery_id, event_id, position)"
    " SELECT :id, event_id, position FROM digest_members WHERE delivery_id = :escalated_from",
)
ESCALATIONS_OF = Query(
    "escalations_of",
    "SELECT id FROM deliveries WHERE escalated_from = :id ORDER BY created_at, id",
)

# --- reads ----------------------------------------------------------------------------

DIGEST_CALLS = Query(
    "digest_calls",
    "SELECT e.payload FROM digest_members m JOIN events e ON e.id = m.event_id"
    " WHERE m.delivery_id = :id ORDER BY m.position",
)
OPEN_GROUPS = Query(
    "open_groups",
    "SELECT sink, COUNT(*) AS digests FROM deliveries"
    " WHERE open_group IS NOT NULL AND status = 'pending' AND closes_at > :now GROUP BY sink",
)
# A leased delivery cannot be claimed before its lease runs out.
NEXT_DUE = Query(
    "next_due",
    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at"
    " THEN lease_until ELSE next_attempt_at END) AS due"
    " FROM deliveries WHERE sink = :sink AND status = 'pending'",
)
OLDEST_WAITING = Query(
    "oldest_waiting",
    "SELECT MIN(retry_started_at) AS oldest FROM deliveries"
    " WHERE sink = :sink AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)",
)
PENDING_SINKS = Query(
    "pending_sinks", "SELECT DISTINCT sink FROM deliveries WHERE status = 'pending'"
)
BACKLOG = Query(
    "backlog",
    "SELECT sink, status, COUNT(*) AS deliveries, MIN(created_at) AS oldest FROM deliveries"
    " WHERE status IN ('pending', 'dead') GROUP BY sink, status",
)
_DELIVERY_VIEWS = (
    "SELECT id, COALESCE(event_id, '') AS event_id, sink, rule, status, attempts, last_error,"
    " next_attempt_at, created_at, updated_at, delivered_at, kind,"
    " CASE WHEN kind = 'digest' THEN member_count ELSE 1 END AS calls, muted_reason,"
    " escalated_from, notice_of FROM deliveries"
)
_NEWEST_FIRST_PAGE = " ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
GET_DELIVERY = Query("get_delivery", _DELIVERY_VIEWS + " WHERE id = :id")
# A call's own deliveries, and the digests it joined: one set of ids, each side read from
# its own index. Written as `event_id = :call OR id IN (...)`, PostgreSQL walked every
# delivery newest first through deliveries_newest, filtering (352 ms at 900,000
# deliveries, against 0.25 ms so).
_CALLS_DELIVERIES = (
    "SELECT d.id FROM deliveries d WHERE d.event_id = :call"
    " UNION ALL SELECT m.delivery_id FROM digest_members m WHERE m.event_id = :call"
)
_DELIVERY_CONDITIONS = {
    "status": "status = :status",
    "sink": "sink = :sink",
    "rule": "rule = :rule",
    "call": f"id IN ({_CALLS_DELIVERIES})",
}


# One literal query per filter combination (in `_DELIVERY_CONDITIONS`' order), so each
# can use its own index.
def _list_deliveries(filters: tuple[str, ...]) -> Query:
    where = " AND ".join(_DELIVERY_CONDITIONS[name] for name in filters)
    return Query(
        "list_deliveries" + "".join(f"_by_{name}" for name in filters),
        _DELIVERY_VIEWS + (f" WHERE {where}" if where else "") + _NEWEST_FIRST_PAGE,
    )


LIST_DELIVERIES: dict[tuple[str, ...], Query] = {
    filters: _list_deliveries(filters)
    for filters in (
        tuple(name for n, name in enumerate(_DELIVERY_CONDITIONS) if chosen >> n & 1)
        for chosen in range(2 ** len(_DELIVERY_CONDITIONS))
    )
}
# The console's calls. A page of calls carries each body only up to LISTED_PAYLOAD_BYTES
# (NULL beyond): 50 bodies of a megabyte each would make one page read 50 MB.
LISTED_PAYLOAD_BYTES = 256 * 1024  # written out in _LISTED_EVENTS
_EVENT_COLUMNS = (
    "id, received_at, status, direction, agent_id, organization_id, hangup_cause,"
    " from_number, to_number, verification, verify_attempts, verify_next_at FROM events"
)
_EVENT_VIEWS = "SELECT payload, " + _EVENT_COLUMNS
_LISTED_EVENTS = (
    "SELECT CASE WHEN length(payload) <= 262144 THEN payload END AS payload, " + _EVENT_COLUMNS
)
GET_EVENT = Query("get_event", _EVENT_VIEWS + " WHERE id = :id")
_CALL_CONDITIONS = {
    "status": "status = :status",
    "direction": "direction = :direction",
    "agent_id": "agent_id = :agent_id",
    "organization_id": "organization_id = :organization_id",
    "hangup_cause": "hangup_cause = :hangup_cause",
    "call_id": "id = :call_id",
    "verification": "verification = :verification",
    "received_from": "received_at >= :received_from",
    "received_to": "received_at < :received_to",
    # A row value, which both databases read as one index range (PostgreSQL walked the
    # newer calls through the OR form: 196 ms against 0.2 at 300,000 calls).
    "before": "(received_at, id) < (:before_at, :before_id)",
    # `CallFilters.words`: every term, through the database's full-text index.
    "words": "{words_match}",
    "common_words": "{common_words_match}",
}
_LIST_EVENTS: dict[tuple[str, ...], Query] = {}


_NEWEST_CALLS = " ORDER BY received_at DESC, id DESC LIMIT :limit"
# The same order from an expression, which no index gives: the rows matching the other
# conditions are all found first, then sorted (few words' matches, `words`).
_SORTED_CALLS = " ORDER BY received_at + 0 DESC, id DESC LIMIT :limit"
# The calls from or to one number: a page of each side's newest, each read from its own
# index (events_from_newest, events_to_newest) and merged. A number on every call (the
# agent's own line) costs a page, not a sort of all its calls.
_PHONE_SIDES = {"from_side": "from_number = :phone", "to_side": "to_number = :phone"}
_IDS_OF = "SELECT id FROM (SELECT id FROM events WHERE "


def list_events(conditions: tuple[str, ...]) -> Query:
    """Newest calls first, under the named conditions (`_CALL_CONDITIONS`, and "phone"):
    one literal query per combination, so each can use its own index (made once, then
    kept)."""
    found = _LIST_EVENTS.get(conditions)
    if found is None:
        others = [_CALL_CONDITIONS[name] for name in conditions if name != "phone"]
        order = _SORTED_CALLS if "words" in conditions else _NEWEST_CALLS
        if "phone" in conditions:
            sides = " UNION ALL ".join(
                _IDS_OF + " AND ".join([side, *others]) + order + ") AS " + name
                for name, side in _PHONE_SIDES.items()
            )
            where = " WHERE id IN (" + sides + ")"
        else:
            where = f" WHERE {' AND '.join(others)}" if others else ""
        found = _LIST_EVENTS[conditions] = Query(
            "list_events" + "".join(f"_by_{name}" for name in conditions),
            _LISTED_EVENTS + where + order,
        )
    return found


# How common a search's words are (the dialect's way, `DIALECT_FRAGMENTS`).
COUNT_WORD_MATCHES = Query("count_word_matches", "{count_word_matches}")
# The distinct values of a call column, each found by one seek in the column's index
# (`events_status_newest`, `events_hangup_newest`) instead of a walk of every call: the
# "loose index scan" both databases run as a recursive query. At most :limit values.
_DISTINCT_VALUES = (
    "WITH RECURSIVE found (value, n) AS ("
    " SELECT MIN({column}) AS value, 1 AS n FROM events"
    " UNION ALL"
    " SELECT (SELECT MIN({column}) FROM events WHERE {column} > found.value) AS value, n + 1"
    " FROM found WHERE found.value IS NOT NULL AND n < :limit)"
    " SELECT value FROM found WHERE value IS NOT NULL AND value <> '' ORDER BY value"
)
CALL_COLUMN_VALUES = {
    column: Query(f"{column}_values", _DISTINCT_VALUES.replace("{column}", column))
    for column in ("status", "hangup_cause")
}
# Each listed call's deliveries (its own and the digests it joined) ranked worst first
# (`WORST_FIRST`): one query for a page of calls (ids as a JSON array), by index.
WORST_DELIVERY_RANKS = Query(
    "worst_delivery_ranks",
    "SELECT event_id, MIN(CASE status WHEN 'dead' THEN 0 WHEN 'pending' THEN 1"
    " WHEN 'muted' THEN 2 ELSE 3 END) AS rank FROM ("
    " SELECT event_id, status FROM deliveries WHERE event_id IN ({json_texts})"
    " UNION ALL"
    " SELECT m.event_id AS event_id, d.status AS status FROM digest_members m"
    " JOIN deliveries d ON d.id = m.delivery_id WHERE m.event_id IN ({json_texts})"
    ") AS states GROUP BY event_id",
)
DELIVERIES_OF_EVENT = Query(
    "deliveries_of_event",
    f"{_DELIVERY_VIEWS} WHERE {_DELIVERY_CONDITIONS['call']} ORDER BY created_at, id",
)
# Per sink and status: how many, how many of them were tried already, the oldest. The
# `status <> 'delivered'` is the partial index deliveries_unsettled's condition, written
# out so both databases know they may read that small index alone (5 ms instead of
# 70 ms with 1,000,000 deliveries; bench/console_pages.py).
SINK_COUNTS = Query(
    "sink_counts",
    "SELECT sink, status, COUNT(*) AS deliveries,"
    " SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS tried, MIN(created_at) AS oldest"
    " FROM deliveries WHERE status IN ('pending', 'dead', 'muted') AND status <> 'delivered'"
    " GROUP BY sink, status",
)
# Grouped by an expression, not the column: else SQLite walks a whole index ordered by
# sink to spare a sort, instead of reading the last hour's range of deliveries_delivered
# (620 ms against 1 ms with 1,000,000 deliveries; bench/console_pages.py).
DELIVERED_SINCE = Query(
    "delivered_since",
    "SELECT sink || '' AS sink, COUNT(*) AS delivered FROM deliveries"
    " WHERE delivered_at >= :since GROUP BY 1",
)
LIST_ATTEMPTS = Query(
    "list_attempts",
    "SELECT number, started_at, duration, outcome, status_code, error, detail,"
    " request_head, request_body, response_head, response_body, steps"
    " FROM attempts WHERE delivery_id = :id ORDER BY number",
)
PING = Query("ping", "SELECT 1 AS alive")
# A real, durable write: what /readyz needs to know beyond "the store answers".
PROBE_WRITE = Query(
    "probe_write",
    "INSERT INTO store_probe (id, written_at) VALUES ('readyz', :now)"
    " ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
)

# --- replicas (a shared store only) ----------------------------------------------------

HEARTBEAT = Query(
    "heartbeat",
    "INSERT INTO replicas (owner, last_seen) VALUES (:owner, :now)"
    " ON CONFLICT (owner) DO UPDATE SET last_seen = {greatest}(replicas.last_seen, :now)",
)
FORGET_WORKERS = Query("forget_workers", "DELETE FROM replicas WHERE last_seen < :before")
LIVE_WORKERS = Query(
    "live_workers", "SELECT COUNT(*) AS live FROM replicas WHERE last_seen >= :since"
)
RETIRE_WORKER = Query("retire_worker", "DELETE FROM replicas WHERE owner = :owner")

# --- verify mode (calls held until RevRing's API confirms them) -------------------------

INSERT_HELD_EVENT = Query(
    "insert_held_event",
    "INSERT INTO events (id, payload, received_at, status, direction, agent_id,"
    " organization_id, hangup_cause, from_number, to_number, search_text, verification,"
    " verify_next_at)"
    " VALUES (:id, :payload, :received_at, :status, :direction, :agent_id, :organization_id,"
    " :hangup_cause, :from_number, :to_number, :search_text, 'pending', :received_at)"
    " ON CONFLICT (id) DO NOTHING",
)
DUE_HELD = Query(
    "due_held",
    "SELECT id AS event_id, payload, received_at, verify_attempts FROM events"
    " WHERE verification = 'pending' AND verify_next_at <= :now"
    " ORDER BY verify_next_at, id LIMIT :limit",
)
# Routes a held call (pending, or not_verified when released by hand) with `payload`,
# keeping the body as posted; the deliveries are written in the same transaction.
ROUTE_HELD = Query(
    "route_held",
    "UPDATE events SET verification = :verification, verify_next_at = NULL,"
    " posted_payload = payload, payload = :payload, status = :status, direction = :direction,"
    " agent_id = :agent_id, organization_id = :organization_id, hangup_cause = :hangup_cause,"
    " from_number = :from_number, to_number = :to_number, search_text = :search_text"
    " WHERE id = :id AND verification IN ('pending', :also)",
)
MARK_NOT_VERIFIED = Query(
    "mark_not_verified",
    "UPDATE events SET verification = 'not_verified', verify_next_at = NULL,"
    " verify_attempts = verify_attempts + 1 WHERE id = :id AND verification = 'pending'",
)
POSTPONE_VERIFICATION = Query(
    "postpone_verification",
    "UPDATE events SET verify_attempts = verify_attempts + 1, verify_next_at = :next_at"
    " WHERE id = :id AND verification = 'pending'",
)

# --- operators' controls: silences and sink pauses ------------------------------------

_SELECT_SILENCES = (
    "SELECT id, condition, sinks, starts_at, ends_at, comment, created_at, expired_at FROM silences"
)
INSERT_SILENCE = Query(
    "insert_silence",
    "INSERT INTO silences (id, condition, sinks, starts_at, ends_at, comment, created_at)"
    " VALUES (:id, :condition, :sinks, :starts_at, :ends_at, :comment, :created_at)",
)
LIST_SILENCES = Query(
    "list_silences",
    _SELECT_SILENCES + " WHERE CAST(:ended_after AS DOUBLE PRECISION) IS NULL"
    " OR (ends_at > :ended_after AND (expired_at IS NULL OR expired_at > :ended_after))"
    " ORDER BY starts_at, created_at, id",
)
EXPIRE_SILENCE = Query(
    "expire_silence",
    "UPDATE silences SET expired_at = :now"
    " WHERE id = :id AND expired_at IS NULL AND ends_at > :now",
)
GET_SILENCE = Query("get_silence", _SELECT_SILENCES + " WHERE id = :id")
PURGE_SILENCES = Query(
    "purge_silences",
    "DELETE FROM silences WHERE ends_at < :before OR expired_at < :before",
    maintenance=True,
)
PURGE_PAUSES = Query("purge_pauses", "DELETE FROM sink_pauses WHERE paused_until < :before")
PAUSE_SINK = Query(
    "pause_sink",
    "INSERT INTO sink_pauses (sink, paused_until, comment, created_at)"
    " VALUES (:sink, :until, :comment, :created_at)"
    " ON CONFLICT (sink) DO UPDATE SET paused_until = excluded.paused_until,"
    " comment = excluded.comment, created_at = excluded.created_at",
)
RESUME_SINK = Query("resume_sink", "DELETE FROM sink_pauses WHERE sink = :sink")
SINK_PAUSES = Query(
    "sink_pauses",
    "SELECT sink, paused_until AS until, comment, created_at FROM sink_pauses"
    " WHERE paused_until > :now ORDER BY sink",
)

# --- acting from Slack's buttons: acknowledgements, the audit, extending a silence -----

EXTEND_SILENCE = Query(
    "extend_silence",
    "UPDATE silences SET ends_at = :ends_at"
    " WHERE id = :id AND expired_at IS NULL AND ends_at > :now AND ends_at < :ends_at",
)
EVENT_PAYLOAD = Query("event_payload", "SELECT payload FROM events WHERE id = :id")
_SELECT_ACKNOWLEDGEMENTS = (
    "SELECT kind, target_id, rule, user_id, user_name, channel, at FROM acknowledgements"
)
# The first one of each (call, rule) or digest counts: none is recorded where one of its
# rule, or one made before acknowledgements were per rule (rule ''), is there already.
ACKNOWLEDGE = Query(
    "acknowledge",
    "INSERT INTO acknowledgements (kind, target_id, rule, user_id, user_name, channel, at)"
    " SELECT :kind, :target_id, :rule, :user_id, :user_name, :channel,"
    " CAST(:at AS DOUBLE PRECISION)"
    " WHERE NOT EXISTS (SELECT 1 FROM acknowledgements"
    "  WHERE kind = :kind AND target_id = :target_id AND rule IN (:rule, ''))"
    " ON CONFLICT (kind, target_id, rule) DO NOTHING",
)
# The one that counts for a (call, rule) or digest: its own, or an old one of them all.
GET_ACKNOWLEDGEMENT = Query(
    "get_acknowledgement",
    _SELECT_ACKNOWLEDGEMENTS
    + " WHERE kind = :kind AND target_id = :id AND rule IN (:rule, '') ORDER BY at LIMIT 1",
)
ACKNOWLEDGEMENTS_SINCE = Query(
    "acknowledgements_since", _SELECT_ACKNOWLEDGEMENTS + " WHERE at >= :since ORDER BY at"
)
PURGE_ACKNOWLEDGEMENTS = Query(
    "purge_acknowledgements", "DELETE FROM acknowledgements WHERE at < :before", maintenance=True
)

# --- console sessions ----------------------------------------------------------------------

START_SESSION = Query(
    "start_session",
    "INSERT INTO sessions"
    " (id_hash, user_name, role, via, credential_mac, csrf, created_at, expires_at)"
    " VALUES (:id_hash, :user_name, :role, :via, :credential_mac, :csrf, :created_at,"
    " :expires_at)",
)
GET_SESSION = Query(
    "get_session",
    "SELECT id_hash, user_name, role, via, credential_mac, csrf, created_at, expires_at"
    " FROM sessions WHERE id_hash = :id_hash AND expires_at > :now",
)
END_SESSION = Query("end_session", "DELETE FROM sessions WHERE id_hash = :id_hash")
PURGE_SESSIONS = Query(
    "purge_sessions", "DELETE FROM sessions WHERE expires_at <= :now", maintenance=True
)

# --- the audit of operators' changes ---------------------------------------------------

RECORD_AUDIT = Query(
    "record_audit",
    "INSERT INTO audit (id, at, actor, action, target, details)"
    " VALUES (:id, :at, :actor, :action, :target, :details)",
)
_AUDIT_CONDITIONS = {
    "since": "at >= :since",
    "actor": "actor = :actor",
    "action": "action = :action",
    # A row value, which PostgreSQL reads from the index as one range (the OR form the
    # calls use walks it: 33 ms against 1 ms for a page of 200,000 records).
    "before": "(at, id) < (:before_at, :before_id)",
}
_LIST_AUDIT: dict[tuple[str, ...], Query] = {}
_AUDIT_RECORDS = "SELECT id, at, actor, action, target, details FROM audit"
_NEWEST_AUDIT = " ORDER BY at DESC, id DESC LIMIT :limit"


def list_audit(conditions: tuple[str, ...]) -> Query:
    """The recorded changes newest first under the named conditions (`_AUDIT_CONDITIONS`):
    one literal query per combination, so each can use its index (audit_newest,
    audit_actor_newest, audit_action_newest); made once, then kept."""
    found = _LIST_AUDIT.get(conditions)
    if found is None:
        where = " AND ".join(_AUDIT_CONDITIONS[name] for name in conditions)
        found = _LIST_AUDIT[conditions] = Query(
            "list_audit" + "".join(f"_by_{name}" for name in conditions),
            _AUDIT_RECORDS + (f" WHERE {where}" if where else "") + _NEWEST_AUDIT,
        )
    return found


AUDIT_CHOICES = 200  # actors (and actions) the console offers as filters, at most

# The distinct actors (actions) in order, by a loose index scan: one seek per value in
# audit_actor_newest (audit_action_newest), not a read of every record (GROUP BY took
# 690 ms with 200,000 records on PostgreSQL; bench/audit_reads.py).
AUDIT_ACTORS = Query(
    "audit_actors",
    "WITH RECURSIVE found (actor) AS (SELECT MIN(actor) FROM audit UNION ALL"
    " SELECT (SELECT MIN(actor) FROM audit WHERE actor > found.actor) FROM found"
    " WHERE found.actor IS NOT NULL)"
    " SELECT actor FROM found WHERE actor IS NOT NULL LIMIT :limit",
)
AUDIT_ACTIONS = Query(
    "audit_actions",
    "WITH RECURSIVE found (action) AS (SELECT MIN(action) FROM audit UNION ALL"
    " SELECT (SELECT MIN(action) FROM audit WHERE action > found.action) FROM found"
    " WHERE found.action IS NOT NULL)"
    " SELECT action FROM found WHERE action IS NOT NULL LIMIT :limit",
)
PURGE_AUDIT = Query("purge_audit", "DELETE FROM audit WHERE at < :before", maintenance=True)
# Migration 10: the clicks on Slack's buttons audited before it, a page at a time.
SLACK_ACTIONS_AUDITED = Query(
    "slack_actions_audited",
    "SELECT id, at, user_id, user_name, channel, action, target, outcome, detail"
    " FROM slack_actions_audit WHERE id > :after ORDER BY id LIMIT :limit",
    maintenance=True,
)
COPY_AUDIT = Query(
    "copy_audit",
    "INSERT INTO audit (id, at, actor, action, target, details)"
    " VALUES (:id, :at, :actor, :action, :target, :details) ON CONFLICT (id) DO NOTHING",
    maintenance=True,
)
DROP_SLACK_ACTIONS = Query("drop_slack_actions", "DROP TABLE slack_actions_audit", maintenance=True)
# --- forgetting a caller (DESIGN.md section 15; `router.store.erasure`) ----------------

CALLER_CALLS = Query("caller_calls", "{caller_calls} ORDER BY id", maintenance=True)
CALLER_DELIVERIES = Query(
    "caller_deliveries",
    "SELECT id, event_id, status, kind FROM deliveries WHERE event_id IN ({caller_calls})",
    maintenance=True,
)
# Every member of each digest the caller's calls are in (or opened), in order.
CALLER_DIGESTS = Query(
    "caller_digests",
    "SELECT m.delivery_id AS digest_id, m.event_id AS member, d.event_id AS owner"
    " FROM digest_members m JOIN deliveries d ON d.id = m.delivery_id"
    " WHERE m.delivery_id IN (SELECT delivery_id FROM digest_members"
    " WHERE event_id IN ({caller_calls})) ORDER BY m.delivery_id, m.position",
    maintenance=True,
)
# A digest keeps its other calls: it belongs to the first of them, counts them alone, and
# takes no more calls (a new digest opens for the group). Its lease ends: a worker that
# holds it may have read the caller's call already, so it must not send it (it finds
# the lease gone, `STILL_LEASED`); the next claim reads its calls again.
KEEP_DIGEST = Query(
    "keep_digest",
    "UPDATE deliveries SET event_id = :owner, member_count = member_count - :removed,"
    " open_group = NULL,"
    " lease_owner = NULL, lease_until = NULL WHERE id = :id",
)
FORGET_CALL_ACKNOWLEDGEMENTS = Query(
    "forget_call_acknowledgements",
    "DELETE FROM acknowledgements WHERE kind = 'call' AND target_id IN ({caller_calls})",
    maintenance=True,
)
FORGET_DIGEST_ACKNOWLEDGEMENT = Query(
    "forget_digest_acknowledgement",
    "DELETE FROM acknowledgements WHERE kind = 'digest' AND target_id = :id",
)
# Their deliveries, attempts and digest memberships go with them (ON DELETE CASCADE).
FORGET_CALLS = Query(
    "forget_calls", "DELETE FROM events WHERE id IN ({caller_calls})", maintenance=True
)
# Other calls whose body (or body as posted, verify mode) may mention the number: a scan
# of every body, in SQL (figures: bench/forget_scan.py, docs/concepts/privacy.md). It runs
# as a read before the erasure's transaction (`MENTIONING_CALL_IDS`), which then reads
# those calls again, and the calls that came in or changed since (`RECENT_MENTIONING`).
_MENTIONING = (
    "from_number <> :phone AND to_number <> :phone AND ({payload_digits} LIKE :digits"
    " OR (posted_payload IS NOT NULL AND {posted_payload_digits} LIKE :digits))"
)
_MENTIONING_CALLS = "SELECT id, payload, posted_payload FROM events WHERE "
_MENTIONING_IDS = "SELECT id FROM events WHERE "
MENTIONING_CALL_IDS = Query("mentioning_call_ids", _MENTIONING_IDS + _MENTIONING, maintenance=True)
MENTIONING_CALLS = Query("mentioning_calls", _MENTIONING_CALLS + _MENTIONING, maintenance=True)
MENTIONING_CALL = Query("mentioning_call", _MENTIONING_CALLS + "id = :id AND " + _MENTIONING)
# Held calls (verify mode) get RevRing's body when they are routed.
RECENT_MENTIONING = Query(
    "recent_mentioning",
    _MENTIONING_CALLS + "(received_at >= :since OR verification IN ('pending', 'not_verified'))"
    " AND " + _MENTIONING,
    maintenance=True,
)
# A rewritten call's pending deliveries (its own and the digests it is in) lose their
# lease: a worker holding one read the old body, and must not send it; the next claim
# reads the new one.
RELEASE_CALL_LEASES = Query(
    "release_call_leases",
    "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
    " WHERE status = 'pending' AND lease_owner IS NOT NULL AND (event_id = :id"
    " OR id IN (SELECT delivery_id FROM digest_members WHERE event_id = :id))",
)
REWRITE_CALL = Query(
    "rewrite_call",
    "UPDATE events SET payload = :payload, posted_payload = :posted_payload,"
    " search_text = :search_text WHERE id = :id",
)


@dataclass(frozen=True)
class ErasedColumn:
    """A stored text column that may hold a phone number: `find` gives its rows (`key_*`
    columns and `text`) that hold `:digits` once separators are out; `rewrite` sets one
    row's text (`:text`, `:key_0`…)."""

    table: str
    keys: tuple[str, ...]
    column: str
    find: Query = field(init=False, compare=False)
    rewrite: Query = field(init=False, compare=False)

    def __post_init__(self) -> None:
        name = f"{self.table}_{self.column}"
        keys = ", ".join(f"{key} AS key_{n}" for n, key in enumerate(self.keys))
        # Names of our own tables and columns (never input), hence joined as text.
        digits = without_separators(self.column)
        find = f"SELECT {keys}, {self.column} AS text FROM {self.table} WHERE {digits} LIKE :digits"  # noqa: S608
        where = " AND ".join(f"{key} = :key_{n}" for n, key in enumerate(self.keys))
        rewrite = f"UPDATE {self.table} SET {self.column} = :text WHERE {where}"  # noqa: S608
        object.__setattr__(self, "find", Query(f"erase_find_{name}", find, maintenance=True))
        object.__setattr__(self, "rewrite", Query(f"erase_rewrite_{name}", rewrite))


# A store's own secrets, each made once (the first writer's value wins).
ADD_SETTING = Query(
    "add_setting",
    "INSERT INTO settings (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING",
)
GET_SETTING = Query("get_setting", "SELECT value FROM settings WHERE name = :name")

# Outbound access tokens (`router.store.base.OutboundTokens`): the one of a sink's auth
# settings, and a new one written over it (a sink's rows for older settings go).
GET_OUTBOUND_TOKEN = Query(
    "get_outbound_token",
    "SELECT sink, auth_key, access_token, obtained_at, expires_at, refresh_token"
    " FROM outbound_tokens WHERE sink = :sink AND auth_key = :auth_key",
)
PUT_OUTBOUND_TOKEN = Query(
    "put_outbound_token",
    "INSERT INTO outbound_tokens"
    " (sink, auth_key, access_token, obtained_at, expires_at, refresh_token)"
    " VALUES (:sink, :auth_key, :access_token, :obtained_at, :expires_at, :refresh_token)"
    " ON CONFLICT (sink, auth_key) DO UPDATE SET access_token = excluded.access_token,"
    " obtained_at = excluded.obtained_at, expires_at = excluded.expires_at,"
    " refresh_token = excluded.refresh_token",
)
DROP_OLD_OUTBOUND_TOKENS = Query(
    "drop_old_outbound_tokens",
    "DELETE FROM outbound_tokens WHERE sink = :sink AND auth_key <> :auth_key",
)

# --- Slack threads (thread_by): one parent message per (sink, thread key) -------------

GET_THREAD = Query(
    "get_thread",
    "SELECT sink, thread_key, channel, ts, parent, replies, started_at FROM slack_threads"
    " WHERE sink = :sink AND thread_key = :thread_key AND started_at > :since",
)
# Insert-if-absent: a live thread (another replica's, started meanwhile) is kept; one
# that expired (started at or before :since) is replaced. A row back: this one won.
START_THREAD = Query(
    "start_thread",
    "INSERT INTO slack_threads (sink, thread_key, channel, ts, parent, replies, started_at)"
    " VALUES (:sink, :thread_key, :channel, :ts, :parent, 0, :started_at)"
    " ON CONFLICT (sink, thread_key) DO UPDATE SET channel = excluded.channel,"
    " ts = excluded.ts, parent = excluded.parent, replies = 0,"
    " started_at = excluded.started_at WHERE slack_threads.started_at <= :since"
    " RETURNING ts",
)
COUNT_THREAD_REPLY = Query(
    "count_thread_reply",
    "UPDATE slack_threads SET replies = replies + 1"
    " WHERE sink = :sink AND thread_key = :thread_key AND ts = :ts RETURNING replies",
)
END_THREAD = Query(
    "end_thread",
    "DELETE FROM slack_threads WHERE sink = :sink AND thread_key = :thread_key AND ts = :ts",
)
PURGE_THREADS = Query(
    "purge_threads", "DELETE FROM slack_threads WHERE started_at < :before", maintenance=True
)
