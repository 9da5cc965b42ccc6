"""Notices of dead deliveries (`on_dead`, DESIGN.md section 16): what each says, made
when the delivery goes dead and written with the dead mark, in its transaction (the
store's `finish` and `kill_expired_waiting` take them), so a crash between the two
cannot keep one and lose the other.

A notice is a delivery of its own to each sink the dead one's sink lists in `on_dead`,
retried like any other; it has no call of its own (its content is stored with it), so
it never clashes with the call's own delivery to that sink. A notice that goes dead is
not reported again, and a notice is never muted by a silence (it is about the router,
not about a call).

Many dying at once make one message per notice sink, not one each: a notice is first
due `notice_window` after it is written (`hold`), and the notice sink's lane then
claims every pending notice of that sink (`claim_notices`, up to `NOTICE_BATCH`), sends
them as one grouped notice (`sinks.notices.grouped_notice`) and records the one outcome
on all of them in one transaction (`finish_many`); a notice arriving while a group is
in flight waits for the next. Each stays its own delivery (its attempts, its console
page, its replay), so none is lost and a single one looks as it does alone. The digest
machinery is not used: its members are calls keyed by their ids, and a notice has none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from router.core.events import decode_json
from router.core.phones import mask_phone, mask_phone_numbers_in
from router.core.public_url import public_base_url
from router.engine.records import new_delivery_id
from router.store import DeadDelivery, NewNotice
from sinks.notices import NOTICE_KIND

# Left out of a notice's call: long, and not what tells a delivery apart.
_LEFT_OUT = frozenset({"transcript"})
_NUMBER_FIELDS = ("fromNumber", "toNumber")


def console_base(text: str | None) -> str | None:
    """ROUTER_PUBLIC_URL without its trailing slash (None: unset); ValueError when it is
    not an http(s) base URL."""
    if text is None or not text.strip():
        return None
    return public_base_url(text)


def masked_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call as a notice carries it: every phone number masked (the number fields
    whole, as `mask_phone` shows them), the transcript left out."""
    kept = {name: value for name, value in call.items() if name not in _LEFT_OUT}
    masked: dict[str, Any] = mask_phone_numbers_in(kept)
    for name in _NUMBER_FIELDS:
        if call.get(name) not in (None, ""):
            masked[name] = mask_phone(call[name])
    return masked


def dead_notice(
    dead: DeadDelivery, call: Mapping[str, Any] | None, public_url: str | None
) -> dict[str, Any]:
    """What a notice of `dead` says (`sinks.notices.notice_json`'s fields)."""
    link = f"{public_url}/ui/deliveries/{dead.id}" if public_url else None
    return {
        "notice": NOTICE_KIND,
        "sink": dead.sink,
        "rule": dead.rule,
        "delivery_id": dead.id,
        "event_id": dead.event_id or None,
        "error": dead.error,
        "call": None if call is None else masked_call(call),
        "link": link,
    }


def _call_of(payload: bytes | None) -> Mapping[str, Any] | None:
    if not payload:
        return None
    try:
        call = decode_json(payload)
    except ValueError:
        return None
    return call if isinstance(call, Mapping) else None


class NoticeMaker:
    """The notices of a dead delivery, to the sinks its sink lists in `on_dead` in the
    rules.yaml running now (`targets`: a sink's list)."""

    def __init__(
        self,
        targets: Callable[[str], tuple[str, ...]],
        public_url: str | None = None,
        new_id: Callable[[], str] = new_delivery_id,
        hold: float = 0.0,
    ) -> None:
        self.targets = targets
        self.public_url = public_url
        self.new_id = new_id
        self.hold = hold  # `notice_window`: seconds a new notice waits for others

    def wanted(self, dead_sink: str) -> bool:
        return bool(self.targets(dead_sink))

    def notices_of(
        self, dead: DeadDelivery, call: Mapping[str, Any] | None = None
    ) -> list[NewNotice]:
        """The notices of `dead` (its call read from its payload unless given); none for
        a notice (a dead notice is not reported again)."""
        if dead.notice is not None:
            return []
        targets = self.targets(dead.sink)
        if not targets:
            return []
        if call is None:
            call = _call_of(dead.payload)
        text = json.dumps(dead_notice(dead, call, self.public_url), ensure_ascii=False, default=str)
        return [
            NewNotice(self.new_id(), sink, dead.rule, dead.id, text, self.hold) for sink in targets
        ]
