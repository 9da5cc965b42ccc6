"""What a sink is given for a claimed delivery: the `DeliveryRequest` built from the
stored call (or a digest's calls), and a `ReadySend` once its message is built. Pure:
the engine and a parse worker process build a request the same way. A message built on
the event loop is sent by `build_and_transmit`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from router.core.events import decode_json
from router.store import ClaimedDelivery, resume_state
from sinks.base import DeliveryRequest, Digest, SendResult, Sink, window_time
from sinks.notices import grouped_notice


@dataclass(frozen=True)
class ReadySend:
    """A claimed delivery ready to go: `send()` sends it, unless a silence mutes it now."""

    send: Callable[[], Awaitable[SendResult]]
    silence_reason: str | None = None
    digest_count: int | None = None  # a digest's calls
    worker_lost: bool = False  # its parse workers died building it: `send` fails, ours


def delivery_request(delivery: ClaimedDelivery, payloads: list[bytes] | None) -> DeliveryRequest:
    """The request for one delivery; a digest's (`payloads`: its calls' bodies, in arrival
    order) carries its calls. Pure: a parse worker process builds it the same way. A
    delivery sent straight after its ingest reuses the body the webhook decoded."""
    if delivery.notice is not None:
        return notice_request(delivery, delivery.notice)
    event = delivery.decoded if delivery.decoded is not None else decode_json(delivery.payload)
    digest: Digest | None = None
    if delivery.kind == "digest":
        digest = Digest(
            group_key=decode_json((delivery.group_key or "{}").encode()),
            window_start=window_time(delivery.window_start or delivery.created_at),
            window_end=window_time(delivery.window_end or delivery.created_at),
            calls=[decode_json(payload) for payload in payloads or ()] or [event],
        )
        event = digest.calls[0]
    return DeliveryRequest(
        delivery_id=delivery.id,
        event_id=delivery.event_id,
        sink=delivery.sink,
        rule=delivery.rule,
        event=event,
        attempt=delivery.attempts + 1,
        digest=digest,
        payload=None if digest is not None else delivery.payload,
        steps_done=resume_state(delivery.steps) if delivery.steps else {},
    )


def stored_notice(text: str) -> dict[str, Any]:
    """A notice as stored (`sinks.notices`), or one saying it could not be read."""
    try:
        notice = json.loads(text)
    except ValueError:
        notice = None
    if not isinstance(notice, dict):
        notice = {"notice": "delivery_dead", "error": "the notice could not be read"}
    return notice


def notice_request(delivery: ClaimedDelivery, text: str) -> DeliveryRequest:
    """The request of a notice of a dead delivery (`on_dead`): the notice as stored, and
    as `event` the dead delivery's call, numbers masked (an empty one if it had none)."""
    notice = stored_notice(text)
    call = notice.get("call")
    return DeliveryRequest(
        delivery_id=delivery.id,
        event_id=str(notice.get("event_id") or ""),
        sink=delivery.sink,
        rule=delivery.rule,
        event=call if isinstance(call, dict) else {},
        attempt=delivery.attempts + 1,
        notice=notice,
    )


def notices_request(deliveries: Sequence[ClaimedDelivery]) -> DeliveryRequest:
    """The request of notices of one sink sent as one message (oldest first): a single
    one's own request, several as a grouped notice (`sinks.notices.grouped_notice`)
    under the first one's id."""
    first = deliveries[0]
    if len(deliveries) == 1:
        return notice_request(first, first.notice or "")
    notices = [stored_notice(delivery.notice or "") for delivery in deliveries]
    return DeliveryRequest(
        delivery_id=first.id,
        event_id="",
        sink=first.sink,
        rule=first.rule,
        event={},
        attempt=first.attempts + 1,
        notice=grouped_notice(notices),
    )


async def build_and_transmit(sink: Sink[Any], request: DeliveryRequest) -> SendResult:
    """Send `request` through `sink`, its message built here: a failure to build (a
    template failing on the call) is the send's failure, like one to transmit."""
    return await sink.transmit(sink.build(request))
