"""The console's audit page (`/ui/audit`, DESIGN.md section 14): the recorded changes,
newest first, filtered by actor and by action (the choices are those recorded),
keyset-paginated like the calls."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from router.operators import AuditQueryInvalid, audit_filters
from router.operators.audit import details_of
from router.store import Audit, AuditFilters, AuditRecord
from router.web.ui.pages import Pages

AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditRow:
    record: AuditRecord
    details: str  # `name: value` pairs, one a line


def details_text(record: AuditRecord) -> str:
    """A record's details as the page shows them: one `name: value` a line."""
    lines = []
    for name, value in details_of(record).items():
        if value in (None, "", [], {}):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


def audit_cursor(query: Mapping[str, str]) -> tuple[float, str] | None:
    """Where the page starts: `before_at` and `before_id` of the record just above it."""
    at, record_id = query.get("before_at", ""), query.get("before_id", "")
    if not at and not record_id:
        return None
    try:
        moment = float(at)
    except ValueError:
        raise AuditQueryInvalid("before_at", f"must be a number; got {at[:40]!r}") from None
    if moment != moment or not record_id:
        raise AuditQueryInvalid("before_at", "goes with before_id (the link to older ones)")
    return moment, record_id


class AuditViews:
    def __init__(self, pages: Pages, store: Audit) -> None:
        self.pages = pages
        self.store = store

    async def audit(self, request: web.Request) -> web.Response:
        query = request.query
        actor, action = query.get("actor", "").strip(), query.get("action", "").strip()
        try:
            filters, _ = audit_filters(actor=actor, action=action)
            filters = replace(filters, before=audit_cursor(query))
        except AuditQueryInvalid as exc:
            return self.pages.problem(request, 400, str(exc))
        records = await self.store.list_audit(filters, AUDIT_PAGE_SIZE + 1)
        shown = records[:AUDIT_PAGE_SIZE]
        actors, actions = await self.store.audit_choices()
        chosen = {"actor": actor, "action": action}
        older: dict[str, Any] | None = None
        if len(records) > AUDIT_PAGE_SIZE:
            last = shown[-1]
            older = {**chosen, "before_at": repr(last.at), "before_id": last.id}
        return self.pages.render(
            request,
            "audit.html",
            title="Audit",
            nav="audit",
            rows=[AuditRow(record, details_text(record)) for record in shown],
            actors=sorted({*actors, *([actor] if actor else [])}),
            actions=sorted({*actions, *([action] if action else [])}),
            actor=actor,
            action=action,
            filtered=filters != AuditFilters(before=filters.before),
            paged=filters.before is not None,
            newest=chosen,
            older=older,
        )
