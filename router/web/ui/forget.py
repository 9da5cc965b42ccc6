"""The console's "Forget a caller" page (DESIGN.md section 15, admin role): a number in,
the counts of a dry run shown first, then a confirmation that erases. The number goes in
POST bodies only, never in an address (addresses end up in logs and browser history),
and pages show it masked."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.core.phones import mask_phone
from router.operators import (
    AuditTrail,
    ForgetRequest,
    RequestInvalid,
    forget_caller,
    parse_phone,
)
from router.store import Erasures
from router.web.actors import actor_of
from router.web.request_body import read_form
from router.web.ui.pages import Pages


class ForgetViews:
    def __init__(self, pages: Pages, store: Erasures, trail: AuditTrail) -> None:
        self.pages = pages
        self.store = store
        self.trail = trail

    def _page(self, request: web.Request, http_status: int = 200, **context: Any) -> web.Response:
        context.setdefault("phone", "")
        context.setdefault("problems", [])
        context.setdefault("number", "")
        context.setdefault("report", None)
        return self.pages.render(
            request,
            "forget.html",
            http_status=http_status,
            title="Forget a caller",
            nav="calls",
            **context,
        )

    async def form(self, request: web.Request) -> web.Response:
        return self._page(request)

    async def post(self, request: web.Request) -> web.Response:
        """`step=count`: a dry run, and the confirmation; `step=erase`: the erasure."""
        posted = await read_form(request)
        typed = str(posted.get("phone", ""))
        try:
            number = parse_phone(typed)
        except RequestInvalid as exc:
            return self._page(request, http_status=422, phone=typed, problems=exc.errors)
        erase = posted.get("step") == "erase"
        wanted = ForgetRequest(number, not erase)
        report = await forget_caller(self.store, wanted, actor_of(request), self.trail)
        return self._page(request, number=number, masked=mask_phone(number), report=report)
