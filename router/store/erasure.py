"""Forgetting a caller (DESIGN.md section 15): one script, built from `ERASERS`, one entry
per place that can hold a phone number.

`forget(erasure, scan)` first reads what the caller's calls take with them (`plan`:
their deliveries, and the digests they share with other calls), then runs each eraser
in order, in the one transaction the store runs a write script in: it commits whole or
not at all, so an erasure cut short leaves the store as it was. The one costly step,
finding the other calls that mention the number (a scan of every body), runs before, as
a read (`mentioning`, then `Scan`): the transaction reads those calls again, and the
few that came in since. A dry run (`Erasure.dry_run`) runs the same reads and counts,
and writes nothing.

An eraser is `(name, script)`: the script reads the `Erasing` it is given (the erasure,
the plan, what earlier erasers rewrote) and adds its counts. A new place that stores
text (an index, attempts' bodies, an audit row) is one more entry: a column of text is
`text_column(ErasedColumn(...), counts_as)`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from router.store import queries as q
from router.store.connector import CallMany, Rows, Script, count, row, rows
from router.store.queries import ErasedColumn
from router.store.records import Erasure, ErasureCounts
from router.store.search import searchable_text

ATTEMPT_KEY = ("delivery_id", "number")
Counter = Literal["calls_rewritten", "attempts_rewritten", "other_rows_rewritten"]


@dataclass(frozen=True)
class Scan:
    """The other calls that mentioned the number when the erasure began (`mentioning`,
    a read), and since when calls are read again in its transaction: those received
    later, or committed later than the read saw (an ingest commits within seconds of
    its `received_at`; `RECHECK_SECONDS` covers it many times over)."""

    call_ids: list[str]
    since: float


RECHECK_SECONDS = 300.0


@dataclass
class Erasing:
    """One erasure under way: what the erasers share."""

    erasure: Erasure
    scan: Scan | None = None  # None: the erasure's transaction scans every body itself
    # The caller's calls, and their deliveries that go with them (id -> status).
    calls: list[str] = field(default_factory=list)
    deliveries: dict[str, str] = field(default_factory=dict)
    # Digests the caller's calls share with other calls: id -> (its owner then, the calls
    # it keeps in order, how many of the caller's it loses).
    kept_digests: dict[str, tuple[str, list[str], int]] = field(default_factory=dict)
    # The rows each counter counts, by key (a row rewritten in two columns counts once).
    rewritten: dict[Counter, set[tuple[Any, ...]]] = field(
        default_factory=lambda: {
            "calls_rewritten": set(),
            "attempts_rewritten": set(),
            "other_rows_rewritten": set(),
        }
    )

    @property
    def writes(self) -> bool:
        return not self.erasure.dry_run

    @property
    def pattern(self) -> str:
        """LIKE pattern of the number's digits in text without separators."""
        return f"%{self.erasure.digits}%"

    def counts(self) -> ErasureCounts:
        return ErasureCounts(
            calls_deleted=len(self.calls),
            deliveries_deleted=len(self.deliveries),
            pending_cancelled=sum(status == "pending" for status in self.deliveries.values()),
            **{name: len(keys) for name, keys in self.rewritten.items()},
        )


class Eraser(NamedTuple):
    name: str  # where it erases, for people
    erase: Callable[[Erasing], Script[None]]


def plan(erasing: Erasing) -> Script[None]:
    """What the caller's calls take with them: their deliveries, except the digests that
    hold other calls too (those stay, without the caller's calls)."""
    phone = erasing.erasure.number
    calls: Rows = yield rows(q.CALLER_CALLS, phone=phone)
    erasing.calls = list(calls.column("id"))
    if not erasing.calls:
        return
    doomed = set(erasing.calls)
    members: Rows = yield rows(q.CALLER_DIGESTS, phone=phone)
    by_digest: dict[str, tuple[str, list[str]]] = {}
    for found in members.dicts():
        by_digest.setdefault(found["digest_id"], (found["owner"], []))[1].append(found["member"])
    for digest_id, (owner, calls_in) in by_digest.items():
        kept = [call for call in calls_in if call not in doomed]
        if kept:
            erasing.kept_digests[digest_id] = (owner, kept, len(calls_in) - len(kept))
    deliveries: Rows = yield rows(q.CALLER_DELIVERIES, phone=phone)
    erasing.deliveries = {
        found["id"]: found["status"]
        for found in deliveries.dicts()
        if found["id"] not in erasing.kept_digests
    }


def keep_digests(erasing: Erasing) -> Script[None]:
    """Digests shared with other calls keep those: a digest the caller's call opened
    passes to the first other call in it."""
    if not erasing.writes or not erasing.kept_digests:
        return
    doomed = set(erasing.calls)
    yield CallMany(
        q.KEEP_DIGEST,
        [
            {"id": digest_id, "owner": kept[0] if owner in doomed else owner, "removed": removed}
            for digest_id, (owner, kept, removed) in sorted(erasing.kept_digests.items())
        ],
    )


def mentioning(erasure: Erasure) -> Script[list[str]]:
    """The other calls whose body mentions the number: the scan of every body, run as a
    read before the erasure (`Scan`), so a store with one writer keeps taking calls."""
    found: Rows = yield rows(
        q.MENTIONING_CALL_IDS, phone=erasure.number, digits=f"%{erasure.digits}%"
    )
    return list(found.column("id"))


def rewrite_calls(erasing: Erasing) -> Script[None]:
    """Other calls whose body (or body as posted) mentions the number: rewritten, as
    JSON, with it `[erased]`; their search text made again from the new body."""
    erasure, scan = erasing.erasure, erasing.scan
    where = {"phone": erasure.number, "digits": erasing.pattern}
    if scan is None:
        found: list[dict[str, Any]] = (yield rows(q.MENTIONING_CALLS, **where)).dicts()
    else:  # the scan's calls read again, and those that came in or changed since
        by_id = {}
        for call_id in scan.call_ids:
            again = yield row(q.MENTIONING_CALL, id=call_id, **where)
            if again is not None:
                by_id[call_id] = again
        recent: Rows = yield rows(q.RECENT_MENTIONING, since=scan.since, **where)
        by_id.update((call["id"], call) for call in recent.dicts())
        found = [by_id[call_id] for call_id in sorted(by_id)]
    changed = []
    for call in found:
        payload = _redacted_body(call["payload"], erasure)
        posted = _redacted_body(call["posted_payload"], erasure)
        if payload is None and posted is None:
            continue
        erasing.rewritten["calls_rewritten"].add((call["id"],))
        body = payload if payload is not None else bytes(call["payload"])
        changed.append(
            {
                "id": call["id"],
                "payload": body,
                "posted_payload": posted if posted is not None else _bytes(call["posted_payload"]),
                "search_text": searchable_text(json.loads(body)),
            }
        )
    if changed and erasing.writes:
        yield CallMany(q.REWRITE_CALL, changed)
        yield CallMany(q.RELEASE_CALL_LEASES, [{"id": call["id"]} for call in changed])


def _bytes(stored: Any) -> bytes | None:
    return None if stored is None else bytes(stored)


def _redacted_body(stored: Any, erasure: Erasure) -> bytes | None:
    """A stored JSON body with the number erased, or None when it has none (or is not
    JSON this can read: left as it is)."""
    if stored is None:
        return None
    try:
        value = json.loads(bytes(stored))
    except (ValueError, RecursionError):
        return None
    try:
        redacted = erasure.redact(value)
    except RecursionError:
        return None
    if redacted == value:
        return None
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")).encode()


def text_column(
    column: ErasedColumn,
    counts_as: Counter,
    *,
    json_text: bool = False,
    of_delivery: bool = False,
) -> Eraser:
    """An eraser of one text column (`json_text`: it holds JSON, rewritten as JSON).
    `of_delivery`: its rows are keyed first by a delivery's id; those of the deliveries
    that go with the caller's calls are left to that deletion."""

    def erase(erasing: Erasing) -> Script[None]:
        found: Rows = yield rows(column.find, digits=erasing.pattern)
        changed = []
        for stored in found.dicts():
            keys = tuple(stored[f"key_{n}"] for n in range(len(column.keys)))
            if of_delivery and keys[0] in erasing.deliveries:
                continue
            text = stored["text"]
            new = _redacted_text(text, erasing.erasure, json_text=json_text)
            if new is None:
                continue
            erasing.rewritten[counts_as].add((column.table, *keys))
            changed.append({"text": new, **{f"key_{n}": key for n, key in enumerate(keys)}})
        if changed and erasing.writes:
            yield CallMany(column.rewrite, changed)

    return Eraser(f"{column.table}.{column.column}", erase)


def _redacted_text(text: str | None, erasure: Erasure, *, json_text: bool) -> str | None:
    if text is None:
        return None
    if json_text:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        else:
            redacted = erasure.redact(value)
            return None if redacted == value else json.dumps(redacted, ensure_ascii=False)
    new = erasure.redact(text)
    return None if new == text else str(new)


def forget_acknowledgements(erasing: Erasing) -> Script[None]:
    """Acknowledgements of the caller's calls and of the digests that go with them."""
    if not erasing.writes or not erasing.calls:
        return
    yield count(q.FORGET_CALL_ACKNOWLEDGEMENTS, phone=erasing.erasure.number)
    yield CallMany(
        q.FORGET_DIGEST_ACKNOWLEDGEMENT, [{"id": delivery} for delivery in erasing.deliveries]
    )


def forget_calls(erasing: Erasing) -> Script[None]:
    """The caller's calls, with their deliveries (pending ones too: cancelled), attempts
    and digest memberships. A lane holding one of those deliveries finds it gone: its
    lease, its attempt and its outcome touch no row (`DeliveryQueue.still_leased`)."""
    if erasing.writes and erasing.calls:
        yield count(q.FORGET_CALLS, phone=erasing.erasure.number)


ERASERS: tuple[Eraser, ...] = (
    Eraser("digests shared with other calls", keep_digests),
    Eraser("events.payload, events.posted_payload, events.search_text", rewrite_calls),
    *(
        text_column(
            ErasedColumn("attempts", ATTEMPT_KEY, name), "attempts_rewritten", of_delivery=True
        )
        for name in ("error", "detail", "request_body", "response_body")
    ),
    # What an attempt sent and got: numbers are masked when stored, but a number written
    # in a way the matcher missed would still be found here.
    *(
        text_column(
            ErasedColumn("attempts", ATTEMPT_KEY, name),
            "attempts_rewritten",
            json_text=True,
            of_delivery=True,
        )
        for name in ("request_head", "response_head", "steps")
    ),
    text_column(
        ErasedColumn("deliveries", ("id",), "last_error"), "other_rows_rewritten", of_delivery=True
    ),
    # A digest's group key holds the values its calls were grouped by (while it is open,
    # `open_group` too: rewritten alike, so the digest no longer takes that number's calls).
    *(
        text_column(
            ErasedColumn("deliveries", ("id",), name),
            "other_rows_rewritten",
            json_text=True,
            of_delivery=True,
        )
        for name in ("group_key", "open_group")
    ),
    # A notice (`on_dead`) of another call's dead delivery whose error names the number
    # (the notices of the caller's own go with their dead deliveries: ON DELETE CASCADE).
    text_column(
        ErasedColumn("deliveries", ("id",), "notice"),
        "other_rows_rewritten",
        json_text=True,
        of_delivery=True,
    ),
    # An `http` sink's steps done so far: their captures as captured (an answer's phone).
    text_column(
        ErasedColumn("deliveries", ("id",), "steps"),
        "other_rows_rewritten",
        json_text=True,
        of_delivery=True,
    ),
    text_column(
        ErasedColumn("silences", ("id",), "condition"), "other_rows_rewritten", json_text=True
    ),
    text_column(ErasedColumn("silences", ("id",), "comment"), "other_rows_rewritten"),
    text_column(ErasedColumn("sink_pauses", ("sink",), "comment"), "other_rows_rewritten"),
    text_column(ErasedColumn("audit", ("id",), "target"), "other_rows_rewritten"),
    # A Slack thread's parent, the message as posted (numbers masked unless a sink's
    # template prints them), and its key, the values its alerts were threaded by (as
    # text: it stays the compact canonical JSON that keys are compared as).
    text_column(
        ErasedColumn("slack_threads", ("sink", "thread_key"), "parent"),
        "other_rows_rewritten",
        json_text=True,
    ),
    text_column(
        ErasedColumn("slack_threads", ("sink", "thread_key"), "thread_key"), "other_rows_rewritten"
    ),
    text_column(ErasedColumn("audit", ("id",), "details"), "other_rows_rewritten", json_text=True),
    Eraser("acknowledgements of the caller's calls", forget_acknowledgements),
    Eraser("events of the caller, with deliveries, attempts, digest_members", forget_calls),
    # The full-text index of search_text follows the events rows by itself (SQLite's
    # triggers, PostgreSQL's generated column); the erasure's own audit record is written
    # by `router.operators.forget` (its details need the salt).
)


def forget(
    erasure: Erasure, scan: Scan | None = None, erasers: tuple[Eraser, ...] = ERASERS
) -> Script[ErasureCounts]:
    """Forget a caller: every eraser in order, in the transaction this script runs in."""
    erasing = Erasing(erasure, scan)
    yield from plan(erasing)
    for eraser in erasers:
        yield from eraser.erase(erasing)
    counts = erasing.counts()
    if erasing.writes and counts != ErasureCounts():
        # Lanes of every process see that leases may have been taken (`router.store.leases`).
        yield count(q.MARK_ERASURE, value=secrets.token_hex(8))
    return counts
