"""What the store keeps and answers with: events, deliveries, attempts, digests and
operators' state, as frozen dataclasses.

An *event* is one accepted call (its body as received); a *delivery* is that event
for one sink (one per (event, sink)); an *attempt* is one try at sending a delivery,
with its outcome, status code, error and duration. A *digest* is a delivery of kind
'digest' (a grouped rule's): it belongs to the event that opened it and lists its
member events, the calls gathered in its window.

Delivery states: `pending` (waiting for `next_attempt_at`, or leased by a worker
while `lease_until` is in the future), `delivered`, `dead` (kept; replay makes it
`pending` again with a fresh retry budget), `muted` (not sent: every rule routing it was
muted by a time interval, or a silence matched; `muted_reason` says which; replayable
like a dead one). All times are unix seconds (float).

Operators' state (DESIGN.md section 9): *silences* (a `when` condition, optional sinks, a
time span; expiring one ends it now and keeps it listed), *sink pauses* (a sink held
until a time), acknowledgements and the audit of clicks on alerts' buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

DeliveryStatus = Literal["pending", "delivered", "dead", "muted"]
CallColumn = Literal["status", "hangup_cause"]
"""A call column whose distinct values the console offers as choices."""
AttemptOutcome = Literal["delivered", "retry", "dead"]
DeliveryKind = Literal["single", "digest"]


@dataclass(frozen=True)
class GroupJoin:
    """How a delivery of a grouped rule joins a digest (see `Ingest.ingest`)."""

    key: str  # the group key as canonical JSON text
    window: float  # seconds from the first call to the digest's due time
    max: int | None = None  # send early once this many calls are in


@dataclass(frozen=True)
class NewDelivery:
    id: str
    sink: str
    rule: str
    group: GroupJoin | None = None  # None: a delivery of its own (kind 'single')
    # Written already leased (single deliveries only): the ingesting worker sends it
    # straight away, with no claim; if that worker dies, the lease expires as usual.
    lease_owner: str | None = None
    lease_until: float | None = None
    # Not sent: written with status 'muted' and this reason (never leased, never a digest).
    muted_reason: str | None = None


@dataclass(frozen=True)
class EscalationPlan:
    """A rule's `escalate` for one routed call (DESIGN.md section 16): written as a timer
    with the call's deliveries, due `after` seconds after the rule's first delivery of it
    was created (a digest: after its window closes), to `to`."""

    rule: str
    after: float
    to: tuple[str, ...]


@dataclass(frozen=True)
class DueEscalation:
    """An escalation timer come due, leased to one worker (claimed like a delivery):
    the call and rule it is for, the delivery it escalates (`delivery_id`, of `kind`
    'single' or 'digest'), the sinks to escalate to and the call's body."""

    event_id: str
    rule: str
    delivery_id: str
    kind: DeliveryKind
    to: tuple[str, ...]
    due_at: float
    payload: bytes


EscalationOutcome = Literal["escalated", "acknowledged", "muted", "silenced", "gone"]
"""What a fired timer came to: new deliveries made, or none because the call was
acknowledged, the rule muted by a time interval, every escalation sink silenced, or the
escalated delivery gone (its caller forgotten)."""


@dataclass(frozen=True)
class IngestRecord:
    """One accepted call and the deliveries its rules produced."""

    event_id: str
    payload: bytes  # the JSON body exactly as received
    received_at: float
    deliveries: Sequence[NewDelivery]
    status: str = ""
    direction: str = ""
    # Copied from the payload into columns of their own, for the console's filters.
    agent_id: str = ""
    organization_id: str = ""
    hangup_cause: str = ""
    # What calls are searched by: the numbers in E.164 ('' when not a number) and
    # `router.store.search.searchable_text` of the payload.
    from_number: str = ""
    to_number: str = ""
    search_text: str = field(default="", repr=False)
    # The escalation timers of the call's rules (`EscalationPlan`), written with it.
    escalations: Sequence[EscalationPlan] = ()
    # The payload as JSON data, when the webhook still holds it (a small body): a delivery
    # sent straight after the commit uses it instead of decoding the payload again. Never
    # stored; None when unknown.
    decoded: Any = field(default=None, compare=False, repr=False)
    # The W3C `traceparent` of the call's ingest span (`router.core.tracing`), kept with
    # each delivery it creates so every attempt joins the call's trace; None: not traced.
    trace_parent: str | None = None


@dataclass(frozen=True)
class IngestResult:
    status: Literal["accepted", "duplicate"]
    deliveries: int


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to one worker, with what the sink needs to send it."""

    id: str
    event_id: str
    sink: str
    rule: str
    payload: bytes
    attempts: int  # all attempts so far, replays included
    retry_attempts: int  # attempts since it was created or last replayed (the retry budget)
    retry_started_at: float  # creation or last replay: `max_age` counts from here
    created_at: float
    kind: DeliveryKind = "single"
    group_key: str | None = None  # digests: the canonical JSON of the group key
    window_start: float | None = None  # digests: the first call's arrival
    window_end: float | None = None  # digests: when the window closed (or `max` was reached)
    # An `http` sink's steps done by earlier attempts, as stored (`router.store.steps`).
    steps: str | None = None
    # The payload already decoded (`IngestRecord.decoded`), or None: decode `payload`.
    decoded: Any = field(default=None, compare=False, repr=False)
    trace_parent: str | None = None  # the call's trace (`IngestRecord.trace_parent`)
    # A notice of a dead delivery (`on_dead`): what it says, as JSON; it has no call of
    # its own (`event_id` and `payload` empty).
    notice: str | None = None

    @classmethod
    def written_leased(cls, delivery: NewDelivery, record: IngestRecord) -> ClaimedDelivery:
        """A single delivery just committed already leased (`NewDelivery.lease_owner`), as
        a claim would have returned it: no attempt yet, its budget counting from now."""
        return cls(
            id=delivery.id,
            event_id=record.event_id,
            sink=delivery.sink,
            rule=delivery.rule,
            payload=record.payload,
            attempts=0,
            retry_attempts=0,
            retry_started_at=record.received_at,
            created_at=record.received_at,
            decoded=record.decoded,
            trace_parent=record.trace_parent,
        )


Header = tuple[str, str]


@dataclass(frozen=True)
class SentRequest:
    """What an attempt sent, as kept: secrets and phone numbers masked already (the sink
    masks them, `sinks.exchange`). For HTTP the method, URL and headers the router set;
    for SMTP the envelope and message headers; for the log sink what it wrote. `body` is
    at most `BODY_LIMIT` bytes of UTF-8 text, `truncated` when the body was longer
    (`size`: its whole length in bytes); `headers_omitted` counts headers not kept."""

    method: str
    target: str
    headers: tuple[Header, ...] = ()
    body: str = ""
    size: int = 0
    truncated: bool = False
    headers_omitted: int = 0


@dataclass(frozen=True)
class ReceivedResponse:
    """What an attempt got back, as kept (masked like `SentRequest`): an HTTP status and
    headers, or an SMTP reply code with its message as the body. `size` is None when the
    body was not read to its end."""

    status: int | None
    headers: tuple[Header, ...] = ()
    body: str = ""
    size: int | None = 0
    truncated: bool = False
    headers_omitted: int = 0


@dataclass(frozen=True)
class Exchange:
    """One attempt's request and its response (None: no answer came: refused, timed out)."""

    request: SentRequest
    response: ReceivedResponse | None = None


# At most this many bytes of each body are kept (4 KiB), and headers up to these limits.
BODY_LIMIT = 4096
MAX_HEADERS = 50
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 1024


StepOutcomeKind = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class StepOutcome:
    """One step of an `http` sink's steps in an attempt: `done` (its answer accepted),
    `skipped` (its `if` was false) or `failed`; `captures` the values it captured (kept
    for the next attempt, which resumes after it), `shown` the same masked for people
    (phone numbers), `exchange` what it sent and got (masked). `earlier`: done or skipped
    by an earlier attempt, not sent again by this one."""

    name: str
    outcome: StepOutcomeKind
    captures: Mapping[str, Any] = field(default_factory=dict)
    shown: Mapping[str, Any] = field(default_factory=dict)
    exchange: Exchange | None = None
    earlier: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    number: int  # 1-based, over the delivery's whole life
    started_at: float
    duration: float  # seconds
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    detail: str | None = None
    exchange: Exchange | None = None  # None: not recorded (older attempts, nothing sent)
    steps: tuple[StepOutcome, ...] = ()  # an `http` sink's steps, in order (else none)


@dataclass(frozen=True)
class StateAfterAttempt:
    """Where an attempt leaves its delivery; the same rule for every store."""

    status: DeliveryStatus
    next_attempt_at: float | None
    delivered_at: float | None
    last_error: str | None

    @classmethod
    def of(cls, attempt: AttemptRecord, next_attempt_at: float | None) -> StateAfterAttempt:
        if attempt.outcome == "retry" and next_attempt_at is None:
            raise ValueError("a retry outcome needs next_attempt_at")
        if attempt.outcome == "delivered":
            return cls("delivered", None, attempt.started_at + attempt.duration, None)
        if attempt.outcome == "retry":
            return cls("pending", next_attempt_at, None, attempt.error)
        return cls("dead", None, None, attempt.error)


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the admin API and `revring-router deliveries` show it."""

    id: str
    event_id: str
    sink: str
    rule: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    delivered_at: float | None
    kind: DeliveryKind = "single"
    calls: int = 1  # the calls it carries: a digest's members so far, 1 for a single delivery
    muted_reason: str | None = None  # status 'muted': `time_interval:NAME` or `silence:ID`
    escalated_from: str | None = None  # an escalation's: the delivery nobody acknowledged
    notice_of: str | None = None  # a notice (`on_dead`): the dead delivery it tells of


@dataclass(frozen=True)
class SilenceRecord:
    """A silence as stored: `when` is the condition as JSON text (the rules' syntax),
    `sinks` the sinks it covers (None: all). Expiring sets `expired_at` and ends it then."""

    id: str
    when: str
    sinks: tuple[str, ...] | None
    starts_at: float
    ends_at: float
    comment: str
    created_at: float
    expired_at: float | None = None

    @property
    def effective_end(self) -> float:
        return self.ends_at if self.expired_at is None else min(self.ends_at, self.expired_at)

    def state(self, now: float) -> Literal["pending", "active", "expired"]:
        if now >= self.effective_end:
            return "expired"
        return "pending" if now < self.starts_at else "active"


@dataclass(frozen=True)
class SinkPause:
    """A sink held by hand until `until` (its deliveries wait, spending no attempts)."""

    sink: str
    until: float
    comment: str
    created_at: float


@dataclass(frozen=True)
class DeadDelivery:
    """A delivery that just went dead, as its notices (`on_dead`) are made of it: its
    call's body (a digest's: its first call's; None for a notice) and its last error."""

    id: str
    event_id: str
    sink: str
    rule: str
    error: str | None
    payload: bytes | None = None
    notice: str | None = None  # set when the dead one is itself a notice: none of it


@dataclass(frozen=True)
class NewNotice:
    """A notice delivery to write with a dead mark, in its transaction: to `sink`, of the
    dead delivery `notice_of`, saying `notice` (JSON text, `sinks.notices`), first due
    `hold` seconds after it is written (`notice_window`: a burst of notices to one sink
    gathers into one message)."""

    id: str
    sink: str
    rule: str
    notice_of: str
    notice: str
    hold: float = 0.0


@dataclass(frozen=True)
class SlackThread:
    """The parent message of a Slack thread (`thread_by`): where it is (`channel`, `ts`),
    the message as posted (`parent`, JSON text), its replies so far, and when it began."""

    sink: str
    thread_key: str
    channel: str
    ts: str
    parent: str
    replies: int
    started_at: float


Verification = Literal["pending", "verified", "not_verified", "released"]


@dataclass(frozen=True)
class HeldCall:
    """A call stored in verify mode and not routed yet (verification `pending`)."""

    event_id: str
    payload: bytes
    received_at: float
    verify_attempts: int


@dataclass(frozen=True)
class CallFilters:
    """Which calls `ConsoleReads.list_events` shows; None (or nothing) leaves a field
    unfiltered. Times are unix seconds: `received_from` inclusive, `received_to` exclusive.
    `status` and `hangup_cause` match in any case. `phone`: calls from or to this number,
    in E.164 (`router.core.phones.e164`); `words`: calls whose summary or transcript holds
    a word beginning with each of their terms (`router.store.search.search_terms`; at
    most `MAX_SEARCH_WORDS` words; words of punctuation alone match no call)."""

    status: str | None = None
    direction: str | None = None
    agent_id: str | None = None
    organization_id: str | None = None
    hangup_cause: str | None = None
    call_id: str | None = None
    verification: str | None = None
    received_from: float | None = None
    received_to: float | None = None
    phone: str | None = None
    words: tuple[str, ...] = ()

    def given(self) -> dict[str, str | float]:
        """The fields set apart from `words`, by name, in a fixed order."""
        return {
            name: value
            for name, value in vars(self).items()
            if value is not None and name != "words"
        }


@dataclass(frozen=True)
class EventView:
    """A stored call: its body as received, the columns copied from it, and (verify
    mode) where its verification stands."""

    id: str
    payload: bytes | None  # None in a list of calls when it is over 256 KiB
    received_at: float
    status: str
    direction: str
    agent_id: str = ""
    organization_id: str = ""
    hangup_cause: str = ""
    from_number: str = ""  # E.164, or '' (see `IngestRecord`)
    to_number: str = ""
    verification: Verification | None = None  # None: routed on arrival (verify mode off)
    verify_attempts: int = 0
    verify_next_at: float | None = None


EventCursor = tuple[float, str]
"""Where a newest-first page of events ends: (received_at, id) of its last call."""


@dataclass(frozen=True)
class SinkCounts:
    """A sink's deliveries for the console's overview."""

    pending: int = 0
    retrying: int = 0  # pending after at least one attempt
    dead: int = 0
    muted: int = 0
    delivered_since: int = 0  # delivered at or after the time asked about
    oldest_pending_created_at: float | None = None


AcknowledgedKind = Literal["call", "digest"]
# The rule of an acknowledgement recorded before they were per rule: all of its call's.
ALL_RULES = ""


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a call's deliveries for one rule (`kind` 'call', `target_id` the
    event id, `rule` the deliveries' rule) or a digest ('digest', its delivery id, its
    rule), and when; the first one of each (call, rule) counts. `rule` '' (ALL_RULES): one
    recorded before acknowledgements were per rule (schema 18 and older), which counts
    for every rule of its call (a digest's: the digest)."""

    kind: AcknowledgedKind
    target_id: str
    rule: str
    user_id: str
    user_name: str
    channel: str
    at: float


@dataclass(frozen=True)
class SessionRecord:
    """A console session (DESIGN.md section 14): `id_hash` is the SHA-256 of the cookie's
    value (the value itself is stored nowhere), `via` how its user signed in (password,
    token, oidc), `credential_mac` binds it to that credential (an HMAC of the session id
    under the password's hash or the admin token: changing either ends the session)."""

    id_hash: str
    user_name: str
    role: str
    via: str
    credential_mac: str
    csrf: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class AuditRecord:
    """One recorded change (DESIGN.md section 14): when (`at`), who (`actor`: a user name,
    `token`, `cli:<os user>`, `slack:<user id>`), what (`action`: `replay`,
    `silence.create`, ...), on what (`target`: `delivery:ID`, `silence:ID`, `sink:NAME`,
    ...) and `details`, the text of a JSON object, with secrets and phone numbers masked
    by whoever wrote it (`router.operators.audit`)."""

    id: str
    at: float
    actor: str
    action: str
    target: str
    details: str = "{}"


@dataclass(frozen=True)
class AuditFilters:
    """Which recorded changes `Audit.list_audit` shows; None leaves a field unfiltered.
    `since`: made at or after it (unix seconds); `before`: strictly older than this
    (`at`, id), the keyset of the page above."""

    since: float | None = None
    actor: str | None = None
    action: str | None = None
    before: tuple[float, str] | None = None


@dataclass(frozen=True)
class SinkBacklog:
    pending: int
    dead: int
    oldest_pending_created_at: float | None


@dataclass(frozen=True)
class Erasure:
    """A caller to forget (DESIGN.md section 15): `number` in E.164, as `events.from_number`
    and `to_number` hold it; `digits`, the runs of digits that any writing of it holds
    once its separators are taken out (what finds the other rows that may mention it);
    `redact`, decoded JSON (a string, a list, a dict, a number) with it replaced by
    `[erased]`. With `dry_run`, everything is counted and nothing written."""

    number: str
    digits: str
    redact: Callable[[Any], Any] = field(compare=False, repr=False)
    dry_run: bool = False


@dataclass(frozen=True)
class ErasureCounts:
    """What forgetting a caller removed (or, in a dry run, would remove): their calls, the
    deliveries of those (`pending_cancelled` of them still pending), the other calls and
    attempts whose stored text mentioned the number, and other rows rewritten (errors,
    silences, comments)."""

    calls_deleted: int = 0
    deliveries_deleted: int = 0
    pending_cancelled: int = 0
    calls_rewritten: int = 0
    attempts_rewritten: int = 0
    other_rows_rewritten: int = 0


@dataclass(frozen=True)
class OutboundToken:
    """An access token a sink got for its auth settings (`auth_key`: their hash), kept so
    replicas and restarts share it: when it was obtained and expires (unix seconds), and
    the refresh token the server last gave (None: keep using the configured one). The
    tokens are secrets: never in `repr`."""

    sink: str
    auth_key: str
    access_token: str = field(repr=False)
    obtained_at: float
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
