"""Backfill: fetch calls from RevRing's API by id and ingest each as if it had been posted.

For calls RevRing posted while the router could not take them (a deploy, a network
cut, a full disk). Ids come from a file (one a line, or a CSV with an `id` column as
the dashboard's call list export gives) or the command line; each fetched call goes
through the webhook's own ingest (same validation, rules and idempotency: a call
already stored is a duplicate and routes nothing again). `--dry-run` only shows where
each call would go.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from router.config import Config
from router.core import tracing
from router.core.events import EventRejected, TooDeep, decode_json, parse_event
from router.core.logs import printable
from router.engine import IngestOutcome, preview
from router.revring.api import RevRingApi, RevRingApiError

MAX_IDS = 100_000  # one run; `POST /admin/backfill` takes fewer (ADMIN_MAX_IDS)
ADMIN_MAX_IDS = 10_000


class IdsError(ValueError):
    """An ids file the backfill cannot read."""


def read_ids(text: str) -> list[str]:
    """Call ids from a file's text: one a line, or a CSV whose header has an `id` column
    (any other columns ignored). Blank lines and lines starting with `#` are skipped;
    a repeated id is kept once, at its first place."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    names = [name.strip().lower() for name in header]
    if "id" in names and (len(names) > 1 or lines[0].strip().lower() == "id"):
        column = names.index("id")
        found = []
        for number, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
            if len(row) <= column:
                raise IdsError(f"row {number} has no `id` column ({len(row)} columns)")
            found.append(row[column])
    else:
        found = lines
    return unique_ids(found)


def unique_ids(ids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for call_id in ids:
        stripped = call_id.strip()
        if stripped:
            seen.setdefault(stripped, None)
    return list(seen)


@dataclass
class BackfillSummary:
    """What a backfill did with each id asked for."""

    requested: int = 0
    fetched: int = 0
    new: int = 0
    duplicate: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (call id, why)
    dry_run: bool = False
    would_route: list[str] = field(default_factory=list)  # dry run: one line per call

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        return (
            f"fetched {self.fetched}, new {self.new}, duplicate {self.duplicate},"
            f" not found {len(self.not_found)}, failed {len(self.failed)}"
            + (" (dry run: nothing written or sent)" if self.dry_run else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "fetched": self.fetched,
            "new": self.new,
            "duplicate": self.duplicate,
            "not_found": len(self.not_found),
            "failed": len(self.failed),
            "dry_run": self.dry_run,
            "not_found_ids": self.not_found,
            "failures": [{"id": call_id, "error": why} for call_id, why in self.failed],
            **({"would_route": self.would_route} if self.dry_run else {}),
        }


Ingest = Callable[[bytes], Awaitable[IngestOutcome]]


class Progress:
    """`done/total` on one line of a terminal; silent when the stream is not a TTY."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.shown = self.stream.isatty() and total > 0

    def update(self, done: int) -> None:
        if self.shown:
            self.stream.write(f"\rbackfill: {done}/{self.total} ids")
            self.stream.flush()

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


async def backfill(
    ids: Sequence[str],
    api: RevRingApi,
    ingest: Ingest,
    progress: Progress | None = None,
) -> BackfillSummary:
    """Fetch every id in batches of 100 and ingest each call RevRing knows."""
    summary = BackfillSummary(requested=len(ids))
    async for call_id, body in _fetched_calls(ids, api, summary, progress):
        with tracing.span("backfill call") as span:  # `router.core.tracing`
            outcome = await ingest(body)
            span.set("router.event_id", call_id)
            span.set("router.ingest_status", outcome.status)
            span.set("router.deliveries", outcome.deliveries)
        _count(summary, call_id, outcome)
    return summary


async def _fetched_calls(
    ids: Sequence[str], api: RevRingApi, summary: BackfillSummary, progress: Progress | None
) -> AsyncIterator[tuple[str, bytes]]:
    """Each call RevRing knows, as (id, body), batch by batch; a failed batch, the ids it
    does not know and the progress go into `summary` and `progress` on the way."""
    done = 0
    async for batch, fetched in api.fetch_all(ids):
        if isinstance(fetched, RevRingApiError):
            summary.failed.extend((call_id, str(fetched)) for call_id in batch)
        else:
            summary.fetched += len(fetched.calls)
            summary.not_found.extend(fetched.unknown)
            for call_id, body in fetched.calls.items():
                yield call_id, body
        done += len(batch)
        if progress is not None:
            progress.update(done)
    if progress is not None:
        progress.finish()


def _count(summary: BackfillSummary, call_id: str, outcome: IngestOutcome) -> None:
    if outcome.status == "accepted":
        summary.new += 1
    elif outcome.status == "duplicate":
        summary.duplicate += 1
    else:
        rejection = outcome.rejection
        why = rejection.message if rejection is not None else "rejected"
        if rejection is not None and "problems" in rejection.extra:
            why += ": " + "; ".join(str(p) for p in rejection.extra["problems"])
        summary.failed.append((call_id, why))


async def dry_run(
    ids: Sequence[str], api: RevRingApi, config: Config, progress: Progress | None = None
) -> BackfillSummary:
    """Fetch every id and show where each call would go now; write and send nothing."""
    summary = BackfillSummary(requested=len(ids), dry_run=True)
    now = datetime.now(UTC)
    async for call_id, body in _fetched_calls(ids, api, summary, progress):
        line = _route_line(config, call_id, body, now)
        if line is None:
            summary.failed.append((call_id, "invalid post-call event"))
        else:
            summary.would_route.append(line)
    return summary


def _route_line(config: Config, call_id: str, body: bytes, now: datetime) -> str | None:
    try:
        event = decode_json(body, refuse_deep=True)
        parse_event(event)
    except (TooDeep, EventRejected):
        return None
    result = preview(config, event, now)
    label = (
        f"{printable(call_id)} {printable(event.get('direction'))} {printable(event.get('status'))}"
    )
    if not result.deliveries:
        return f"{label}: no sink"
    targets = ", ".join(
        f"{d.sink} ({f'muted: {d.muted_reason}' if d.muted_reason else 'send'}, rule {d.rule.name})"
        for d in result.deliveries
    )
    return f"{label}: {targets}"


def admin_ids(body: Any) -> list[str]:
    """The ids of a `POST /admin/backfill` body `{"ids": [...]}`; ValueError naming the
    problem otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
        raise ValueError('body must be a JSON object {"ids": ["call id", ...]}')
    ids = body["ids"]
    bad = [index for index, call_id in enumerate(ids) if not isinstance(call_id, str)]
    if bad:
        raise ValueError(f"ids must be strings (not at positions {bad[:10]})")
    unique = unique_ids(ids)
    if not unique:
        raise ValueError("ids is empty")
    if len(unique) > ADMIN_MAX_IDS:
        raise ValueError(f"at most {ADMIN_MAX_IDS} ids at once, got {len(unique)}")
    return unique
