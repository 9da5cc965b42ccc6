"""The audit trail (DESIGN.md section 14): every change, from the console, the admin API,
the CLI or a Slack button, recorded in the store with its time, actor, action, target
and details (secrets and phone numbers masked).

`AuditTrail` makes the operators' changes (replays, silences, sink pauses,
acknowledgements) for every surface alike, the actor given by the caller, each change and
its record in one transaction: never a change without its record. A change made outside
the store (a reload, a backfill, a sign-in) is recorded just after it by
`AuditTrail.record`; a failure to record it is logged, never turned into a failure of
the change already made. `record_audit(store, actor, action, target, details)` is the
same for a caller without a trail (a CLI command).

The pure parts: `mask_details`, `audit_record` (a new record, masked and bounded),
`audit_json` (a record as the API and `revring-router audit --json` show it),
`parse_since` and `audit_filters` (the filters of `GET /admin/audit` and the CLI, each
problem naming its parameter).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from router.core.phones import mask_phone, mask_phone_numbers
from router.core.units import parse_duration
from router.operators.replays import BulkReplay
from router.store import (
    Acknowledgement,
    Audit,
    AuditFilters,
    AuditRecord,
    Operators,
    SilenceRecord,
    SinkPause,
)

log = logging.getLogger("router.operators.audit")

ACTIONS = (
    "replay",
    "silence.create",
    "silence.expire",
    "sink.pause",
    "sink.resume",
    "acknowledge",
    "reload",
    "backfill",
    "release",
    "forget",
    "user.add",
    "user.remove",
    "user.token",
    "signin",
    "signin.failed",
)
"""The actions recorded (DESIGN.md section 14)."""
MASK = "***"
MAX_TEXT = 500  # characters of one string in the details
MAX_ITEMS = 50  # entries of one list or object in the details
MAX_DEPTH = 4  # objects within objects in the details
MAX_NAME = 200  # characters of an actor, action or target
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# Keys whose values are credentials: shown as `***`, whatever they hold.
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|credential|cookie|signature|csrf",
    re.IGNORECASE,
)
# Keys whose values are phone numbers: masked whole (`+1415•••0123`).
_NUMBER_KEY = re.compile(r"phone|(from|to)_?number|caller", re.IGNORECASE)
# A salted hash (`forget`'s record of a number): left as it is.
_HASH_KEY = re.compile(r"hash$", re.IGNORECASE)


def _text(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _masked(key: str, value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_KEY.search(key) and not isinstance(value, int | float):
        return MASK if value not in ("", [], {}) else value
    if _HASH_KEY.search(key) and isinstance(value, str):
        return _text(value)
    if isinstance(value, int | float):
        if _NUMBER_KEY.search(key):
            return mask_phone(value)
        shown = mask_phone_numbers(str(value))  # a number that is a phone number
        return value if shown == str(value) else shown
    if isinstance(value, str):
        return _text(
            mask_phone(value) if _NUMBER_KEY.search(key) and value else mask_phone_numbers(value)
        )
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(name): _masked(str(name), item, depth + 1) for name, item in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(key, item, depth + 1) for item in list(value)[:MAX_ITEMS]]
    return _text(mask_phone_numbers(str(value)))


def mask_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details as recorded: the value of every key that names a credential (`token`,
    `password`, `secret`, `authorization`, ...) as `***`; phone numbers masked (a key
    that names one, `phone`, `from_number`, masks its value whole, text elsewhere has the
    numbers in it masked); a key ending in `hash` kept (a salted hash of a number);
    strings cut at 500 characters, lists and objects at 50 entries and 4 levels."""
    if not details:
        return {}
    masked = _masked("", dict(details), 0)
    assert isinstance(masked, dict)
    return masked


def audit_record(
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> AuditRecord:
    """A new record, its details masked (`mask_details`) and its names bounded."""
    return AuditRecord(
        id=secrets.token_hex(8),
        at=time.time() if now is None else now,
        actor=_text(actor or "unknown", MAX_NAME),
        action=_text(action, MAX_NAME),
        target=_text(mask_phone_numbers(target), MAX_NAME),
        details=json.dumps(mask_details(details), ensure_ascii=False, default=str),
    )


def iso(timestamp: float) -> str:
    """`2026-12-07T10:15:00.123Z`: UTC, to the millisecond."""
    instant = datetime.fromtimestamp(timestamp, UTC)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def details_of(record: AuditRecord) -> dict[str, Any]:
    """A record's details as an object (a row not holding one shows as `{"text": …}`)."""
    try:
        details = json.loads(record.details)
    except ValueError:
        return {"text": record.details}
    return details if isinstance(details, dict) else {"value": details}


def audit_json(record: AuditRecord) -> dict[str, Any]:
    """A record as `GET /admin/audit` and `revring-router audit --json` show it."""
    return {
        "id": record.id,
        "at": iso(record.at),
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "details": details_of(record),
    }


SHOWN_IDS = 3  # call ids a backfill's audit target names


def backfill_target(ids: Sequence[str]) -> str:
    """A backfill as its audit record names it: `calls:ID,ID,ID (+N)`."""
    shown = ",".join(ids[:SHOWN_IDS])
    more = f" (+{len(ids) - SHOWN_IDS})" if len(ids) > SHOWN_IDS else ""
    return f"calls:{shown}{more}"


class AuditQueryInvalid(ValueError):
    """A filter of the audit that cannot be used; the message names the parameter."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


def parse_since(text: str, now: float) -> float:
    """`since` as unix seconds: a duration back from `now` (`2h`, `30m`, `7d`) or an ISO
    8601 time (`2026-12-07T09:00:00Z`; one without a zone is UTC)."""
    text = text.strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AuditQueryInvalid(
            "since",
            f"expected an ISO 8601 time such as 2026-12-07T09:00:00Z or a duration such as"
            f" 2h; got {text[:40]!r}",
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()


def audit_filters(
    *,
    since: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: str | int | None = None,
    now: float | None = None,
) -> tuple[AuditFilters, int]:
    """The filters and the number of records asked for (empty values: none), or
    `AuditQueryInvalid` naming the first bad parameter."""
    moment = time.time() if now is None else now
    given: dict[str, Any] = {}
    if since:
        given["since"] = parse_since(since, moment)
    for name, value in (("actor", actor), ("action", action)):
        if value:
            if len(value) > MAX_NAME or "\x00" in value:
                raise AuditQueryInvalid(
                    name, f"expected a {name} name of 1 to {MAX_NAME} characters"
                )
            given[name] = value
    count = DEFAULT_LIMIT
    if limit not in (None, ""):
        try:
            count = int(limit)  # type: ignore[arg-type]
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_LIMIT:
            raise AuditQueryInvalid("limit", f"expected a whole number from 1 to {MAX_LIMIT}")
    return AuditFilters(**given), count


class AuditStore(Operators, Audit, Protocol):
    """What the trail uses of the store: the operators' changes and the audit."""


async def record_audit(
    store: Audit,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Record a change made outside the store (`user add`, ...); raises the store's
    error when it cannot (the caller says so: the change itself is made)."""
    record = audit_record(actor, action, target, details)
    await store.record_audit(record)
    return record


@dataclass
class AuditTrail:
    """The operators' changes, each with its record, for every surface alike;
    `counted(action)` is called for each record written (the metric
    `audit_events_total{action}`)."""

    store: AuditStore
    counted: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.time

    def done(self, action: str) -> None:
        """Count a record written (by the store, with its change)."""
        if self.counted is not None:
            self.counted(action)

    def entry(
        self, actor: str, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> AuditRecord:
        return audit_record(actor, action, target, details, self.clock())

    async def record(
        self,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a change already made outside the store (or a refusal worth keeping);
        False, and an error logged, when the store cannot: the change stands."""
        record = self.entry(actor, action, target, details)
        try:
            await self.store.record_audit(record)
        except Exception as exc:
            log.error(
                "cannot record %s by %s on %s in the audit: %s",
                action,
                record.actor,
                record.target,
                type(exc).__name__,
            )
            return False
        self.done(action)
        return True

    async def replay(self, actor: str, delivery_id: str, now: float | None = None) -> bool:
        """Replay one delivery (`Operators.replay`), recorded when it is requeued."""
        audit = self.entry(actor, "replay", f"delivery:{delivery_id}")
        done = await self.store.replay(delivery_id, self.clock() if now is None else now, audit)
        if done:
            self.done("replay")
        return done

    async def replay_many(self, actor: str, wanted: BulkReplay, now: float | None = None) -> int:
        """Replay every dead (or muted) delivery of a sink or rule; recorded with the
        count when there was any."""
        target = (
            f"sink:{wanted.sink}"
            if wanted.sink
            else f"rule:{wanted.rule}"
            if wanted.rule
            else f"{wanted.status} deliveries"
        )
        details = {"status": wanted.status}
        details |= {name: value for name in ("sink", "rule") if (value := getattr(wanted, name))}
        audit = self.entry(actor, "replay", target, details)
        replay = self.store.replay_dead if wanted.status == "dead" else self.store.replay_muted
        count = await replay(wanted.sink, self.clock() if now is None else now, wanted.rule, audit)
        if count:
            self.done("replay")
        return count

    async def add_silence(
        self, actor: str, record: SilenceRecord, details: Mapping[str, Any] | None = None
    ) -> None:
        audit = self.entry(
            actor,
            "silence.create",
            f"silence:{record.id}",
            {
                "when": _json_or_text(record.when),
                "sinks": list(record.sinks) if record.sinks is not None else None,
                "starts_at": iso(record.starts_at),
                "ends_at": iso(record.ends_at),
                "comment": record.comment,
                **(details or {}),
            },
        )
        await self.store.add_silence(record, audit)
        self.done("silence.create")

    async def extend_silence(
        self,
        actor: str,
        silence_id: str,
        ends_at: float,
        now: float,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        audit = self.entry(
            actor,
            "silence.create",
            f"silence:{silence_id}",
            {"ends_at": iso(ends_at), **(details or {})},
        )
        done = await self.store.extend_silence(silence_id, ends_at, now, audit)
        if done:
            self.done("silence.create")
        return done

    async def expire_silence(
        self, actor: str, silence_id: str, now: float | None = None
    ) -> SilenceRecord | None:
        """End a silence now; recorded when it was still to end (not when already over)."""
        moment = self.clock() if now is None else now
        audit = self.entry(actor, "silence.expire", f"silence:{silence_id}")
        record = await self.store.expire_silence(silence_id, moment, audit)
        if record is not None and record.expired_at == moment:
            self.done("silence.expire")
        return record

    async def pause_sink(self, actor: str, pause: SinkPause) -> None:
        details = {"until": iso(pause.until), "comment": pause.comment}
        audit = self.entry(actor, "sink.pause", f"sink:{pause.sink}", details)
        await self.store.pause_sink(pause, audit)
        self.done("sink.pause")

    async def resume_sink(self, actor: str, sink: str) -> bool:
        """Release a paused sink; recorded when it was paused."""
        audit = self.entry(actor, "sink.resume", f"sink:{sink}")
        done = await self.store.resume_sink(sink, audit)
        if done:
            self.done("sink.resume")
        return done

    async def acknowledge(
        self,
        actor: str,
        acknowledgement: Acknowledgement,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> Acknowledgement:
        """Acknowledge, recorded when this acknowledgement is the one that counts."""
        audit = self.entry(actor, "acknowledge", target, details)
        stored = await self.store.acknowledge(acknowledgement, audit)
        if stored == acknowledgement:
            self.done("acknowledge")
        return stored


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
